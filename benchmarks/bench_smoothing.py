"""Cost of the best YouTube-8M pipeline against the raw head, on this machine.

The best pipeline of ``bench_yt8m_quality.py``,
``GraphSmoothingClassifier(VidSageEmbedder() + OvR LogisticRegression)``,
and the obvious alternative, the same head on the raw features:

- fit on every video of validate0000-0049 (the 14.5k dev videos; the 255
  classes with at least 20 positives in 0000-0039);
- ``predict_proba`` on the 2,459 test videos (0040-0049) of a fit on the
  training videos (0000-0039), one call, repeated ``--repeat`` times (best
  kept), with where the time goes;
- the same pipeline with the label graph the quality protocol chose at full
  size (50 nearest neighbours, RBF gamma 10) instead of the default 20.

Usage::

    python benchmarks/bench_smoothing.py --data ../shared/data/yt8m
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from bench_yt8m_quality import load_split  # benchmarks/ is on sys.path
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import normalize

from skvidsage import GraphSmoothingClassifier, VideoGraphBuilder, VidSageEmbedder


def timed(fn, repeat=1):
    best, value = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def measure(name, model, X, Y, X_all, Y_all, X_test, repeat):
    """Fit time on every video, predict_proba throughput on the test videos."""
    fit_s, _ = timed(lambda: model().fit(normalize(X_all), Y_all))
    fitted = model().fit(normalize(X), Y)
    Xq = normalize(X_test)
    pred_s, _ = timed(lambda: fitted.predict_proba(Xq), repeat)
    print(f"{name}: fit {len(X_all)} videos {fit_s:.1f} s; predict_proba "
          f"{len(X_test) / pred_s:.0f} videos/s", flush=True)
    if isinstance(fitted, GraphSmoothingClassifier):
        emb, lr = fitted.estimator_[0], fitted.estimator_[1]
        parts = {
            "label graph (transform)": lambda: fitted.graph_builder_.transform(Xq),
            "embedder graph (transform)": lambda: emb.graph_builder_.transform(Xq),
            "embedder transform (its graph included)": lambda: emb.transform(Xq),
            "embedder transform + head": lambda: lr.predict_proba(emb.transform(Xq)),
        }
        # as inside GraphSmoothingClassifier: the input is checked once
        with config_context(assume_finite=True):
            for part, fn in parts.items():
                s, _ = timed(fn, repeat)
                print(f"   {part}: {s:.2f} s", flush=True)
    return name, fit_s, len(X_test) / pred_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/yt8m"))
    parser.add_argument("--C", type=float, default=4.0)
    parser.add_argument("--smoothing", type=float, default=0.2)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # lbfgs convergence notes

    def head():
        return OneVsRestClassifier(
            LogisticRegression(max_iter=1000, C=args.C), n_jobs=args.n_jobs
        )

    def best(graph=None):
        return GraphSmoothingClassifier(
            make_pipeline(VidSageEmbedder(), head()),
            graph=graph,
            smoothing=args.smoothing,
        )

    def best_50():
        # the label graph the quality protocol chose at full size (``mean_rgb``)
        return best(
            VideoGraphBuilder(
                n_neighbors=50, max_degree=50, visual_weight="rbf", gamma=10.0
            )
        )

    X, Y, X_test, Y_test, _ = load_split(args.data, "rgb", drop_unlabelled=False)
    X_all, Y_all = np.vstack([X, X_test]), np.vstack([Y, Y_test])
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} cores)")
    rows = [
        measure(name, model, X, Y, X_all, Y_all, X_test, args.repeat)
        for name, model in (
            ("raw head", head),
            ("best pipeline", best),
            ("best pipeline, 50-NN label graph (gamma 10)", best_50),
        )
    ]
    (_, f0, p0), (_, f1, p1), _ = rows
    print(f"\n| system | fit {len(X_all)} videos (s) | predict_proba (videos/s) |")
    print("|---|---|---|")
    for name, f, p in rows:
        print(f"| {name} | {f:.1f} | {p:.0f} |")
    print(f"\nratios, best / raw: fit {f1 / f0:.2f}x, predict_proba throughput "
          f"{p1 / p0:.2f}x; load at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
