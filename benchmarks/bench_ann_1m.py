"""The 1M graph from an on-disk float32 np.memmap: time, peak RSS, recall@10.

``gen`` writes bench_ann's clustered vectors (same generator, block by block)
to a raw float32 file; ``build`` maps it read-only, builds the training graph
with ``VideoGraphBuilder(algorithm="faiss")`` and prints one JSON row
(peak RSS of the build, then recall@10 of ``--n-queries`` sampled rows
against an exact search streamed over the whole file). ``brute`` times
brute force's ``transform`` of ``--n-queries`` rows against all ``n``
(brute force costs the same per query row, so ``n`` rows cost ``n /
n_queries`` times as much).

Usage::

    python benchmarks/bench_ann_1m.py gen /tmp/x.f32 --n 1000000
    /usr/bin/time -v python benchmarks/bench_ann_1m.py build /tmp/x.f32 --n 1000000
    python benchmarks/bench_ann_1m.py brute /tmp/x.f32 --n 200000 --n-queries 10000
"""

import argparse
import json
import mmap
import os
import resource
import time

import numpy as np
import torch


def gen(path, n, dim, seed=0):
    """bench_ann._clustered, written block by block (the same numbers)."""
    rng = np.random.default_rng(seed)
    n_centres = max(10, n // 100)
    centres = rng.standard_normal((n_centres, dim), dtype=np.float32)
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, dim))
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        block = centres[rng.integers(n_centres, size=m)]
        block += 0.6 * rng.standard_normal((m, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[s : s + m] = block
    X.flush()


def exact_top10(X, queries):
    Q = torch.nn.functional.normalize(torch.from_numpy(np.array(X[queries])), dim=1)
    best_v = torch.full((len(queries), 10), -np.inf)
    best_i = torch.zeros((len(queries), 10), dtype=torch.int64)
    step = 50_000
    for s in range(0, len(X), step):
        R = torch.nn.functional.normalize(
            torch.from_numpy(np.array(X[s : s + step])), dim=1
        )
        sims = Q @ R.T
        inside = (queries >= s) & (queries < s + len(R))
        sims[np.flatnonzero(inside), queries[inside] - s] = -2  # not itself
        v, i = torch.topk(sims, min(10, len(R)), dim=1)
        v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i + s], 1)
        top = torch.topk(v, 10, dim=1).indices
        best_v, best_i = v.gather(1, top), i.gather(1, top)
        X._mmap.madvise(mmap.MADV_DONTNEED)  # as the builder does
    return best_i.numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["gen", "build", "brute"])
    p.add_argument("path")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--n-probe", default="auto", help='cells probed, or "auto"')
    p.add_argument("--n-queries", type=int, default=1000)
    args = p.parse_args()
    if args.mode == "gen":
        gen(args.path, args.n, args.dim)
        return
    from skvidsage.graph import VideoGraphBuilder

    torch.set_num_threads(os.cpu_count())
    X = np.memmap(args.path, dtype=np.float32, mode="r", shape=(args.n, args.dim))
    load0 = os.getloadavg()
    rng = np.random.default_rng(1)
    queries = np.sort(rng.choice(args.n, args.n_queries, replace=False))
    build = dict(tau=2.0, n_neighbors=10, max_degree=10)
    if args.mode == "brute":
        R = np.array(X)  # brute force holds the reference in memory anyway
        t0 = time.perf_counter()
        b = VideoGraphBuilder(algorithm="brute", **build).fit(R)
        b.transform(R[queries])
        seconds = time.perf_counter() - t0
        row = {
            "n": args.n,
            "algorithm": "brute",
            "queries": args.n_queries,
            "seconds": round(seconds, 1),
            "seconds_all_rows": round(seconds * args.n / args.n_queries, 1),
        }
    else:
        t0 = time.perf_counter()
        n_probe = args.n_probe if args.n_probe == "auto" else int(args.n_probe)
        b = VideoGraphBuilder(algorithm="faiss", n_probe=n_probe, **build)
        A = b.fit_transform(X).adjacency
        seconds = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        truth = exact_top10(X, queries)
        hits = sum(
            len(set(truth[j]) & set(A.indices[A.indptr[q] : A.indptr[q + 1]]))
            for j, q in enumerate(queries)
        )
        row = {
            "n": args.n,
            "dim": args.dim,
            "algorithm": "faiss IVF",
            "n_probe": b.index_.n_probe,
            "recall_estimate": b.index_.recall,
            "index": repr(b.index_),
            "seconds": round(seconds, 1),
            "peak_rss_gib": round(rss, 2),
            "recall@10": round(hits / (10 * len(queries)), 4),
        }
    row["load"] = [load0, os.getloadavg()]
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
