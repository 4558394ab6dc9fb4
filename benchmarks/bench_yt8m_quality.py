"""Does the graph pay off against a tuned head? YouTube-8M video level, honest protocol.

The project's quality protocol (``docs/results.rst``):

- validate0000-0039 are the training videos, validate0040-0049 the unseen
  test videos; classes with at least 20 training positives, videos without
  any of them dropped;
- the same head everywhere, ``OneVsRestClassifier(LogisticRegression())``;
  its ``C`` (and a system's own blend weight ``a``, where it has one) is
  chosen per system by GAP on a validation split carved from the training
  videos (their last 20% in file order: files 0032-0039 for the full set),
  then the system is refitted on all its training videos and scored once on
  the test files; the chosen values are printed;
- a learning curve (``--sizes``: the first n training videos in file order);
- inputs ``mean_rgb``, and ``mean_rgb`` + ``mean_audio`` (each modality
  L2-normalised, then concatenated); every graph, the references' included,
  links videos by the visual part (``VideoGraphBuilder(columns=slice(0,
  1024))``; the paper's graph is visual) and propagates every column;
- the references in the same run, computed here without the package:
  raw features, ``[x, mean of the 10 nearest training videos]``, SGC-style
  ``[x, S x, S^2 x]`` (the symmetrised 10-NN graph with self loops,
  ``S = D^-1/2 (A + I) D^-1/2``; an unseen video's row weighs itself
  ``1 / d_q`` and training video ``j`` by ``1 / sqrt(d_q d_j)``), and the
  raw head blended with the label vote of the 10 nearest training videos;
- the package's systems: ``VidSageEmbedder()`` + head, and
  ``GraphSmoothingClassifier`` around it (its linear blend, and its
  ``combine="log_odds"`` update); with ``--learned``, the embedder
  with trained GraphSAGE layers (3 seeds: mean and spread) and the paper's
  network alone; with ``--candidates``, the settings proposed as the next
  default (``VidSageEmbedder(tail_hops=6)``, chosen on the validation
  files by ``explore_yt8m_val.py geometric-tail``).

Usage::

    python benchmarks/bench_yt8m_quality.py --data ../shared/data/yt8m
    python benchmarks/bench_yt8m_quality.py --inputs rgb --sizes all --learned
    python benchmarks/bench_yt8m_quality.py --candidates \
        --systems "raw,SGC,[x,VidSageEmbedder(,candidate"
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import normalize

from skvidsage import (
    GraphSmoothingClassifier,
    VideoGraphBuilder,
    VidSageEmbedder,
    load_youtube8m,
)
from skvidsage.metrics import (
    global_average_precision_score,
    hit_at_k_score,
    mean_average_precision_score,
    perr_score,
)

C_GRID = (1.0, 4.0, 16.0, 64.0)
A_GRID = (0.1, 0.2, 0.3, 0.4, 0.5)
# the log-odds update's weight: 1 is the Bayes update (explore_yt8m_val votes)
LOG_ODDS_A_GRID = (0.5, 0.75, 1.0)
# GraphSmoothingClassifier with its combine rule in the grid: (combine, a)
COMBINE_GRID = tuple(("linear", a) for a in A_GRID) + tuple(
    ("log_odds", a) for a in LOG_ODDS_A_GRID)
# GraphSmoothingClassifier's graph ((k nearest, RBF gamma)) and label
# smoothing layers, tuned with C and a
GSC_GRID = [((k, g), 0) for k in (10, 20, 50) for g in (5.0, 10.0)] + [((20, 10.0), 1)]


def load_split(data_dir, inputs, n_train_files=40, min_positives=20,
               drop_unlabelled=True):
    """Train/test features and int64 label matrices of the dev split.

    ``drop_unlabelled`` drops the videos with none of the kept classes.
    """
    files = sorted(Path(data_dir).glob("*.tfrecord"))
    features = ("mean_rgb",) if inputs == "rgb" else ("mean_rgb", "mean_audio")
    train = load_youtube8m(files[:n_train_files], features=features)
    test = load_youtube8m(files[n_train_files:], features=features)
    counts = np.asarray(train.target.sum(axis=0)).ravel()
    classes = np.flatnonzero(counts >= min_positives)
    out = []
    for bunch in (train, test):
        Y = bunch.target[:, classes]
        rows = np.asarray(Y.sum(axis=1)).ravel() > 0
        if not drop_unlabelled:
            rows[:] = True
        X = bunch.data[rows]
        if inputs != "rgb":  # each modality on the unit sphere
            X = np.hstack([normalize(X[:, :1024]), normalize(X[:, 1024:])])
        out += [X.astype(np.float32), Y[rows].toarray().astype(np.int64)]
    return (*out, classes)


def scores(Y, P):
    return {
        "Hit@1": hit_at_k_score(Y, P),
        "GAP": global_average_precision_score(Y, P),
        "PERR": perr_score(Y, P),
        "mAP": mean_average_precision_score(Y, P),
    }


def head(C, n_jobs):
    return OneVsRestClassifier(
        LogisticRegression(max_iter=1000, C=C), n_jobs=n_jobs
    )


def fit_head(Z, Y, C, n_jobs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence at large C
        return head(C, n_jobs).fit(Z, Y)


# ---------------------------------------------------------------- references
VISUAL = slice(0, 1024)  # the columns every graph links by


def knn(X_ref, X_query, k, exclude_self):
    """Cosine k nearest reference rows by the visual columns (never itself)."""
    nn = NearestNeighbors(n_neighbors=k + exclude_self, metric="cosine")
    nn.fit(X_ref[:, VISUAL])
    idx = nn.kneighbors(X_query[:, VISUAL], return_distance=False)
    return idx[:, 1:] if exclude_self else idx


def mean10(X_train, X_eval, same):
    x_t, x_e = normalize(X_train), normalize(X_eval)
    idx = knn(x_t, x_e, 10, exclude_self=same)
    return np.hstack([x_e, x_t[idx].mean(axis=1)])


def sgc(X_train, X_eval, same, k=10):
    """SGC-style [x, Sx, S^2x]: symmetrised k-NN graph with self loops."""
    x_t = normalize(X_train)
    n = len(x_t)
    idx = knn(x_t, x_t, k, exclude_self=True)
    A = sp.csr_matrix((np.ones(idx.size), idx.ravel(), np.arange(0, idx.size + 1, k)),
                      shape=(n, n))
    A = A.maximum(A.T)
    d = 1.0 + np.asarray(A.sum(axis=1)).ravel()
    Dm = sp.diags(1.0 / np.sqrt(d))
    S = Dm @ (A + sp.eye(n)) @ Dm
    S1 = S @ x_t
    if same:
        return np.hstack([x_t, S1, S @ S1]).astype(np.float32)
    x_e = normalize(X_eval)
    q = knn(x_t, x_e, k, exclude_self=False)
    d_q = 1.0 + k
    w = 1.0 / np.sqrt(d_q * d[q])  # (n_q, k)
    s1 = x_e / d_q + np.einsum("qk,qkd->qd", w, x_t[q])
    s2 = s1 / d_q + np.einsum("qk,qkd->qd", w, S1[q])
    return np.hstack([x_e, s1, s2]).astype(np.float32)


def label_vote(X_train, Y_train, X_eval, k=10):
    idx = knn(normalize(X_train), normalize(X_eval), k, exclude_self=False)
    return Y_train[idx].mean(axis=1)


# ------------------------------------------------------------------ protocol
class System:
    """A feature map (or a package classifier) scored by the protocol.

    ``features(X_fit, X_eval, same, seed)`` maps to the head's inputs; a
    system with ``blend`` also returns, for a blend weight ``a``, scores
    blended after the head.
    """

    def __init__(self, name, features=None, vote=False, gsc=None, seeds=(0,),
                 a_grid=None):
        self.name, self.features, self.vote, self.gsc = name, features, vote, gsc
        self.seeds = seeds
        self.a_grid = A_GRID if a_grid is None else a_grid


def smoothing_params(a):
    """Map a grid value, ``a`` or ``(combine, a)``, to the classifier's parameters."""
    if isinstance(a, tuple):
        return {"combine": a[0], "smoothing": a[1]}
    return {"smoothing": a}


