"""Speed and size of the LiteVidSage steps on YouTube-8M video-level mean_rgb.

Times, on the dev split of ``bench_yt8m_quality.py`` (validate0000-0039 train,
0040-0049 test): the graph build, the embedder's seconds per epoch, the
inductive transform's throughput (videos per second, best of 3) and the
latency of one video, next to the obvious alternative (re-fitting on train +
test, which a transductive method needs), and the pickle sizes of the
builder, the embedder and the whole pipeline (graph + embed +
logistic-regression head) in one file.

Usage::

    python benchmarks/bench_embed.py --data ../shared/data/yt8m [--epochs 5]
"""

import argparse
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skvidsage import VideoGraphBuilder, VidSageEmbedder, load_youtube8m


def best_of(n, fn):
    """Return the best wall time of ``n`` calls of ``fn``, and its result."""
    times, out = [], None
    for _ in range(n):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/yt8m"))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    files = sorted(args.data.glob("*.tfrecord"))
    if len(files) < 2:
        raise SystemExit(f"need YouTube-8M tfrecords in {args.data}")
    train = load_youtube8m(files[:40])
    test = load_youtube8m(files[40:])
    X, X_test = train.data, test.data
    y = np.asarray(train.target.argmax(axis=1)).ravel()  # a head to pickle

    rows = []
    builder = VideoGraphBuilder()
    build_s, G = best_of(1, lambda: builder.fit_transform(X))
    query_s, G_test = best_of(3, lambda: builder.transform(X_test))
    rows.append(("graph fit_transform (train)", f"{build_s:.2f} s", f"{len(X)} videos"))
    rows.append(("graph transform (test)", f"{query_s:.2f} s", f"{len(X_test)} videos"))

    emb = VidSageEmbedder(max_epochs=args.epochs, random_state=0)
    fit_s, _ = best_of(1, lambda: emb.fit(G))
    rows.append(
        ("embedder fit", f"{fit_s:.1f} s", f"{fit_s / args.epochs:.2f} s/epoch")
    )
    emb_s, _ = best_of(3, lambda: emb.transform(G_test))
    rows.append(
        (
            "embedder transform (inductive)",
            f"{emb_s:.2f} s",
            f"{len(X_test) / emb_s:.0f} videos/s",
        )
    )
    one = builder.transform(X_test[:1])
    one_s, _ = best_of(5, lambda: emb.transform(one))
    rows.append(("embedder transform, one video", f"{one_s * 1000:.0f} ms", ""))
    both = np.vstack([X, X_test])
    refit = VidSageEmbedder(max_epochs=args.epochs, random_state=0)
    refit_s, _ = best_of(1, lambda: refit.fit_transform(both))
    rows.append(
        (
            "alternative: refit on train+test",
            f"{refit_s:.1f} s",
            f"{refit_s / emb_s:.0f}x the inductive transform",
        )
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = Pipeline(
            [
                ("graph", VideoGraphBuilder()),
                ("embed", VidSageEmbedder(max_epochs=args.epochs, random_state=0)),
                ("clf", LogisticRegression(max_iter=200)),
            ]
        ).fit(X, y)
    mib = 2**20
    for name, obj in (
        ("builder", pipe["graph"]),
        ("embedder", pipe["embed"]),
        ("whole pipeline", pipe),
    ):
        size = len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)) / mib
        rows.append((f"pickle: {name}", f"{size:.1f} MiB", ""))
    rows.append(("(training features alone)", f"{X.nbytes / mib:.1f} MiB", ""))

    print(
        f"{len(X)} training / {len(X_test)} test videos, {X.shape[1]} features, "
        f"{args.epochs} epochs"
    )
    print("| step | time or size | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
