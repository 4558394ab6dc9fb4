"""GPU figures with CPU figures beside them, from the same run (issue 12.6).

Rows: the graph build at ``--n`` videos (GPU: exact brute force; CPU: faiss,
and brute force on ``--n-cpu`` videos extrapolated as n^2), one training
epoch of the embedder on a synthetic degree-10 graph of ``--n`` nodes (CPU on
``--n-cpu`` nodes, extrapolated linearly), the featurisation latency of one
5-s clip, and the inductive transform's throughput. Run by
``benchmarks/gpu_check.sh``; ``--device cpu --n 20000 --n-cpu 5000`` checks
the script on a machine without a GPU.
"""

import argparse
import os
import tempfile
import time

import numpy as np
import scipy.sparse as sp
import torch

from skvidsage import VideoFeaturizer, VideoGraphBuilder, VidSageEmbedder
from skvidsage.containers import VideoGraph
from skvidsage.datasets import make_video_classification


def _clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(10, n // 100), dim), dtype=np.float32)
    X = centres[rng.integers(len(centres), size=n)]
    X += 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _random_graph(n, dim, degree=10, seed=0):
    rng = np.random.default_rng(seed)
    cols = rng.integers(n - 1, size=(n, degree))
    cols += cols >= np.arange(n)[:, None]  # no self links
    indptr = np.arange(0, n * degree + 1, degree)
    A = sp.csr_matrix(
        (np.ones(n * degree, np.float32), cols.ravel(), indptr), shape=(n, n)
    )
    A.sum_duplicates()
    return VideoGraph(rng.standard_normal((n, dim), dtype=np.float32), A)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


class _Rows(list):
    """The figures, each printed when appended."""

    def append(self, row):
        name, device, value = row
        print(f"{name:<62} {device:>7} {value:>12.2f}", flush=True)
        super().append(row)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--n-cpu", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=256)
    args = p.parse_args()
    dev = args.device
    print(f"device {dev}: {torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'}; "
          f"{os.cpu_count()} CPU cores; torch {torch.__version__}")
    # each figure is printed as soon as it is measured, so that a run cut by
    # the script's time limit still leaves the figures it reached
    print(f"\n{'figure':<62} {'device':>7} {'value':>12}", flush=True)
    rows = _Rows()
    X = _clustered(args.n, args.dim)
    build = dict(tau=2.0, n_neighbors=10, max_degree=10)
    s, _ = _timed(lambda: VideoGraphBuilder(algorithm="brute", device=dev, **build)
                  .fit_transform(X))
    rows.append((f"graph build, {args.n} x {args.dim}, brute", dev, s))
    s, _ = _timed(lambda: VideoGraphBuilder(algorithm="faiss", device="cpu", **build)
                  .fit_transform(X))
    rows.append((f"graph build, {args.n} x {args.dim}, faiss", "cpu", s))
    Xc = X[: args.n_cpu]
    s, _ = _timed(lambda: VideoGraphBuilder(algorithm="brute", device="cpu", **build)
                  .fit_transform(Xc))
    rows.append((f"graph build, {args.n} x {args.dim}, brute (from {args.n_cpu}, n^2)",
                 "cpu", s * (args.n / args.n_cpu) ** 2))
    emb = dict(hidden_dims=(256, 256), max_epochs=1, random_state=0)
    G = _random_graph(args.n, args.dim)
    s, _ = _timed(lambda: VidSageEmbedder(device=dev, **emb).fit(G))
    rows.append((f"embedder epoch, {args.n} nodes, degree 10", dev, s))
    Gc = _random_graph(args.n_cpu, args.dim)
    s, _ = _timed(lambda: VidSageEmbedder(device="cpu", **emb).fit(Gc))
    rows.append((f"embedder epoch, {args.n} nodes (from {args.n_cpu}, linear)", "cpu",
                 s * args.n / args.n_cpu))
    with tempfile.TemporaryDirectory() as home:
        clip = make_video_classification(
            n_videos=2, n_classes=2, duration=5.0, data_home=home, random_state=0
        ).filenames[:1]
        for d in dict.fromkeys([dev, "cpu"]):
            feat = VideoFeaturizer(device=d).fit(clip)
            feat.transform(clip)  # warm-up
            s = min(_timed(lambda f=feat: f.transform(clip))[0] for _ in range(3))
            rows.append(("featurize one 5-s clip (1 fps)", d, s))
    # inductive transform: an embedder fitted on n_cpu videos (its own graph)
    reference, queries = Xc, _clustered(args.n_cpu, args.dim, seed=1)
    fitted = VidSageEmbedder(device=dev, **emb).fit(reference)
    for d in dict.fromkeys([dev, "cpu"]):
        fitted.set_params(device=d)
        fitted.device_ = torch.device(d)
        fitted.graph_builder_.device_ = torch.device(d)
        fitted.transform(queries[:1000])  # warm-up
        s, _ = _timed(lambda: fitted.transform(queries))
        rows.append((f"transform {len(queries)} unseen videos (videos/s)", d,
                     len(queries) / s))


if __name__ == "__main__":
    main()