def a_text(a):
    """Format a grid value for the tables."""
    if a is None:
        return "-"
    return f"{a[1]:g} {a[0]}" if isinstance(a, tuple) else f"{a:g}"


def gsc_search(system, X_fit, Y_fit, X_eval, C, seed):
    """GraphSmoothingClassifier's own grid at C: {(graph, layers, a): P_eval}.

    The base pipeline is fitted once per C and frozen
    (``sklearn.frozen.FrozenEstimator``), so each of the classifier's own
    settings costs a graph, not a head.
    """
    base = system.gsc(C, seed, None, 0, 0.0).estimator.fit(X_fit, Y_fit)
    out, clf = {}, None
    for graph, layers in GSC_GRID:
        for a in system.a_grid:
            if layers == 0 and a != system.a_grid[0]:
                clf.set_params(**smoothing_params(a))  # read at predict time only
            else:
                clf = system.gsc(C, seed, graph, layers, a)
                clf.set_params(estimator=FrozenEstimator(base)).fit(X_fit, Y_fit)
            out[(graph, layers, a)] = clf.predict_proba(X_eval)
    return out


def evaluate(system, X_fit, Y_fit, X_eval, C, a_grid, seed, n_jobs, timing=None,
             key=None):
    """Fit on (X_fit, Y_fit) at C; return {a: P_eval} (a=None: no blend)."""
    if system.gsc is not None:
        if key is None:
            return gsc_search(system, X_fit, Y_fit, X_eval, C, seed)
        t0 = time.perf_counter()
        clf = system.gsc(C, seed, *key).fit(X_fit, Y_fit)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        P = clf.predict_proba(X_eval)
        predict_s = time.perf_counter() - t0
        if timing is not None:
            timing.update(fit_s=fit_s, predict_s=predict_s, n_fit=len(X_fit),
                          n_predict=len(X_eval))
        return {key: P}
    Z_fit = system.features(X_fit, X_fit, True, seed)
    Z_eval = system.features(X_fit, X_eval, False, seed)
    P = fit_head(Z_fit, Y_fit, C, n_jobs).predict_proba(Z_eval)
    if not system.vote:
        return {None: P}
    V = label_vote(X_fit, Y_fit, X_eval)
    return {a: (1 - a) * P + a * V for a in a_grid}


