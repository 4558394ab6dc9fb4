"""Speed and size of the LiteVidSage steps on YouTube-8M video-level mean_rgb.

Times, on the dev split of ``bench_yt8m_quality.py`` (validate0000-0039 train,
0040-0049 test): the graph build, the embedder's seconds per epoch, the
inductive transform's throughput (videos per second, best of 3) and the
latency of one video, next to the obvious alternative (re-fitting on train +
test, which a transductive method needs), and the pickle sizes of the
builder, the embedder and the whole pipeline (graph + embed +
logistic-regression head) in one file.

With ``--nodes N`` it measures instead one epoch of mini-batch training of
the paper's network (``hidden_dims=(512, 256)``, fanouts (25, 10), batches of
512) on a synthetic graph of N nodes, ``--degree`` links each (within
clusters of 1,000) and ``--dim`` clustered features: the time and the peak
RSS of each phase of ``VidSageEmbedder.fit`` (propagation, training,
reference states), the peak of each phase taken alone (``VmHWM``, reset
through ``/proc/self/clear_refs`` before it). ``--max-steps`` stops the
epoch early and extrapolates its time from the steps run.

Usage::

    python benchmarks/bench_embed.py --data ../shared/data/yt8m [--epochs 5]
    python benchmarks/bench_embed.py --nodes 1000000 [--max-steps 200]
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


def _rss_gib(field):
    """``VmRSS`` or ``VmHWM`` (the peak since the last reset) of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak():
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def synthetic_graph(n, degree, dim, seed=0):
    """Return a VideoGraph of ``n`` videos, ``degree`` links each in a cluster."""
    import scipy.sparse as sp

    from skvidsage.containers import VideoGraph

    rng = np.random.RandomState(seed)
    size = 1000  # cluster c holds the videos c * 1000 ... c * 1000 + 999
    cluster = np.arange(n) // size
    first = cluster * size
    width = np.minimum(first + size, n) - first
    offset = rng.randint(1, np.maximum(width, 2)[:, None], size=(n, degree))
    cols = (
        first[:, None]
        + (np.arange(n)[:, None] - first[:, None] + offset) % width[:, None]
    )
    weights = rng.uniform(0.5, 1.0, size=(n, degree)).astype(np.float32)
    A = sp.csr_matrix(
        (weights.ravel(), cols.ravel(), np.arange(0, n * degree + 1, degree)),
        shape=(n, n),
    )
    A.sum_duplicates()  # a row may draw one neighbour twice
    centres = rng.standard_normal((n // size + 1, dim)).astype(np.float32)
    X = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65536):
        stop = min(start + 65536, n)
        X[start:stop] = centres[cluster[start:stop]]
        X[start:stop] += rng.standard_normal((stop - start, dim)).astype(np.float32)
    return VideoGraph(X, A)


def bench_nodes(args):
    """One epoch of the paper's network on ``args.nodes`` synthetic nodes."""
    import itertools
    import math

    from skvidsage.embed import _training, embedder

    _reset_peak()
    start = time.perf_counter()
    G = synthetic_graph(args.nodes, args.degree, args.dim)
    rows = [("synthetic graph", time.perf_counter() - start, _rss_gib("VmHWM"))]
    phases = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            _reset_peak()
            before = _rss_gib("VmRSS")
            t0 = time.perf_counter()
            out = fn(*a, **k)
            phases[name] = (time.perf_counter() - t0, _rss_gib("VmHWM"), before)
            return out

        return wrapper

    batches, steps = _training._batches, []

    def counted(*a, **k):
        for batch in itertools.islice(batches(*a, **k), args.max_steps):
            steps.append(time.perf_counter())
            yield batch

    _training._batches = counted
    embedder.fit_network = timed("training (one epoch)", embedder.fit_network)
    embedder.reference_states = timed("reference states", embedder.reference_states)
    emb = VidSageEmbedder(
        hidden_dims=(512, 256), max_epochs=1, full_batch=False, random_state=0
    )
    _reset_peak()
    t0 = time.perf_counter()
    emb.fit(G)
    total = time.perf_counter() - t0
    fit_peak = max([_rss_gib("VmHWM")] + [peak for _, peak, _ in phases.values()])
    n_steps = 1 if emb.full_batch_ else math.ceil(args.nodes / emb.batch_size)
    train_s, train_peak, train_before = phases["training (one epoch)"]
    step_s = (steps[-1] - steps[0]) / max(len(steps) - 1, 1)
    note = f"{len(steps)} of {n_steps} steps, {step_s:.3f} s/step"
    if len(steps) < n_steps:
        note += f"; whole epoch extrapolated: {n_steps * step_s / 60:.1f} min"
    rows.append(
        ("propagation and setup", total - train_s - phases["reference states"][0], None)
    )
    rows.append(
        ("training (one epoch)", train_s, train_peak, note, train_peak - train_before)
    )
    states_s, states_peak, states_before = phases["reference states"]
    rows.append(
        ("reference states", states_s, states_peak, "", states_peak - states_before)
    )
    rows.append(("VidSageEmbedder.fit, all", total, fit_peak))
    print(
        f"{args.nodes} nodes, degree {args.degree}, {args.dim}-d features, "
        "hidden_dims=(512, 256), fanouts (25, 10), batch 512, full_batch_="
        f"{emb.full_batch_}; loss {emb.loss_curve_[0]:.4f}"
    )
    print("| phase | seconds | peak RSS (GiB) | above the RSS before it (GiB) | note |")
    print("|---|---|---|---|---|")
    for name, seconds, peak, *rest in rows:
        note, above = (rest + ["", None])[:2]
        peak = "" if peak is None else f"{peak:.2f}"
        above = "" if above is None else f"{above:.2f}"
        print(f"| {name} | {seconds:.1f} | {peak} | {above} | {note} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/yt8m"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--degree", type=int, default=10)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args(argv)
    if args.nodes is not None:
        bench_nodes(args)
        return
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
