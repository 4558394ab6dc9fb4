"""
VidSage with object detection on a folder of videos
===================================================

VidSage (paper Section 3.3) links two videos not only when they look alike
but also when they show the same objects: the edge weight is
:math:`w = \\alpha J + \\beta s`, with :math:`J` the Jaccard similarity of the
sets of objects detected in the two videos and :math:`s` the visual link.
LiteVidSage is the same without the detector.

With a ``detector``, :class:`~skvidsage.VideoFeaturizer` returns a
:class:`~skvidsage.VideoFeatures` (features plus one object set per video)
that :class:`~skvidsage.VideoGraphBuilder` reads directly. This example tries
a torchvision COCO detector, falls back to a small callable detector when its
weights are not available offline (a callable is also how you plug in any
detector of your own), and compares LiteVidSage with VidSage over ``alpha``
on generated clips of moving shapes.
"""

# %%
# A folder of labelled clips
# --------------------------
# :func:`~skvidsage.datasets.make_video_classification` writes ``.mp4`` clips
# (cached under ``SKVIDSAGE_DATA``). Each class owns three object kinds, each
# drawn in its own colour, and each clip also shows distractor objects of
# other classes; ``object_sets`` records what was drawn, which lets us grade
# the detector.
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import normalize

from skvidsage import (
    VideoFeatures,
    VideoFeaturizer,
    VideoGraphBuilder,
    VidSageEmbedder,
    map_scorer,
)
from skvidsage.datasets import make_video_classification

FAST = os.environ.get("SKVIDSAGE_EXAMPLES_FAST", "") not in ("", "0")
OUTPUT = Path(os.environ.get("SKVIDSAGE_OUTPUT", "skvidsage_output"))
OUTPUT.mkdir(parents=True, exist_ok=True)

data = make_video_classification(
    n_videos=40 if FAST else 200,
    n_classes=4,
    duration=1.0 if FAST else 2.0,
    frame_size=(64, 96) if FAST else (96, 128),
    n_jobs=2,
    random_state=0,
)
print(f"{len(data.filenames)} clips in {data.directory}")
print("classes:", data.target_names)

# %%
# A torchvision detector, if its weights are here
# -----------------------------------------------
# ``detector="ssdlite320_mobilenet_v3_large"`` (19 frames/s on a 2-core CPU)
# or ``"fasterrcnn_mobilenet_v3_large_320_fpn"`` with
# ``detector_weights="DEFAULT"`` detects the 80 COCO categories ("person",
# "dog", "car", ...). torchvision downloads the weights on first use; a
# machine without network access needs the file in
# ``$TORCH_HOME/hub/checkpoints`` (or ``detector_weights=<path>``). ``fit``
# loads the detector, so it tells us at once.
try:
    coco = VideoFeaturizer(detector="ssdlite320_mobilenet_v3_large",
                           detector_weights="DEFAULT").fit(data.filenames[:1])
    print(f"COCO detector loaded: {coco.detector_}. COCO has no category for "
          "drawn shapes, so on these clips we use the callable below; on real "
          "footage, pass this featurizer instead.")
except OSError as exc:  # ConnectionError: no network, no cached weights
    print(f"COCO detector unavailable here:\n  {exc}\n"
          "Falling back to a callable detector.")

# %%
# A callable detector
# -------------------
# Any function mapping a batch of uint8 RGB frames ``(B, H, W, 3)`` to ``B``
# sets of labels is a detector. Ours knows the colour of each object kind and
# reports a kind when enough pixels of a frame are close to its colour. It is
# crude on purpose (clips jitter colours, and backgrounds may share them), as
# real detectors also miss and hallucinate objects; we measure how crude.
KIND_COLOURS = {
    "disc": (230, 38, 38), "ring": (38, 89, 242), "square": (38, 204, 51),
    "triangle": (242, 217, 26), "diamond": (217, 51, 217),
    "cross": (26, 217, 217), "stripes": (250, 140, 13),
    "checker": (128, 51, 204), "star": (247, 247, 247),
    "crescent": (140, 89, 38),
}
_NAMES = list(KIND_COLOURS)
_COLOURS = np.array(list(KIND_COLOURS.values()), dtype=np.float32)


def detect_colours(frames, max_distance=60.0, min_fraction=0.002):
    """Return, per frame, the kinds covering ``min_fraction`` of the pixels."""
    pixels = frames.astype(np.float32)[..., None, :]  # (B, H, W, 1, 3)
    distance = np.linalg.norm(pixels - _COLOURS, axis=-1)  # (B, H, W, K)
    nearest = distance.argmin(axis=-1)
    close = distance.min(axis=-1) < max_distance
    fractions = np.stack(
        [((nearest == k) & close).mean(axis=(1, 2)) for k in range(len(_NAMES))],
        axis=1,
    )
    return [{_NAMES[k] for k in np.flatnonzero(row > min_fraction)}
            for row in fractions]


# %%
# Featurize once, with the detector
# ---------------------------------
# The featurizer samples two frames per second, runs the CNN (the offline
# EfficientNet-Lite0) and the detector on them, and returns a
# ``VideoFeatures``. Decoding runs in two worker processes, ahead of the CNN.
# The featurizer learns nothing from the data (no ``n_components``), so we
# featurize the training and test clips in one call.
featurizer = VideoFeaturizer(detector=detect_colours, sample_rate=2.0, n_jobs=2)
t0 = time.perf_counter()
features = featurizer.fit_transform(data.filenames)
print(f"featurized {len(features)} clips in {time.perf_counter() - t0:.1f} s: "
      f"{features!r}")