def run_system(system, X, Y, X_test, Y_test, n_jobs):
    """Choose (C, a) on the validation split; refit; score the test videos."""
    n_val = int(round(0.2 * len(X)))
    inner, val = slice(0, len(X) - n_val), slice(len(X) - n_val, len(X))
    a_grid = system.a_grid if (system.vote or system.gsc) else (None,)
    results = []
    for seed in system.seeds:
        best = None
        for C in C_GRID:
            for a, P in evaluate(system, X[inner], Y[inner], X[val], C, a_grid,
                                 seed, n_jobs).items():
                gap = global_average_precision_score(Y[val], P)
                if best is None or gap > best[0]:
                    best = (gap, C, a)
        _, C, a = best
        timing = {}
        key = a if system.gsc is not None else None
        P = evaluate(system, X, Y, X_test, C, (a,), seed, n_jobs, timing, key)
        P = next(iter(P.values()))
        if system.gsc is not None:  # report (k, gamma, layers) and a apart
            (k, gamma), layers, a = key
            timing.update(graph=f"k={k} gamma={gamma:g} layers={layers}")
        results.append({"C": C, "a": a, **scores(Y_test, P), **timing})
    return results


def make_systems(learned, epochs, ablations=False, candidates=False):
    def embedder(columns=VISUAL, **kw):
        def features(X_fit, X_eval, same, seed):
            emb = VidSageEmbedder(
                graph=VideoGraphBuilder(columns=columns), random_state=seed, **kw
            )
            # fit once per (X_fit, seed): the training and eval calls share it
            key = (X_fit.__array_interface__["data"][0], X_fit.shape, seed)
            if features.key != key:
                features.emb, features.key = emb.fit(X_fit), key
            return features.emb.transform(X_eval)

        features.key = None
        return features

    def gsc(C, seed, graph, layers, a, combine="linear"):
        k, gamma = graph or (20, 10.0)  # the default graph
        params = {"combine": combine, **smoothing_params(a)}
        return GraphSmoothingClassifier(
            make_pipeline(
                VidSageEmbedder(
                    graph=VideoGraphBuilder(columns=VISUAL), random_state=seed
                ),
                head(C, 2),
            ),
            graph=VideoGraphBuilder(
                n_neighbors=k, max_degree=k, visual_weight="rbf", gamma=gamma,
                columns=VISUAL,
            ),
            smoothing_layers=layers,
            **params,
        )

    def gsc_log_odds(C, seed, graph, layers, a):
        return gsc(C, seed, graph, layers, a, combine="log_odds")

    systems = [
        System("raw", lambda Xf, Xe, same, s: normalize(Xe)),
        System("raw + 10-NN label vote", lambda Xf, Xe, same, s: normalize(Xe),
               vote=True),
        System("[x, mean of 10 nearest]", lambda Xf, Xe, same, s: mean10(Xf, Xe, same)),
        System("SGC [x, Sx, S^2x]", lambda Xf, Xe, same, s: sgc(Xf, Xe, same)),
        System("VidSageEmbedder()", embedder()),
        System("GraphSmoothingClassifier(VidSageEmbedder() + head)", gsc=gsc),
        System("GraphSmoothingClassifier(..., combine='log_odds')", gsc=gsc_log_odds,
               a_grid=LOG_ODDS_A_GRID),
        # the combine rule chosen on the validation split like the rest
        System("GraphSmoothingClassifier (combine chosen)", gsc=gsc,
               a_grid=COMBINE_GRID),
    ]
    if learned:
        seeds = (0, 1, 2)
        systems += [
            System("VidSageEmbedder(hidden_dims=(512, 256)) [x, Sx, S^2x, h1, h2]",
                   embedder(hidden_dims=(512, 256), max_epochs=epochs), seeds=seeds),
            System("paper: h^L only (hidden_dims=(512, 256), jumping_knowledge=False)",
                   embedder(hidden_dims=(512, 256), jumping_knowledge=False,
                            max_epochs=epochs), seeds=seeds),
        ]
    if ablations:  # the design choices, under the same protocol
        systems += [
            System("ablation: VidSageEmbedder(symmetrize=False)",
                   embedder(symmetrize=False)),
            System("ablation: VidSageEmbedder(), graph on every column",
                   embedder(columns=None)),
        ]
    if candidates:  # settings chosen on the validation files, for the default
        systems += [
            System("candidate: VidSageEmbedder(tail_hops=6)", embedder(tail_hops=6)),
        ]
    return systems


