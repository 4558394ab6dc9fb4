"""
Tuning the video graph on YouTube-8M with GridSearchCV
======================================================

YouTube-8M ships one 1024-d ``mean_rgb`` vector per video, so the VidSage
pipeline starts at the graph: :class:`~skvidsage.VideoGraphBuilder` links
videos that look alike, :class:`~skvidsage.VidSageEmbedder` learns embeddings
from that graph without labels, and a one-vs-rest logistic regression scores
the 3862-class (multi-label) vocabulary. This example

* loads video-level TFRecords with :func:`~skvidsage.load_youtube8m`,
* compares a logistic regression on the raw features with the LiteVidSage
  pipeline ``Pipeline(graph, embed, clf)``,
* tunes the graph threshold ``tau`` with :class:`~sklearn.model_selection.GridSearchCV`
  scored by the four YouTube-8M metrics at once (``refit="map"``), with a
  pipeline ``memory`` so that the graph and the embedder are not recomputed
  for every value of the classifier's ``C``,
* and plots the cross-validated scores against ``tau``.

Set ``SKVIDSAGE_YT8M=DIR`` to run it on real YouTube-8M video-level files;
without it, the example writes a generated data set in the same TFRecord
format (videos drawn around hidden "topics" that carry the labels, with strong
noise, so that a video's neighbours know something it does not).
"""

# %%
# Settings and data
# -----------------
# The conventions shared by all examples: ``SKVIDSAGE_EXAMPLES_FAST=1`` runs a
# smaller version, ``SKVIDSAGE_OUTPUT`` is where figures go.
import os
import tempfile
import time
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import normalize

from skvidsage import (
    VideoFeatures,
    VideoGraphBuilder,
    VidSageEmbedder,
    dump_youtube8m,
    gap_scorer,
    hit_at_one_scorer,
    load_youtube8m,
    map_scorer,
    perr_scorer,
)

FAST = os.environ.get("SKVIDSAGE_EXAMPLES_FAST", "") not in ("", "0")
OUTPUT = Path(os.environ.get("SKVIDSAGE_OUTPUT", "skvidsage_output"))
OUTPUT.mkdir(parents=True, exist_ok=True)
YT8M = os.environ.get("SKVIDSAGE_YT8M")


def write_generated_yt8m(directory, *, n_files, per_file, n_features=256,
                         n_topics=60, n_classes=20, noise=3.0, random_state=0):
    """Write a generated multi-label set as YouTube-8M video-level TFRecords.

    Each video belongs to a hidden topic; its ``mean_rgb`` is the topic's
    centre plus Gaussian noise (L2-normalised) and its labels are the topic's
    one to three classes, plus a random extra label for 30% of the videos.
    """
    rng = np.random.RandomState(random_state)
    centres = rng.randn(n_topics, n_features)
    topic_labels = [rng.choice(n_classes, rng.randint(1, 4), replace=False)
                    for _ in range(n_topics)]
    paths = []
    for f in range(n_files):
        topics = rng.randint(n_topics, size=per_file)
        X = normalize(centres[topics] + noise * rng.randn(per_file, n_features))
        labels = []
        for t in topics:
            video_labels = set(topic_labels[t].tolist())
            if rng.rand() < 0.3:
                video_labels.add(int(rng.randint(n_classes)))
            labels.append(sorted(video_labels))
        path = Path(directory) / f"generated{f:04d}.tfrecord"
        ids = [f"gen{f:02d}{i:04d}" for i in range(per_file)]
        dump_youtube8m(X, labels, path, ids=ids)
        paths.append(path)
    return paths


tmp = tempfile.TemporaryDirectory(prefix="skvidsage_gridsearch_")
if YT8M:
    files = sorted(Path(YT8M).glob("*.tfrecord"))[: 3 if FAST else 6]
    print(f"data: {len(files)} YouTube-8M files from {YT8M}")
else:
    files = write_generated_yt8m(tmp.name, n_files=3 if FAST else 5,
                                 per_file=250 if FAST else 300)
    print(f"data: {len(files)} generated YouTube-8M-format files in {tmp.name}")

# The last file is the held-out test set; the others are searched over.
train = load_youtube8m(files[:-1])
test = load_youtube8m(files[-1:])
print(f"{train.data.shape[0]} train / {test.data.shape[0]} test videos, "
      f"{train.data.shape[1]} features")

