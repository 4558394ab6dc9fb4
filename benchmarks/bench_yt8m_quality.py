"""LiteVidSage embeddings vs raw features on YouTube-8M video-level mean_rgb.

The project's quality bar: validate0000-0039 are the training videos,
validate0040-0049 the unseen test videos, classes with at least 20 training
positives (videos without any of them dropped), and the same head everywhere,
``OneVsRestClassifier(LogisticRegression(max_iter=1000))``. Prints a markdown
table of Hit@1, GAP@20, PERR and mAP@20 for the raw L2-normalised features and
for each embedder configuration, with training and transform times, and the
pickle size of the fitted embedder.

Usage::

    python benchmarks/bench_yt8m_quality.py --data ../shared/data/yt8m
    python benchmarks/bench_yt8m_quality.py --configs sage:sage,gat:sage --epochs 30
"""

import argparse
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import normalize

from skvidsage import VideoGraphBuilder, VidSageEmbedder, load_youtube8m
from skvidsage.metrics import (
    global_average_precision_score,
    hit_at_k_score,
    mean_average_precision_score,
    perr_score,
)


def load_split(data_dir, n_train_files=40, min_positives=20):
    """Train/test features and label matrices of the dev split."""
    files = sorted(Path(data_dir).glob("*.tfrecord"))
    train, test = load_youtube8m(files[:n_train_files]), load_youtube8m(
        files[n_train_files:]
    )
    counts = np.asarray(train.target.sum(axis=0)).ravel()
    classes = np.flatnonzero(counts >= min_positives)
    out = []
    for bunch in (train, test):
        Y = bunch.target[:, classes]
        rows = np.asarray(Y.sum(axis=1)).ravel() > 0
        out += [bunch.data[rows], Y[rows].toarray()]
    return (*out, classes)


def head_scores(Z_train, Y_train, Z_test, Y_test, C, n_jobs):
    """Fit the logistic-regression head; return the four metrics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = OneVsRestClassifier(LogisticRegression(max_iter=1000, C=C),
                                  n_jobs=n_jobs).fit(Z_train, Y_train)
    P = clf.predict_proba(Z_test)
    return {
        "Hit@1": hit_at_k_score(Y_test, P),
        "GAP@20": global_average_precision_score(Y_test, P),
        "PERR": perr_score(Y_test, P),
        "mAP@20": mean_average_precision_score(Y_test, P),
    }


def main(argv=None):
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/yt8m"))
    parser.add_argument("--configs", default="sage:sage,gcn:sage,gat:sage,"
                        "sage:triplet,sage:contrastive",
                        help="comma-separated conv:loss pairs")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--C", type=float, default=1.0,
                        help="inverse regularisation of the head (default 1)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--tau", default="0.3",
                        help='graph threshold: a number or "auto" (default 0.3)')
    args = parser.parse_args(argv)

    X_train, Y_train, X_test, Y_test, classes = load_split(args.data)
    print(f"{len(classes)} classes, {len(X_train)} train / {len(X_test)} test videos")
    rows = [("raw mean_rgb", head_scores(normalize(X_train), Y_train,
                                         normalize(X_test), Y_test, args.C,
                                         args.n_jobs), "", "", "")]
    t0 = time.perf_counter()
    builder = VideoGraphBuilder(tau=args.tau if args.tau == "auto" else float(args.tau))
    G_train = builder.fit_transform(X_train)
    G_test = builder.transform(X_test)
    print(f"graph: {time.perf_counter() - t0:.1f} s, tau_ {builder.tau_:.3f}, "
          f"mean degree {G_train.adjacency.nnz / len(X_train):.1f}, builder pickle "
          f"{len(pickle.dumps(builder)) / 2**20:.0f} MiB")
    for config in args.configs.split(","):
        conv, loss = config.split(":")
        emb = VidSageEmbedder(conv=conv, loss=loss, max_epochs=args.epochs,
                              random_state=0)
        t0 = time.perf_counter()
        Z_train = emb.fit_transform(G_train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        Z_test = emb.transform(G_test)
        transform_s = time.perf_counter() - t0
        size = len(pickle.dumps(emb)) / 2**20
        scores = head_scores(Z_train, Y_train, Z_test, Y_test, args.C, args.n_jobs)
        rows.append((f"LiteVidSage conv={conv} loss={loss}", scores,
                     f"{fit_s:.0f}", f"{len(X_test) / transform_s:.0f}",
                     f"{size:.0f}"))
        print(f"  {rows[-1][0]}: {scores}", flush=True)

    print(f"\nhead: OneVsRestClassifier(LogisticRegression(C={args.C:g})), "
          f"{args.epochs} epochs\n")
    print("| features | Hit@1 | GAP@20 | PERR | mAP@20 | fit (s) | transform "
          "(videos/s) | pickle (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s, fit_s, tput, size in rows:
        print(f"| {name} | {s['Hit@1']:.4f} | {s['GAP@20']:.4f} | {s['PERR']:.4f} "
              f"| {s['mAP@20']:.4f} | {fit_s} | {tput} | {size} |")


if __name__ == "__main__":
    main()
