"""Benchmark VideoGraphBuilder on random L2-normalised float32 features.

Builds the graph of ``--n`` random unit vectors of dimension ``--dim``
(``fit_transform``: every video linked to the whole set, so an n x n problem)
and reports wall time, peak resident memory and mean degree. In the same run
it compares with the obvious alternative, scikit-learn's brute-force
``NearestNeighbors.kneighbors_graph``, on ``--n-compare`` videos (ours with
``tau > 1``, i.e. the same plain k-NN graph, and with the default ``tau``).

Peak RSS is the process maximum so far (``ru_maxrss``), so rows are run in
increasing order of memory and the first row is the one to read for ours.

Usage::

    python benchmarks/bench_graph.py                    # n=100_000, d=1024
    python benchmarks/bench_graph.py --n 20000 --n-compare 5000
"""

import argparse
import resource
import sys
import time

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from skvidsage.containers import VideoFeatures
from skvidsage.graph import VideoGraphBuilder


def _peak_rss_mib():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


def _random_unit(n, dim, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def _random_object_sets(n, n_labels, seed):
    """About 3 labels per video; label 0 ("person") in half of the videos."""
    rng = np.random.default_rng(seed)
    sets = [set(rng.integers(1, n_labels, size=rng.integers(0, 5))) for _ in range(n)]
    for s, common in zip(sets, rng.random(n) < 0.5, strict=True):
        if common:
            s.add(0)
    return sets


def _ours(X, args, tau):
    builder = VideoGraphBuilder(
        tau=tau,
        n_neighbors=args.n_neighbors,
        max_degree=args.max_degree,
        batch_size=args.batch_size,
        device=args.device,
    )
    start = time.perf_counter()
    A = builder.fit_transform(X).adjacency
    return time.perf_counter() - start, A


def _sklearn(X, args):
    nn = NearestNeighbors(n_neighbors=args.n_neighbors, algorithm="brute")
    start = time.perf_counter()
    A = nn.fit(X).kneighbors_graph(X, mode="connectivity")
    return time.perf_counter() - start, A


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="videos")
    parser.add_argument("--dim", type=int, default=1024, help="feature dimension")
    parser.add_argument("--n-neighbors", type=int, default=10, help="floor k")
    parser.add_argument("--max-degree", type=int, default=50, help="degree cap")
    parser.add_argument("--tau", type=float, default=0.3, help="threshold on g")
    parser.add_argument("--device", default="auto", help='torch device or "auto"')
    parser.add_argument(
        "--batch-size",
        default="auto",
        type=lambda s: s if s == "auto" else int(s),
        help='query rows per block or "auto"',
    )
    parser.add_argument(
        "--n-labels",
        type=int,
        default=0,
        help="if > 0, also time VidSage on --n-compare videos with random "
        "object sets over this many labels",
    )
    parser.add_argument(
        "--n-compare",
        type=int,
        default=20_000,
        help="videos for the comparison with scikit-learn (0 to skip)",
    )
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device={args.device}, batch_size={args.batch_size}, "
        f"n_neighbors={args.n_neighbors}, max_degree={args.max_degree}"
    )
    header = (
        f"{'method':<34} {'n':>8} {'d':>5} {'time (s)':>9} "
        f"{'peak RSS (MiB)':>15} {'mean degree':>12}"
    )
    print(header)
    print("-" * len(header))

    def row(method, n, seconds, A):
        print(
            f"{method:<34} {n:>8} {args.dim:>5} {seconds:>9.1f} "
            f"{_peak_rss_mib():>15.0f} {A.nnz / A.shape[0]:>12.2f}",
            flush=True,
        )

    results = {}
    if args.n_compare:
        Xc = _random_unit(args.n_compare, args.dim, seed=1)
        t, A_ours = _ours(Xc, args, tau=2.0)
        row("VideoGraphBuilder(tau=2) = k-NN", args.n_compare, t, A_ours)
        results["ours"] = t
        t, A = _ours(Xc, args, tau=args.tau)
        row(f"VideoGraphBuilder(tau={args.tau})", args.n_compare, t, A)
        t, A_sk = _sklearn(Xc, args)
        row("sklearn NearestNeighbors(brute)", args.n_compare, t, A_sk)
        results["sklearn"] = t
        same = (A_ours != A_sk).nnz == 0
        if args.n_labels:
            sets = _random_object_sets(args.n_compare, args.n_labels, seed=2)
            t, A = _ours(VideoFeatures(Xc, sets), args, tau=args.tau)
            row(f"  + object sets ({args.n_labels} labels)", args.n_compare, t, A)
        del Xc, A, A_ours, A_sk
    X = _random_unit(args.n, args.dim, seed=0)
    t, A = _ours(X, args, tau=args.tau)
    row(f"VideoGraphBuilder(tau={args.tau})", args.n, t, A)
    if args.n_compare:
        print(
            f"\nn={args.n_compare}: sklearn brute / ours (k-NN graph) = "
            f"{results['sklearn'] / results['ours']:.2f}x; same k-NN graph: {same}"
        )


if __name__ == "__main__":
    main()