# %%
# Multi-label targets
# -------------------
# ``load_youtube8m`` returns a sparse ``(n_videos, 3862)`` indicator matrix.
# We keep the classes with enough training positives for every CV fold to see
# some, drop the videos left without any of them, and hand scikit-learn a
# dense indicator array (``.toarray()``), which ``OneVsRestClassifier``
# and the YouTube-8M scorers read as multi-label.
min_positives = 15 if FAST else 20
counts = np.asarray(train.target.sum(axis=0)).ravel()
classes = np.flatnonzero(counts >= min_positives)
Y_train = train.target[:, classes].toarray()
Y_test = test.target[:, classes].toarray()
keep_train, keep_test = Y_train.any(axis=1), Y_test.any(axis=1)
X_train, Y_train = train.data[keep_train], Y_train[keep_train]
X_test, Y_test = test.data[keep_test], Y_test[keep_test]
print(f"{len(classes)} classes with >= {min_positives} training positives; "
      f"{len(X_train)} train / {len(X_test)} test videos have one of them")

# %%
# Raw features against LiteVidSage
# --------------------------------
# Both models end in the same classifier. The LiteVidSage pipeline inserts the
# graph and the embedder before it; the embedder is trained on the graph of
# the training videos only and embeds unseen videos through their links to
# them. ``Pipeline(memory=...)`` caches the fitted graph and embedder: a grid
# point that changes only the classifier's ``C`` reuses them.
scoring = {"map": map_scorer, "gap": gap_scorer, "hit@1": hit_at_one_scorer,
           "perr": perr_scorer}
cv = KFold(n_splits=2 if FAST else 3, shuffle=True, random_state=0)
Cs = [1.0] if FAST else [0.3, 3.0]
taus = [-0.35, -0.2] if FAST else [-0.35, -0.3, -0.25, -0.15]
epochs = 3 if FAST else 10


def head(C=1.0):
    return OneVsRestClassifier(LogisticRegression(C=C, max_iter=1000))


cache = joblib.Memory(Path(tmp.name) / "cache", verbose=0)
lite = Pipeline([
    ("graph", VideoGraphBuilder(n_neighbors=10, max_degree=50)),
    ("embed", VidSageEmbedder(hidden_dims=(128, 64), max_epochs=epochs,
                              random_state=0)),
    ("clf", head()),
], memory=cache)

raw_search = GridSearchCV(head(), {"estimator__C": Cs}, scoring=scoring,
                          refit="map", cv=cv)
t0 = time.perf_counter()
raw_search.fit(normalize(X_train), Y_train)
raw_time = time.perf_counter() - t0
print(f"raw features: grid over C={Cs} in {raw_time:.1f} s, best "
      f"{raw_search.best_params_}")

lite_search = GridSearchCV(lite, {"graph__tau": taus, "clf__estimator__C": Cs},
                           scoring=scoring, refit="map", cv=cv)
t0 = time.perf_counter()
lite_search.fit(X_train, Y_train)
lite_time = time.perf_counter() - t0
print(f"LiteVidSage: grid over tau={taus} x C={Cs} in {lite_time:.1f} s, best "
      f"{lite_search.best_params_}")

# %%
# What the cache saved
# --------------------
# joblib stores one entry per distinct fitted transformer (step, parameters,
# training data). Without ``memory`` every grid point would fit both the graph
# and the embedder on every fold (and once more to refit). With it, a change
# of ``C`` reuses both, and two values of ``tau`` that give the same graph
# (both below every video's 10th neighbour) even share the embedder.
n_candidates = len(lite_search.cv_results_["params"])
n_cached = sum(1 for p in Path(cache.location).rglob("output.pkl"))
print(f"{n_candidates} candidates x {cv.get_n_splits()} folds + refit: "
      f"{2 * (n_candidates * cv.get_n_splits() + 1)} transformer fits without "
      f"memory, {n_cached} with it")

# %%
# Cross-validated scores for each ``tau``
# ---------------------------------------
# ``tau`` thresholds the visual similarity :math:`g(u, v) = 1 - \lVert f_u -
# f_v \rVert`. Every video keeps at least ``n_neighbors`` links and at most
# ``max_degree``, so ``tau`` moves the graph between a 10-nearest-neighbour
# graph (high ``tau``) and a 50-nearest-neighbour one (low ``tau``). We show,
# for each ``tau``, the scores at the best ``C``, next to the raw baseline.
results = lite_search.cv_results_
tau_col = np.asarray(results["param_graph__tau"], dtype=float)
degrees = [
    VideoGraphBuilder(tau=t).fit_transform(X_train).adjacency.getnnz(axis=1).mean()
    for t in taus
]
best_rows = [
    np.flatnonzero(tau_col == t)[np.argmax(results["mean_test_map"][tau_col == t])]
    for t in taus
]

