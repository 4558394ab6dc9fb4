"""skvidsage demo: raw CNN features vs VidSage graph embeddings, on real video files.

By default it runs offline: :func:`skvidsage.datasets.make_video_classification`
writes a few hundred short labelled clips (moving shapes on textured
backgrounds, several scenes per class, per-clip nuisance) as ``.mp4`` files,
cached under ``SKVIDSAGE_DATA`` (default ``~/skvidsage_data``).
:class:`skvidsage.VideoFeaturizer` decodes them and embeds their frames with
its default ImageNet backbone (EfficientNet-Lite0, installed from PyPI, no
download); ``detector="imagenet"`` also gives each clip its object set, the
ImageNet classes that the backbone's own classifier names on its frames (same
forward pass, no second network). A stratified split then trains the same
logistic regression

* on the raw video features, and
* on LiteVidSage embeddings (``VideoGraphBuilder`` -> ``VidSageEmbedder``):
  the graph and the embedder are fitted without labels on the training videos
  only, and the test videos are embedded inductively through their links to
  them, and
* the same, wrapped in :class:`skvidsage.GraphSmoothingClassifier`, whose
  scores are blended with the label vote of each video's nearest training
  videos (the best pipeline of ``docs/results.rst``),

and prints Hit@1, PERR, GAP@20 and mAP@20 on the test videos; this first
table keeps the head's default ``C=1``, fixed (not tuned). A second table
puts LiteVidSage next to VidSage, whose graph also links clips that share
objects (edge weight ``alpha * Jaccard + beta * visual``), at two
``alpha``/``beta``, and the raw features, each with the head's ``C`` chosen
on a validation split of the training clips (the protocol of
``benchmarks/bench_objects.py``, which adds the references and spreads over
splits: ``docs/results.rst``, "VidSage object sets"). The generated clips show
drawn shapes, which are not ImageNet objects: the tagger's labels on them
(e.g. "jigsaw puzzle") say little about the class, and the demo prints how
little (the mean Jaccard of same-class and of different-class pairs). A
2-D map (t-SNE) of the test videos' raw features next to their embeddings,
coloured by class, goes to ``SKVIDSAGE_OUTPUT`` (default
``./skvidsage_output``) ``/demo_embedding.png``.

Then, where real clips are at hand (``--videos DIR``; by default the
project's ``shared/data/videos`` beside the checkout, when it exists), it
tags them too and shows, clip by clip, its objects and its strongest link in
the LiteVidSage graph and in the VidSage graph: real objects on real clips,
with no network.

With ``--yt8m DIR`` it does the same on YouTube-8M video-level TFRecords
(``mean_rgb``, multi-label, one-vs-rest heads): the first 80% of the files
(sorted by name) train, the rest test, and only classes with at least
``--min-positives`` training videos are kept.

Usage::

    python examples/demo.py                       # offline, generated videos
    python examples/demo.py --fast                # a small, quick run
    python examples/demo.py --videos DIR          # also tag these real clips
    python examples/demo.py --yt8m ../shared/data/yt8m
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, normalize
from threadpoolctl import threadpool_limits

import skvidsage
from skvidsage.datasets import dump_youtube8m, make_video_classification
from skvidsage.metrics import (
    global_average_precision_score,
    hit_at_k_score,
    mean_average_precision_score,
    perr_score,
)

METRICS = ("Hit@1", "PERR", "GAP@20", "mAP@20")
# the head's C grid of benchmarks/bench_objects.py (there C=256 or more won
# for two splits of three: these clips' features want little regularisation)
C_GRID = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0)
# the project's real clips, beside the checkout (not part of the package)
SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


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
        dump_youtube8m(X[rows], Y[rows], path, ids=[f"vid{i:06d}" for i in rows])
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
    """The four YouTube-8M metrics of scores against 0/1 labels (n, C)."""
    return {
        "Hit@1": hit_at_k_score(y_true, y_score),
        "PERR": perr_score(y_true, y_score),
        "GAP@20": global_average_precision_score(y_true, y_score, top_k=20),
        "mAP@20": mean_average_precision_score(y_true, y_score, top_k=20),
    }


def print_table(table, title):
    """Print ``{model: {metric: value}}`` as a table, models as columns."""
    print(f"\n{title}")
    width = max(map(len, METRICS))
    print(f"  {'':<{width}}" + "".join(f"  {name:>14}" for name in table))
    for metric in METRICS:
        print(f"  {metric:<{width}}"
              + "".join(f"  {table[name][metric]:>14.4f}" for name in table))


def output_dir():
    """``SKVIDSAGE_OUTPUT`` (default ``./skvidsage_output``), created."""
    path = Path(os.environ.get("SKVIDSAGE_OUTPUT", "skvidsage_output")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def plot_maps(maps, labels, names, path):
    """Save side-by-side 2-D t-SNE maps of several representations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(maps), figsize=(5.5 * len(maps), 5))
    perplexity = max(2.0, min(30.0, (len(labels) - 1) / 3))
    for ax, (title, Z) in zip(np.atleast_1d(axes), maps.items(), strict=True):
        xy = TSNE(perplexity=perplexity, init="pca", random_state=0).fit_transform(Z)
        for c, name in enumerate(names):
            mask = labels == c
            ax.scatter(xy[mask, 0], xy[mask, 1], s=14, label=name)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="best")
    fig.suptitle("test videos, t-SNE (colour: class)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_generated(args):
    """Generated clips -> features -> raw vs LiteVidSage heads."""
    n_videos = args.n_videos or (48 if args.fast else 400)
    size = (64, 96) if args.fast else (96, 128)
    duration = 1.0 if args.fast else 2.0
    epochs = args.epochs or (3 if args.fast else 30)
    t0 = time.perf_counter()
    data = make_video_classification(
        n_videos, 4, duration=duration, frame_size=size, n_jobs=args.n_jobs,
        random_state=args.seed,
    )
    print(f"data: {n_videos} generated clips ({duration:g} s, {size[0]}x{size[1]}, "
          f"{len(data.target_names)} classes) in {data.directory} "
          f"[{time.perf_counter() - t0:.1f} s]", flush=True)

    t0 = time.perf_counter()
    featurizer = skvidsage.VideoFeaturizer(detector="imagenet", n_jobs=args.n_jobs,
                                           verbose=True)
    F = featurizer.fit_transform(data.filenames)  # no fitted state: no leak
    X = F.features
    print(f"features: {X.shape[1]} per video from {featurizer.backbone}, object "
          f"sets from its ImageNet classifier [{time.perf_counter() - t0:.1f} s]",
          flush=True)
    describe_objects(F.object_sets, data.target)

    idx_train, idx_test = train_test_split(
        np.arange(len(X)), test_size=0.3, stratify=data.target,
        random_state=args.seed,
    )
    X_train, X_test = X[idx_train], X[idx_test]
    y_train, y_test = data.target[idx_train], data.target[idx_test]
    print(f"split: {len(y_train)} train / {len(y_test)} test videos (stratified)")
    n_classes = len(data.target_names)
    Y_test = sp.csr_matrix(np.eye(n_classes, dtype=np.int32)[y_test])
    models = {
        "raw features": LogisticRegression(max_iter=1000),
        # tau="auto" rather than the default 0.3: these clips' CNN features
        # are close to each other, and g >= 0.3 links nearly every pair, so
        # each video would get max_degree=50 links (nearly a global average).
        # "auto" learns the threshold from the training videos' 10th nearest
        # neighbours (half of them get more links than the floor of 10).
        "LiteVidSage": make_pipeline(
            skvidsage.VideoGraphBuilder(tau="auto"),
            skvidsage.VidSageEmbedder(max_epochs=epochs, random_state=args.seed,
                                      verbose=True),
            LogisticRegression(max_iter=1000),
        ),
        "LiteVidSage + graph smoothing": skvidsage.GraphSmoothingClassifier(
            make_pipeline(
                skvidsage.VidSageEmbedder(
                    graph=skvidsage.VideoGraphBuilder(tau="auto"),
                    max_epochs=epochs, random_state=args.seed,
                ),
                LogisticRegression(max_iter=1000),
            ),
        ),
    }
    table = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(X_train, y_train)  # the graph and the embedder ignore y
        print(f"{name}: trained in {time.perf_counter() - t0:.1f} s", flush=True)
        if name == "LiteVidSage":
            print(f"  graph threshold learned from the training clips: "
                  f"tau_ = {model[0].tau_:.3f}")
        table[name] = evaluate(Y_test, model.predict_proba(X_test))
    print_table(table, "LogisticRegression (C=1, fixed) on the test videos")
    objects = compare_vidsage(F[idx_train], F[idx_test], y_train, Y_test,
                              args.seed)
    print_table(objects, "LiteVidSage and VidSage (objects from the ImageNet "
                "classifier), the same head, C chosen per system on a "
                "validation split")

    path = output_dir() / "demo_embedding.png"
    embed = models["LiteVidSage"][:-1].transform(X_test)
    plot_maps({"raw features": X_test, "LiteVidSage embeddings": embed},
              y_test, data.target_names, path)
    print(f"\nwrote {path}")
    return table


def describe_objects(object_sets, target):
    """Print the tagger's vocabulary and how much its sets say about the class."""
    vocabulary = set().union(*object_sets)
    sizes = np.array([len(s) for s in object_sets])
    same, other = [], []
    for i in range(len(object_sets)):
        for j in range(i + 1, len(object_sets)):
            union = object_sets[i] | object_sets[j]
            jac = len(object_sets[i] & object_sets[j]) / len(union) if union else 0
            (same if target[i] == target[j] else other).append(jac)
    common = sorted(vocabulary, key=lambda v: -sum(v in s for s in object_sets))
    print(f"objects: {len(vocabulary)} ImageNet classes seen, {sizes.mean():.1f} "
          f"per clip ({(sizes == 0).mean():.0%} of clips with none); most common: "
          f"{', '.join(common[:5])}")
    print(f"  mean Jaccard of the object sets: same class {np.mean(same):.3f}, "
          f"different classes {np.mean(other):.3f} (drawn shapes are not "
          "ImageNet objects)")


def embedding(objects=None, **graph):
    """The label-free part of a system, fitted on the training clips only.

    ``objects=None``: the L2-normalised raw features; ``False``: LiteVidSage
    (the plain features into the graph); ``True``: VidSage (the
    ``VideoFeatures`` with their object sets). The embedder's defaults train
    nothing, so nothing here is random.
    """
    if objects is None:
        return FunctionTransformer(lambda F: normalize(F.features))
    return make_pipeline(
        FunctionTransformer(lambda F: F if objects else F.features),
        skvidsage.VideoGraphBuilder(tau="auto", **graph),
        skvidsage.VidSageEmbedder(),
    )


def head_scores(Z_fit, y_fit, Z_eval, C):
    """Fit the head at ``C``; its class probabilities of ``Z_eval``."""
    # one BLAS thread: on the busy 2-core test machine (load 11) OpenBLAS's
    # threads made 8 fits of a 224 x 3840 head take 14 s instead of 0.4 s
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs at large C
        head = LogisticRegression(max_iter=1000, C=C).fit(Z_fit, y_fit)
        return head.predict_proba(Z_eval)


def choose_C(make_embedding, F_train, y_train, seed):
    """``C`` by GAP@20 on a stratified 20% of the training clips, never the test.

    The embedding is fitted on the other 80%, as the whole system would be.
    """
    inner, val = train_test_split(np.arange(len(y_train)), test_size=0.2,
                                  stratify=y_train, random_state=seed)
    emb = make_embedding().fit(F_train[inner])
    Z_inner, Z_val = emb.transform(F_train[inner]), emb.transform(F_train[val])
    onehot = np.eye(int(y_train.max()) + 1, dtype=np.int32)
    gaps = [global_average_precision_score(
        onehot[y_train[val]], head_scores(Z_inner, y_train[inner], Z_val, C))
        for C in C_GRID]
    return C_GRID[int(np.argmax(gaps))]  # a tie: the smaller C


def compare_vidsage(F_train, F_test, y_train, Y_test, seed):
    """Raw, LiteVidSage and VidSage at two alpha / beta, C chosen per system."""
    systems = {
        "raw features": embedding,
        "LiteVidSage": lambda: embedding(False),
        **{f"VidSage a={a:g} b={b:g}": (
            lambda a=a, b=b: embedding(True, alpha=a, beta=b))
           for a, b in [(0.7, 0.3), (0.3, 0.7)]},
    }
    table = {}
    for name, make_embedding in systems.items():
        t0 = time.perf_counter()
        C = choose_C(make_embedding, F_train, y_train, seed)
        emb = make_embedding().fit(F_train)
        P = head_scores(emb.transform(F_train), y_train, emb.transform(F_test), C)
        table[name] = evaluate(Y_test, P)
        links = ""
        if name != "raw features":
            graph = emb[1].transform(emb[0].transform(F_train))
            links = f", {graph.adjacency.nnz / len(F_train):.1f} links per clip"
        print(f"{name}: C={C:g} chosen on the validation clips{links} "
              f"[{time.perf_counter() - t0:.1f} s]", flush=True)
    lite = table["LiteVidSage"]["Hit@1"]
    best = max(table[n]["Hit@1"] for n in table if n.startswith("VidSage"))
    print("  objects " + ("helped" if best > lite else "did not help")
          + f" on these test clips (Hit@1, best VidSage {best:.4f} against "
          f"LiteVidSage {lite:.4f}; one clip is {1 / len(F_test):.4f}). Over "
          "three splits (benchmarks/bench_objects.py) they do not help.")
    return table


def find_videos(directory):
    """Real clips in ``directory`` (default: the project's shared clips)."""
    directory = SHARED_VIDEOS if directory is None else Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file()
                  and not p.name.startswith("."))


