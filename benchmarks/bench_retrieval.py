""""More like this" on real YouTube-8M: retrieval quality, then search speed (issue 14).

Quality, every representation searched by :class:`skvidsage.VideoIndex`
(exact search) in one run:

- catalogue: validate0000-0039 (11,790 videos), queries: validate0040-0049
  (2,757 unseen videos); every label of the 3,862-class vocabulary, no
  video dropped (``load_split(..., min_positives=0, drop_unlabelled=False)``);
- a catalogue video is relevant to a query when they share at least one
  label, and (second definition) when the Jaccard similarity of their label
  sets is at least 0.5; a query without any relevant catalogue video is left
  out of that definition's precision and mAP (their number is printed);
- precision@k, mAP@k (AP@k = sum over the top k of P@i at each relevant hit,
  divided by min(k, the query's relevant catalogue videos)) and label
  recall@k (the share of the query's labels found among the labels of its k
  hits), for k = 1, 5, 10, 20;
- representations: raw ``mean_rgb`` (L2-normalised); ``[x, mean of the 10
  nearest catalogue videos]`` and the SGC-style
  reference ``[x, Sx, S^2 x]`` of ``bench_yt8m_quality.py`` (computed there
  without the package, wrapped here as a transformer); ``VidSageEmbedder()``
  (the default embedding); and the best embedding of the accuracy issue,
  ``VidSageEmbedder(graph=VideoGraphBuilder(columns=slice(0, 1024)))`` on
  ``mean_rgb`` + ``mean_audio`` (each modality L2-normalised), with raw
  ``mean_rgb`` + ``mean_audio`` beside it; and the retrieval-only setting
  of the user guide, ``VidSageEmbedder(hops=3,
  graph=VideoGraphBuilder(n_neighbors=20))``, chosen on the validation files
  (``explore_yt8m_val.py graph-choice``), scored here once; and the pooled
  tail ``[x, Sx, mean(S^2x, ..., S^8x)]``, ``VidSageEmbedder(tail_hops=6)``,
  chosen on the same files (``explore_yt8m_val.py geometric-tail``), scored
  here once. The propagated
  representations are searched with each block normalised
  (``normalize="blocks"``, the default for them) and, as the ablation, with
  whole rows (``"rows"``).

Speed, exact (``algorithm="brute"``) and faiss HNSW (``algorithm="faiss"``,
``--m`` links per node, ``--ef-construction``, the ``--ef-search`` values on
one index): the median and 95th percentile of
``--n-single`` one-query ``kneighbors`` calls (10 neighbours; the search
only, on a precomputed representation), the throughput of one call with
``--n-queries`` queries, and faiss's recall@10 against the exact search:

- the 14,547 dev videos in the default embedding (3,072 columns, blocks
  normalised); queries: the 2,757 videos of 0040-0049 (in the catalogue:
  each finds itself);
- ``--sizes`` synthetic catalogues of ``--dim`` columns
  (``bench_ann._clustered``: a mixture of ``n / 100`` Gaussian clusters, unit
  rows), queries drawn from the same mixture (not in the catalogue).

Usage::

    python benchmarks/bench_retrieval.py --data ../shared/data/yt8m
    python benchmarks/bench_retrieval.py --skip-quality --ef-search 32 64 128 256
    python benchmarks/bench_retrieval.py --skip-quality --m 16 --ef-construction 40
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from bench_ann import _clustered  # benchmarks/ is on sys.path
from bench_yt8m_quality import load_split, mean10, sgc
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.frozen import FrozenEstimator

from skvidsage import VideoGraphBuilder, VideoIndex, VidSageEmbedder

KS = (1, 5, 10, 20)
RELEVANCE = ("shared label", "Jaccard >= 0.5")


def load():
    print(f"load average: {os.getloadavg()}", flush=True)


class SGCReference(TransformerMixin, BaseEstimator):
    """``bench_yt8m_quality.sgc`` as a transformer, with ``blocks_``.

    ``fit_transform`` gives the catalogue's rows (its training graph; a
    video is never its own neighbour), ``transform`` an unseen video's row,
    as the quality benchmark does. A subclass sets ``features``, another of
    that benchmark's ``(X_train, X_eval, same)`` maps, and its block names.
    """

    features = staticmethod(sgc)
    block_names = ("x", "hop1", "hop2")

    def fit(self, X, y=None):
        """Keep the catalogue videos."""
        self.X_ = np.asarray(X, dtype=np.float32)
        d = self.X_.shape[1]
        self.blocks_ = {name: slice(i * d, (i + 1) * d)
                        for i, name in enumerate(self.block_names)}
        return self

    def fit_transform(self, X, y=None):
        """Keep the catalogue videos; return their rows."""
        return self.features(self.fit(X).X_, self.X_, True)

    def transform(self, X):
        """Return the rows of unseen videos."""
        return self.features(self.X_, np.asarray(X, dtype=np.float32), False)


class Mean10Reference(SGCReference):
    """``bench_yt8m_quality.mean10``, ``[x, mean of the 10 nearest]``."""

    features = staticmethod(mean10)
    block_names = ("x", "mean10")


# ------------------------------------------------------------------ quality
def relevance(Yq, Yc):
    """Boolean (n_queries, n_catalogue) matrices, one per definition."""
    inter = (Yq @ Yc.T).toarray()
    sq = np.asarray(Yq.sum(axis=1), dtype=np.float32)
    sc = np.asarray(Yc.sum(axis=1), dtype=np.float32).T
    jaccard = inter / (sq + sc - inter)
    return {"shared label": inter > 0, "Jaccard >= 0.5": jaccard >= 0.5}


def scores(relevant, Yq, Yc, idx):
    """P@k and mAP@k per relevance definition, and label recall@k."""
    out = {}
    for name, R in relevant.items():
        n_rel = R.sum(axis=1)
        keep = n_rel > 0
        hit = np.take_along_axis(R, idx, axis=1)[keep]
        prec = np.cumsum(hit, axis=1) / np.arange(1, idx.shape[1] + 1)
        for k in KS:
            out[f"{name} P@{k}"] = float(prec[:, k - 1].mean())
            ap = (prec[:, :k] * hit[:, :k]).sum(axis=1) / np.minimum(k, n_rel[keep])
            out[f"{name} mAP@{k}"] = float(ap.mean())
    Yq_d, Yc_d = Yq.toarray() > 0, Yc.toarray() > 0
    covered = np.zeros_like(Yq_d)
    for j in range(idx.shape[1]):
        covered |= Yc_d[idx[:, j]]
        if j + 1 in KS:
            found = (covered & Yq_d).sum(axis=1) / Yq_d.sum(axis=1)
            out[f"label recall@{j + 1}"] = float(found.mean())
    return out


def quality(data_dir):
    inputs = {}
    for name in ("rgb", "rgb+audio"):
        Xc, Yc, Xq, Yq, _ = load_split(data_dir, name, min_positives=0,
                                       drop_unlabelled=False)
        inputs[name] = (Xc, Xq)
        labels = (sp.csr_matrix(Yc, dtype=np.float32),
                  sp.csr_matrix(Yq, dtype=np.float32))
        del Yc, Yq
    Yc, Yq = labels
    relevant = relevance(Yq, Yc)
    print(f"catalogue {Yc.shape[0]} videos, {Yq.shape[0]} queries, "
          f"{Yc.shape[1]} classes; queries without a relevant catalogue video: "
          + ", ".join(f"{r}: {int((~relevant[r].any(axis=1)).sum())}"
                      for r in RELEVANCE), flush=True)
    load()
    default = VidSageEmbedder()
    best = VidSageEmbedder(graph=VideoGraphBuilder(columns=slice(0, 1024)))
    systems = [
        ("raw mean_rgb", "rgb", lambda: VideoIndex()),
        ("[x, mean of 10 nearest]", "rgb", lambda: VideoIndex(Mean10Reference())),
        ("  same, rows normalised", "rgb",
         lambda: VideoIndex(Mean10Reference(), normalize="rows")),
        ("SGC-style [x, Sx, S^2x]", "rgb", lambda: VideoIndex(SGCReference())),
        ("  same, rows normalised", "rgb",
         lambda: VideoIndex(SGCReference(), normalize="rows")),
        ("VidSageEmbedder() (default)", "rgb", lambda: VideoIndex(default)),
        ("  same, rows normalised", "rgb", "rows"),
        ("retrieval-only: VidSageEmbedder(hops=3, graph=...n_neighbors=20)",
         "rgb", lambda: VideoIndex(VidSageEmbedder(
             hops=3, graph=VideoGraphBuilder(n_neighbors=20)))),
        ("pooled tail: VidSageEmbedder(tail_hops=6), [x, Sx, mean(S^2x..S^8x)]",
         "rgb", lambda: VideoIndex(VidSageEmbedder(tail_hops=6))),
        ("raw mean_rgb + mean_audio", "rgb+audio", lambda: VideoIndex()),
        ("best: VidSageEmbedder(graph=...columns=slice(0, 1024)), rgb+audio",
         "rgb+audio", lambda: VideoIndex(best)),
        ("  same, rows normalised", "rgb+audio", "rows"),
    ]
    rows, last, fitted = [], None, {}
    for name, inp, make in systems:
        Xc, Xq = inputs[inp]
        t0 = time.perf_counter()
        if make == "rows":  # the previous system's fitted model, frozen
            index = VideoIndex(FrozenEstimator(last.transformer_), normalize="rows")
        else:
            index = make()
        index.fit(Xc)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx = index.kneighbors(Xq, n_neighbors=max(KS), return_distance=False)
        search_s = time.perf_counter() - t0
        row = {"system": name, "input": inp, "normalize": index.normalize_,
               "dims": index.embedding_.shape[1], "fit_s": round(fit_s, 1),
               "kneighbors_s": round(search_s, 1),
               **scores(relevant, Yq, Yc, idx)}
        rows.append(row)
        if make != "rows":
            last = fitted[name] = index
        print(json.dumps(row), flush=True)
    load()
    print_quality(rows)
    return rows, inputs, fitted["VidSageEmbedder() (default)"].transformer_


def print_quality(rows):
    raw = rows[0]
    for rel in RELEVANCE:
        print(f"\nrelevance: {rel}")
        print(f"{'system':>66} {'norm':>6} " + " ".join(
            f"{'P@' + str(k):>7} {'mAP@' + str(k):>7}" for k in KS))
        for r in rows:
            print(f"{r['system']:>66} {r['normalize']:>6} " + " ".join(
                f"{r[f'{rel} P@{k}']:>7.4f} {r[f'{rel} mAP@{k}']:>7.4f}" for k in KS))
    print(f"\n{'system':>66} " + " ".join(f"{'recall@' + str(k):>9}" for k in KS))
    for r in rows:
        print(f"{r['system']:>66} " + " ".join(
            f"{r[f'label recall@{k}']:>9.4f}" for k in KS))
    print("\nP@10 (shared label) gain over raw mean_rgb, points: " + ", ".join(
        f"{r['system'].strip()} [{r['normalize']}] "
        f"{100 * (r['shared label P@10'] - raw['shared label P@10']):+.2f}"
        for r in rows[1:]))


# -------------------------------------------------------------------- speed
def timed_single(index, Q, n):
    times = []
    for i in range(min(n, len(Q))):
        t0 = time.perf_counter()
        index.kneighbors(Q[i : i + 1], n_neighbors=10)
        times.append(time.perf_counter() - t0)
    return 1e3 * np.median(times), 1e3 * np.percentile(times, 95)


def speed(name, C, Q, *, n_single, n_queries, ef_search, hnsw):
    """Exact and faiss rows for one catalogue (C and Q: normalised rows)."""
    rows = []
    Q_single, Q_batch = Q[:n_single], Q[:n_queries]
    print(f"\n{name}: catalogue {C.shape[0]} x {C.shape[1]}", flush=True)
    load()
    truth = None
    for algorithm in ("brute", "faiss"):
        t0 = time.perf_counter()
        index = VideoIndex(algorithm=algorithm, **hnsw).fit(C)
        fit_s = time.perf_counter() - t0
        for ef in (None,) if algorithm == "brute" else ef_search:
            if ef is not None:
                index.set_params(ef_search=ef)  # read at search time
            median, p95 = timed_single(index, Q_single, n_single)
            t0 = time.perf_counter()
            idx = index.kneighbors(Q_batch, n_neighbors=10, return_distance=False)
            batch_s = time.perf_counter() - t0
            if truth is None:
                truth = idx
            recall = np.mean([len(set(a) & set(b)) / 10
                              for a, b in zip(idx, truth, strict=True)])
            row = {"catalogue": name, "n": C.shape[0], "dims": C.shape[1],
                   "algorithm": algorithm, "ef_search": ef,
                   **({} if ef is None else hnsw),
                   "fit_s": round(fit_s, 1), "latency_ms_median": round(median, 3),
                   "latency_ms_p95": round(p95, 3),
                   "queries_per_s": round(len(Q_batch) / batch_s, 1),
                   "recall@10": round(float(recall), 4),
                   "load": round(os.getloadavg()[0], 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        del index
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/yt8m"))
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--ef-search", type=int, nargs="*", default=[128])
    parser.add_argument("--m", type=int, default=32, help="HNSW links per node")
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--n-single", type=int, default=200)
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    load()
    out = {}
    hnsw = {"m": args.m, "ef_construction": args.ef_construction}
    if not args.skip_quality:
        out["quality"], inputs, default = quality(args.data)
    if not args.skip_speed:
        rows = []
        if args.skip_quality:
            Xc, _, Xq, _, _ = load_split(args.data, "rgb", min_positives=0,
                                         drop_unlabelled=False)
            inputs = {"rgb": (Xc, Xq)}
            default = None
        Xc, Xq = inputs["rgb"]
        # the default embedding of every dev video: fitted on the catalogue
        # (or taken from the quality run), the test videos embedded through it
        emb = VidSageEmbedder().fit(Xc) if default is None else default
        whole = VideoIndex(FrozenEstimator(emb)).fit(np.vstack([Xc, Xq]))
        C = whole.embedding_
        Q = C[len(Xc):]
        del whole
        rows += speed("YouTube-8M dev videos, default embedding", C, Q,
                      n_single=args.n_single, n_queries=len(Q),
                      ef_search=args.ef_search, hnsw=hnsw)
        for n in args.sizes:
            X = _clustered(n + args.n_queries, args.dim)
            rows += speed(f"synthetic clustered, {n}", X[:n], X[n:],
                          n_single=args.n_single, n_queries=args.n_queries,
                          ef_search=args.ef_search, hnsw=hnsw)
            del X
        out["speed"] = rows
        print(f"\n{'catalogue':>42} {'n':>8} {'dims':>5} {'algo':>6} {'m/efC':>6} "
              f"{'ef':>5} {'fit s':>7} {'ms/query':>9} {'p95 ms':>8} "
              f"{'queries/s':>10} {'recall@10':>9}")
        for r in rows:
            built = f"{r['m']}/{r['ef_construction']}" if "m" in r else ""
            print(f"{r['catalogue']:>42} {r['n']:>8} {r['dims']:>5} "
                  f"{r['algorithm']:>6} {built:>6} {r['ef_search'] or '':>5} "
                  f"{r['fit_s']:>7} "
                  f"{r['latency_ms_median']:>9} {r['latency_ms_p95']:>8} "
                  f"{r['queries_per_s']:>10} {r['recall@10']:>9}")
    load()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