def summarise(results):
    """Mean and spread (max - min) over seeds."""
    out = {}
    for key in ("Hit@1", "GAP", "PERR", "mAP"):
        v = np.array([r[key] for r in results])
        out[key] = (float(v.mean()), float(v.max() - v.min()))
    out["C"] = sorted({r["C"] for r in results})
    out["a"] = sorted({r["a"] for r in results}, key=str)
    return out


def main(argv=None):
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/yt8m"))
    parser.add_argument("--inputs", default="rgb,rgb+audio")
    parser.add_argument("--sizes", default="2500,5000,all")
    parser.add_argument("--systems", default=None,
                        help="comma-separated starts of the system names to run")
    parser.add_argument("--learned", action="store_true",
                        help="also the embedder with trained layers (3 seeds)")
    parser.add_argument("--ablations", action="store_true",
                        help="also the embedder without its design choices")
    parser.add_argument("--candidates", action="store_true",
                        help="also the settings proposed as the next default")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    print(f"load: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} cores)")
    systems = make_systems(args.learned, args.epochs, args.ablations, args.candidates)
    if args.systems:
        keep = args.systems.split(",")
        systems = [s for s in systems if s.name.startswith(tuple(keep))]
    records = []
    for inputs in args.inputs.split(","):
        X_all, Y_all, X_test, Y_test, classes = load_split(args.data, inputs)
        for size in args.sizes.split(","):
            n = len(X_all) if size == "all" else int(size)
            X, Y = X_all[:n], Y_all[:n]
            keep = Y.sum(axis=0) > 0
            print(f"\n### {inputs}, {n} training videos ({len(classes)} classes, "
                  f"{int(keep.sum())} with a positive), {len(X_test)} test videos\n")
            print("| system | C | a | Hit@1 | GAP@20 | PERR | mAP@20 |")
            print("|---|---|---|---|---|---|---|")
            for system in systems:
                t0 = time.perf_counter()
                res = run_system(system, X, Y, X_test, Y_test, args.n_jobs)
                s = summarise(res)
                cells = [
                    f"{m:.4f}" + (f" ± {sp_ / 2:.4f}" if len(res) > 1 else "")
                    for m, sp_ in (s[k] for k in ("Hit@1", "GAP", "PERR", "mAP"))
                ]
                C = ",".join(f"{c:g}" for c in s["C"])
                a = ",".join(a_text(x) for x in s["a"])
                print(f"| {system.name} | {C} | {a} | " + " | ".join(cells) + " |",
                      flush=True)
                records.append({"inputs": inputs, "n_train": n, "system": system.name,
                                "runs": res, "seconds": time.perf_counter() - t0})
                if "fit_s" in res[0]:
                    r = res[0]
                    print(f"|   ↳ {r['graph']}; fit {r['n_fit']} videos: "
                          f"{r['fit_s']:.0f} s; "
                          f"predict_proba: {r['n_predict'] / r['predict_s']:.0f} "
                          "videos/s | | | | | | |", flush=True)
    print(f"\nload at the end: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