def run_real_clips(paths, n_jobs=1):
    """Object sets of real clips, and their LiteVidSage and VidSage links."""
    t0 = time.perf_counter()
    featurizer = skvidsage.VideoFeaturizer(detector="imagenet", n_jobs=n_jobs,
                                           on_error="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", skvidsage.VideoDecodeWarning)
        F = featurizer.fit_transform(paths)  # a damaged clip keeps what decoded
    ok = ~np.isnan(F.features).any(axis=1)
    F, names = F[ok], [p.name for p, good in zip(paths, ok, strict=True) if good]
    print(f"\nreal clips: {len(names)} from {paths[0].parent}, tagged by the "
          f"ImageNet classifier [{time.perf_counter() - t0:.1f} s]; "
          f"{len(set().union(*F.object_sets))} classes seen")
    graph = {"tau": 2.0, "n_neighbors": 1, "max_degree": None}  # 1 nearest
    lite = skvidsage.VideoGraphBuilder(**graph).fit_transform(F.features)
    vid = skvidsage.VideoGraphBuilder(alpha=0.7, beta=0.3, **graph).fit_transform(F)
    lite, vid = lite.toarray(), vid.toarray()

    def links(row):
        order = np.argsort(-row, kind="stable")[: int((row > 0).sum())]
        return ", ".join(f"{names[j]} ({row[j]:.2f})" for j in order)

    for i, name in enumerate(names):
        print(f"  {name}: {', '.join(sorted(F.object_sets[i])) or '(no objects)'}")
        print(f"      LiteVidSage  {links(lite[i])}")
        print(f"      VidSage      {links(vid[i])}")
    added = (vid > 0) & (lite == 0)
    print(f"  VidSage weighs a visual link beta = 0.3 plus alpha = 0.7 times the "
          f"Jaccard of the object sets, and adds {int(added.sum())} links "
          "between clips that share an object but do not look alike")
    return F, vid