print(f"\n{'tau':>6} {'C':>5} {'degree':>7}" + "".join(f"{m:>8}" for m in scoring))
for t, row, deg in zip(taus, best_rows, degrees, strict=True):
    C = results["param_clf__estimator__C"][row]
    print(f"{t:>6.2f} {C:>5g} {deg:>7.1f}" + "".join(
        f"{results[f'mean_test_{m}'][row]:>8.4f}" for m in scoring))
raw_best = raw_search.best_index_
print(f"{'raw':>6} {raw_search.best_params_['estimator__C']:>5g} {'-':>7}"
      + "".join(f"{raw_search.cv_results_[f'mean_test_{m}'][raw_best]:>8.4f}"
                for m in scoring))

fig, (ax, ax_deg) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=[2, 1])
for (metric, _), colour in zip(scoring.items(), plt.cm.tab10.colors, strict=False):
    mean = results[f"mean_test_{metric}"][best_rows]
    std = results[f"std_test_{metric}"][best_rows]
    ax.errorbar(taus, mean, yerr=std, marker="o", capsize=3, color=colour,
                label=f"LiteVidSage {metric}")
    ax.axhline(raw_search.cv_results_[f"mean_test_{metric}"][raw_best],
               color=colour, linestyle="--", linewidth=1)
ax.set_xlabel("graph__tau")
ax.set_ylabel(f"{cv.get_n_splits()}-fold CV score (dashed: raw features)")
ax.set_title("YouTube-8M metrics against the graph threshold")
ax.legend(fontsize="small")
ax_deg.plot(taus, degrees, marker="o", color="black")
ax_deg.set_xlabel("graph__tau")
ax_deg.set_ylabel("mean links per video")
ax_deg.set_title("graph density")
fig.tight_layout()
path = OUTPUT / "yt8m_gridsearch.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

# %%
# The tuned models on the held-out file
# -------------------------------------
# ``refit="map"`` refitted each search's best candidate on all training videos;
# the scorers apply to any fitted estimator and held-out data.
print(f"\nheld-out file ({len(X_test)} videos)")
print(f"{'':>12}" + "".join(f"{m:>8}" for m in scoring))
for name, model, X in [("raw", raw_search.best_estimator_, normalize(X_test)),
                       ("LiteVidSage", lite_search.best_estimator_, X_test)]:
    print(f"{name:>12}" + "".join(
        f"{scorer(model, X, Y_test):>8.4f}" for scorer in scoring.values()))

# %%
# ``alpha`` and ``beta`` need object sets
# ---------------------------------------
# VidSage mixes the visual link with the Jaccard similarity of the objects
# detected in two videos, :math:`w = \alpha J + \beta s`. YouTube-8M
# video-level files carry no detections, so on a plain feature array the
# builder makes the LiteVidSage graph and ignores both weights: searching over
# them would only repeat the same fits. Given a
# :class:`~skvidsage.VideoFeatures` with object sets, they do change the graph
# (see the object-detection example, which detects objects in video files).
same = VideoGraphBuilder(alpha=0.1, beta=0.9).fit_transform(X_test[:50]).toarray()
other = VideoGraphBuilder(alpha=0.9, beta=0.1).fit_transform(X_test[:50]).toarray()
print(f"\nplain features: alpha/beta change the graph? "
      f"{not np.array_equal(same, other)}")
rng = np.random.RandomState(0)
objects = [set(rng.choice(["person", "car", "dog"], rng.randint(0, 3)))
           for _ in range(50)]
with_objects = VideoFeatures(X_test[:50], objects)
same = VideoGraphBuilder(alpha=0.1, beta=0.9).fit_transform(with_objects).toarray()
other = VideoGraphBuilder(alpha=0.9, beta=0.1).fit_transform(with_objects).toarray()
print(f"with (made-up) object sets: alpha/beta change the graph? "
      f"{not np.array_equal(same, other)}")

tmp.cleanup()
