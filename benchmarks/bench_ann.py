"""Approximate (faiss) against exact graphs: recall@10, build time, peak memory.

For each data set, ``VideoGraphBuilder(algorithm="faiss")`` builds the
training graph (``fit_transform``: every video linked to the others, the
n x n problem). Recall@10 is the share of each query's 10 exact nearest other
videos (exact copies excluded, as the builder does) that are among its links,
measured on ``--n-queries`` sampled videos against an exact search over the
whole set (so it is exact even at 1M). Brute-force build time is measured at
the sizes in ``--brute`` and extrapolated to the larger sizes as n^2.

Data: the 14,547 real YouTube-8M ``mean_rgb`` vectors of the dev split
(``--yt8m DIR``), and synthetic clustered unit vectors (``--sizes``: a
mixture of ``n / 100`` Gaussian clusters, each row L2-normalised).

Peak RSS is measured in a fresh subprocess per row.

Usage::

    python benchmarks/bench_ann.py --yt8m ../shared/data/yt8m
    python benchmarks/bench_ann.py --sizes 100000 1000000 --dim 256 --brute 50000 100000
"""

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def _clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    n_centres = max(10, n // 100)
    centres = rng.standard_normal((n_centres, dim), dtype=np.float32)
    X = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        X[s : s + m] = centres[rng.integers(n_centres, size=m)]
        X[s : s + m] += 0.6 * rng.standard_normal((m, dim), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def _data(spec, dim):
    if spec == "yt8m":
        from skvidsage import load_youtube8m

        files = sorted(glob.glob(os.path.join(os.environ["YT8M_DIR"], "*.tfrecord")))
        return np.asarray(load_youtube8m(files).data, dtype=np.float32)
    return _clustered(int(spec), dim)


def _exact_top10(X, queries):
    import torch

    R = torch.nn.functional.normalize(torch.from_numpy(X), dim=1)
    Q = R[torch.from_numpy(queries)]
    out = []
    for s in range(0, len(Q), 256):
        sims = Q[s : s + 256] @ R.T
        sims[torch.arange(len(sims)), torch.from_numpy(queries[s : s + 256])] = -2
        out.append(torch.topk(sims, 10, dim=1).indices.numpy())
    return np.concatenate(out)


def _probes(value):
    return value if value == "auto" else int(value)


def _row(spec, dim, algorithm, n_probe, n_queries):
    """Child process: build one graph, print a JSON row."""
    import torch

    from skvidsage.graph import VideoGraphBuilder

    torch.set_num_threads(os.cpu_count())
    X = _data(spec, dim)
    t0 = time.perf_counter()
    builder = VideoGraphBuilder(
        algorithm=algorithm, n_probe=n_probe, tau=2.0, n_neighbors=10, max_degree=10
    )
    A = builder.fit_transform(X).adjacency
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(1)
    queries = np.sort(rng.choice(len(X), min(n_queries, len(X)), replace=False))
    truth = _exact_top10(X, queries)
    hits = sum(
        len(set(truth[j]) & set(A.indices[A.indptr[q] : A.indptr[q + 1]]))
        for j, q in enumerate(queries)
    )
    index = builder.index_
    print(
        json.dumps(
            {
                "data": "YouTube-8M mean_rgb" if spec == "yt8m" else "clustered",
                "n": len(X),
                "dim": X.shape[1],
                "algorithm": algorithm,
                "n_probe": getattr(index, "n_probe", None),
                "recall_estimate": getattr(index, "recall", None),
                "seconds": round(seconds, 1),
                "peak_rss_gib": round(rss / 1024, 2),
                "recall@10": round(hits / (10 * len(queries)), 4),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yt8m", default=None, help="folder of YT8M TFRecords")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--brute", type=int, nargs="*", default=[50_000, 100_000])
    parser.add_argument("--n-probe", type=_probes, nargs="*", default=["auto"],
                        help='cells probed: numbers, or "auto" (the default)')
    parser.add_argument("--n-queries", type=int, default=2000)
    parser.add_argument("--json", default=None)
    parser.add_argument("--_row", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._row:
        spec, dim, algorithm, probe = args._row
        _row(spec, int(dim), algorithm, _probes(probe), args.n_queries)
        return
    env = dict(os.environ)
    plan = []
    if args.yt8m:
        env["YT8M_DIR"] = args.yt8m
        plan += [("yt8m", "brute", 64)] + [("yt8m", "faiss", p) for p in args.n_probe]
    plan += [(str(n), "brute", 64) for n in args.brute]
    plan += [(str(n), "faiss", p) for n in args.sizes for p in args.n_probe]
    print(f"load average at start: {os.getloadavg()}")
    rows = []
    for spec, algorithm, probe in plan:
        cmd = [sys.executable, __file__, "--_row", spec, str(args.dim), algorithm,
               str(probe), "--n-queries", str(args.n_queries)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode:
            print(f"{spec} {algorithm}: failed\n{out.stderr[-2000:]}")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    brute = {r["n"]: r["seconds"] for r in rows if r["algorithm"] == "brute"}
    if brute:
        n0 = max(brute)
        print(f"\nbrute force extrapolated as n^2 from n={n0} ({brute[n0]} s)")
    print(f"{'data':>20} {'n':>9} {'dim':>5} {'algo':>6} {'probes':>6} "
          f"{'s':>8} {'RSS GiB':>8} {'recall@10':>9} {'vs brute':>9}")
    for r in rows:
        ratio = ""
        if brute and r["algorithm"] == "faiss" and r["data"] == "clustered":
            n0 = max(brute)
            ratio = f"{brute[n0] * (r['n'] / n0) ** 2 / r['seconds']:.1f}x"
        print(f"{r['data']:>20} {r['n']:>9} {r['dim']:>5} {r['algorithm']:>6} "
              f"{r['n_probe'] or '':>6} {r['seconds']:>8} {r['peak_rss_gib']:>8} "
              f"{r['recall@10']:>9} {ratio:>9}")
    print(f"load average at end: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
