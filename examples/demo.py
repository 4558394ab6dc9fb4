"""skvidsage demo: raw video-level features vs LiteVidSage embeddings.

Runs offline by default: it generates a multi-label video-level data set, writes
it as YouTube-8M ``tf.train.Example`` TFRecords and reads it back with
:func:`skvidsage.load_youtube8m`. It then trains the same one-vs-rest logistic
regression on the raw features and on LiteVidSage embeddings
(``VideoGraphBuilder`` -> ``VidSageEmbedder``, trained without labels on the
training files, applied inductively to the unseen test files), and prints
Hit@1, PERR, GAP@20 and mAP on the test files (next to scikit-learn's macro
average precision for comparison).

With ``--yt8m DIR`` it does the same on real YouTube-8M video-level TFRecords:
the first 80% of the files (sorted by name) train, the rest test, and only
classes with at least ``--min-positives`` training videos are kept (the setting
of the project's results table).

Usage::

    python examples/demo.py                       # offline, generated data
    python examples/demo.py --yt8m ../shared/data/yt8m
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import normalize

import skvidsage
from skvidsage._tfrecord import encode_example, write_tfrecord
from skvidsage.metrics import (
    global_average_precision_score,
    hit_at_k_score,
    mean_average_precision_score,
    perr_score,
)


def write_generated_yt8m(directory, *, n_files=10, per_file=300, random_state=0):
    """Write a generated multi-label set in the YouTube-8M video-level format."""
    X, Y = make_multilabel_classification(
        n_samples=n_files * per_file, n_features=256, n_classes=40, n_labels=3,
        length=60, allow_unlabeled=False, random_state=random_state,
    )
    X = normalize(np.log1p(X)).astype(np.float32)
    paths = []
    for f in range(n_files):
        rows = range(f * per_file, (f + 1) * per_file)
        path = Path(directory) / f"generated{f:04d}.tfrecord"
        write_tfrecord(path, (
            encode_example({
                "id": [f"vid{i:06d}".encode()],
                "labels": np.flatnonzero(Y[i]),
                "mean_rgb": X[i],
            })
            for i in rows
        ))
        paths.append(path)
    return paths


def split_files(paths):
    """First 80% of the (sorted) files train, the rest test."""
    paths = sorted(paths)
    n_train = max(1, int(round(0.8 * len(paths))))
    if n_train == len(paths):
        sys.exit("need at least two TFRecord files to split into train and test")
    return paths[:n_train], paths[n_train:]


def evaluate(y_true, y_score):
    """The four YouTube-8M metrics, plus scikit-learn's macro AP."""
    keep = np.asarray(y_true.sum(axis=0)).ravel() > 0
    return {
        "Hit@1": hit_at_k_score(y_true, y_score),
        "PERR": perr_score(y_true, y_score),
        "GAP@20": global_average_precision_score(y_true, y_score, top_k=20),
        "mAP@20": mean_average_precision_score(y_true, y_score, top_k=20),
        "sklearn macro AP": average_precision_score(
            y_true.toarray()[:, keep], y_score[:, keep], average="macro"
        ),
    }


def main(argv=None):
    """Run the demo and print the metrics table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yt8m", type=Path, help="directory of YouTube-8M "
                        "video-level *.tfrecord files (default: generated data)")
    parser.add_argument("--min-positives", type=int, default=20,
                        help="keep classes with at least this many training videos")
    parser.add_argument("--epochs", type=int, default=30,
                        help="training epochs of the embedder")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)

    print(f"skvidsage {skvidsage.__version__} demo")
    with tempfile.TemporaryDirectory() as tmp:
        if args.yt8m is None:
            print("data: generated YouTube-8M-format TFRecords (offline default)")
            paths = write_generated_yt8m(tmp)
        else:
            paths = sorted(Path(args.yt8m).glob("*.tfrecord"))
            print(f"data: {len(paths)} YouTube-8M files from {args.yt8m}")
        train_files, test_files = split_files(paths)
        t0 = time.perf_counter()
        train = skvidsage.load_youtube8m(train_files)
        test = skvidsage.load_youtube8m(test_files)
        print(f"loaded {train.data.shape[0]} train / {test.data.shape[0]} test "
              f"videos, {train.data.shape[1]} features, in "
              f"{time.perf_counter() - t0:.2f} s")

    counts = np.asarray(train.target.sum(axis=0)).ravel()
    classes = np.flatnonzero(counts >= args.min_positives)
    Y_train = train.target[:, classes]
    Y_test = test.target[:, classes]
    rows_train = np.asarray(Y_train.sum(axis=1)).ravel() > 0
    rows_test = np.asarray(Y_test.sum(axis=1)).ravel() > 0
    X_train = normalize(train.data[rows_train])
    X_test = normalize(test.data[rows_test])
    Y_train, Y_test = Y_train[rows_train], Y_test[rows_test]
    print(f"{len(classes)} classes with >= {args.min_positives} training "
          f"positives; {X_train.shape[0]} train / {X_test.shape[0]} test videos "
          "with at least one of them")

    models = {
        "raw features": OneVsRestClassifier(
            LogisticRegression(max_iter=1000), n_jobs=args.n_jobs),
        "LiteVidSage": make_pipeline(
            skvidsage.VideoGraphBuilder(),
            skvidsage.VidSageEmbedder(max_epochs=args.epochs, random_state=0,
                                      verbose=True),
            OneVsRestClassifier(LogisticRegression(max_iter=1000),
                                n_jobs=args.n_jobs),
        ),
    }
    table = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(X_train, Y_train.toarray())
        print(f"{name}: trained in {time.perf_counter() - t0:.1f} s", flush=True)
        table[name] = evaluate(Y_test, model.predict_proba(X_test))

    print("\nOneVsRestClassifier(LogisticRegression()) on the test files")
    width = max(map(len, next(iter(table.values()))))
    print(f"  {'':<{width}}" + "".join(f"  {name:>14}" for name in table))
    for metric in next(iter(table.values())):
        print(f"  {metric:<{width}}"
              + "".join(f"  {table[name][metric]:>14.4f}" for name in table))
    return table


if __name__ == "__main__":
    main()