def run_yt8m(args):
    """YouTube-8M video-level TFRecords -> raw vs LiteVidSage OvR heads."""
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

    epochs = args.epochs or (3 if args.fast else 30)
    models = {
        "raw features": OneVsRestClassifier(
            LogisticRegression(max_iter=1000), n_jobs=args.n_jobs),
        "LiteVidSage": make_pipeline(
            skvidsage.VideoGraphBuilder(),
            skvidsage.VidSageEmbedder(max_epochs=epochs, random_state=args.seed,
                                      verbose=True),
            OneVsRestClassifier(LogisticRegression(max_iter=1000),
                                n_jobs=args.n_jobs),
        ),
        "LiteVidSage + graph smoothing": skvidsage.GraphSmoothingClassifier(
            make_pipeline(
                skvidsage.VidSageEmbedder(max_epochs=epochs, random_state=args.seed),
                OneVsRestClassifier(LogisticRegression(max_iter=1000),
                                    n_jobs=args.n_jobs),
            ),
        ),
    }
    table = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(X_train, Y_train.toarray())
        print(f"{name}: trained in {time.perf_counter() - t0:.1f} s", flush=True)
        table[name] = evaluate(Y_test, model.predict_proba(X_test))
    print_table(table, "OneVsRestClassifier(LogisticRegression()) on the test files")
    return table