tp = sum(len(d & t) for d, t in zip(features.object_sets, data.object_sets,
                                    strict=True))
n_detected = sum(map(len, features.object_sets))
n_true = sum(map(len, data.object_sets))
print(f"detector precision {tp / n_detected:.2f}, recall {tp / n_true:.2f} "
      f"(against the kinds actually drawn)")

idx_train, idx_test = train_test_split(
    np.arange(len(features)), test_size=0.3, stratify=data.target, random_state=0)
F_train, F_test = features[idx_train], features[idx_test]
y_train, y_test = data.target[idx_train], data.target[idx_test]

# %%
# LiteVidSage against VidSage
# ---------------------------
# The same graph, embedder and classifier, fed with
#
# - the plain features (LiteVidSage: ``alpha`` and ``beta`` unused),
# - the ``VideoFeatures`` with the detector's object sets (VidSage), for
#   several ``alpha`` (with ``beta = 1 - alpha``),
# - the object sets actually drawn (an oracle detector, an upper bound).
#
# ``VideoFeatures`` indexes like an array, so ``train_test_split``,
# ``cross_val_score`` and ``GridSearchCV`` split it too. The whole chain is
# also a single estimator,
# ``Pipeline([("features", featurizer), ("graph", ...), ("embed", ...),
# ("clf", ...)])``, fitted on file paths.
epochs = 5 if FAST else 40


def vidsage(alpha=0.7):
    return make_pipeline(
        VideoGraphBuilder(alpha=alpha, beta=1 - alpha, n_neighbors=5),
        VidSageEmbedder(hidden_dims=(128, 64), max_epochs=epochs, random_state=0),
        LogisticRegression(max_iter=1000),
    )


def evaluate(model, X_train, X_test):
    model.fit(X_train, y_train)
    return {"accuracy": model.score(X_test, y_test),
            "mAP": map_scorer(model, X_test, y_test)}


oracle = VideoFeatures(features.features, data.object_sets)
results = {
    "raw features": evaluate(LogisticRegression(max_iter=1000),
                             normalize(F_train.features), normalize(F_test.features)),
    "LiteVidSage": evaluate(vidsage(), F_train.features, F_test.features),
}
alphas = [0.0, 0.7, 1.0] if FAST else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
for alpha in alphas:
    results[f"VidSage detector a={alpha:g}"] = evaluate(vidsage(alpha), F_train, F_test)
    results[f"VidSage oracle a={alpha:g}"] = evaluate(
        vidsage(alpha), oracle[idx_train], oracle[idx_test])

print(f"\n{'model':<28}{'accuracy':>10}{'mAP':>8}  ({len(y_test)} test clips)")
for name, r in results.items():
    print(f"{name:<28}{r['accuracy']:>10.3f}{r['mAP']:>8.3f}")

# %%
# What the object sets add to the graph
# -------------------------------------
# Left: for pairs of training clips, the visual similarity of their features
# against the Jaccard similarity of their detected object sets; same-class
# pairs in colour. Object sets separate the classes along a second axis
# where the features alone mix them. Right: test accuracy against ``alpha``.
X = normalize(F_train.features)
pairs = np.triu_indices(len(X), k=1)
visual = 1 - np.linalg.norm(X[pairs[0]] - X[pairs[1]], axis=1)
sets = F_train.object_sets
jaccard = np.array([len(sets[i] & sets[j]) / max(1, len(sets[i] | sets[j]))
                    for i, j in zip(*pairs, strict=True)])
same = y_train[pairs[0]] == y_train[pairs[1]]
jitter = np.random.RandomState(0).uniform(-0.015, 0.015, size=jaccard.size)

fig, (ax_pairs, ax_alpha) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_pairs.scatter(visual[~same], jaccard[~same] + jitter[~same], s=3, alpha=0.3,
                 color="grey", label="different class")
ax_pairs.scatter(visual[same], jaccard[same] + jitter[same], s=3, alpha=0.5,
                 color="C3", label="same class")
ax_pairs.set_xlabel(r"visual similarity $g = 1 - \|f_u - f_v\|$")
ax_pairs.set_ylabel("Jaccard of detected object sets (jittered)")
ax_pairs.set_title("Pairs of training clips")
ax_pairs.legend(markerscale=4)
for kind, colour in [("detector", "C0"), ("oracle", "C2")]:
    ax_alpha.plot(alphas, [results[f"VidSage {kind} a={a:g}"]["accuracy"]
                           for a in alphas],
                  marker="o", color=colour, label=f"VidSage, {kind} object sets")
ax_alpha.axhline(results["LiteVidSage"]["accuracy"], color="black",
                 linestyle="--", label="LiteVidSage")
ax_alpha.axhline(results["raw features"]["accuracy"], color="grey",
                 linestyle=":", label="raw features")
ax_alpha.set_xlabel(r"graph__alpha ($\beta = 1 - \alpha$)")
ax_alpha.set_ylabel("test accuracy")
ax_alpha.set_title("Semantic edges over visual ones")
ax_alpha.legend(fontsize="small")
fig.tight_layout()
path = OUTPUT / "object_detection.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