def main(argv=None):
    """Run the demo, print the metrics table and return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yt8m", type=Path, help="directory of YouTube-8M "
                        "video-level *.tfrecord files (default: generated videos)")
    parser.add_argument("--min-positives", type=int, default=20,
                        help="--yt8m: keep classes with at least this many "
                        "training videos")
    parser.add_argument("--n-videos", type=int, default=None,
                        help="generated clips (default 400; 48 with --fast)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs of the embedder (default 30; 3 "
                        "with --fast)")
    parser.add_argument("--videos", type=Path, default=None,
                        help="real clips to tag (default: the project's shared "
                        "clips, when present)")
    parser.add_argument("--n-jobs", type=int, default=2,
                        help="worker processes for generating and decoding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true",
                        default=os.environ.get("SKVIDSAGE_EXAMPLES_FAST") == "1",
                        help="a small, quick run (also SKVIDSAGE_EXAMPLES_FAST=1)")
    args = parser.parse_args(argv)

    print(f"skvidsage {skvidsage.__version__} demo"
          + (" (fast mode)" if args.fast else ""))
    t0 = time.perf_counter()
    table = run_generated(args) if args.yt8m is None else run_yt8m(args)
    if args.yt8m is None:
        videos = find_videos(args.videos)
        if videos:
            run_real_clips(videos, n_jobs=args.n_jobs)
        else:
            print("\n(no real clips found: pass --videos DIR to tag your own)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return table


if __name__ == "__main__":
    main()
