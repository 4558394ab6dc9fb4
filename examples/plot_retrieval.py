"""
"More like this": retrieving similar videos with VideoIndex
===========================================================

A video platform's "more like this" shelf is a nearest-neighbour search in
some video representation. VidSage embeddings are computed from the graph of
the catalogue and embed new videos inductively, through their links to the
catalogue, so a freshly uploaded video can be matched at once, without
refitting anything.

:class:`~skvidsage.VideoIndex` wraps the representation: ``fit`` fits it on
the catalogue and indexes the catalogue's rows, ``kneighbors`` maps any query
videos through it and returns the distances and indices of their nearest
catalogue videos, as :meth:`sklearn.neighbors.NearestNeighbors.kneighbors`
does. This example indexes a catalogue of generated clips three ways (the raw
CNN features, the default VidSage embedding, and one with trained layers),
shows an unseen query clip beside its top hits, and compares precision@k
(the share of the top ``k`` hits of the query's class). On real YouTube-8M
figures see :doc:`/results` ("Retrieval").
"""

# %%
# Catalogue and queries
# ---------------------
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skvidsage import (
    VideoFeaturizer,
    VideoGraphBuilder,
    VideoIndex,
    VidSageEmbedder,
    read_frames,
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
catalogue, queries, y_catalogue, y_queries = train_test_split(
    data.filenames, data.target, test_size=0.25, stratify=data.target,
    random_state=0)
print(f"catalogue: {len(catalogue)} clips, queries: {len(queries)} unseen clips")

# %%
# Featurise once
# --------------
# ``VideoIndex(make_pipeline(VideoFeaturizer(), VidSageEmbedder()))`` would
# take the file paths themselves; here the clips are decoded once and the
# three indexes share the features.
featurizer = VideoFeaturizer(sample_rate=2.0, n_jobs=2)
t0 = time.perf_counter()
F_catalogue = featurizer.fit_transform(catalogue)
F_queries = featurizer.transform(queries)
print(f"featurized {len(catalogue) + len(queries)} clips in "
      f"{time.perf_counter() - t0:.1f} s")

# %%
# Three indexes
# -------------
# No step sees a label. The graph learns its threshold from the catalogue
# (``tau="auto"``: generated clips are all alike, and the default 0.3 would
# link each clip to as many others as the cap allows). The index normalises
# each block of an embedding, :math:`x, Sx, S^2 x, h^1, h^2`, on its own
# (``normalize="auto"``), so that every block weighs the same in the
# distance; the raw features are normalised as whole rows.
graph = VideoGraphBuilder(tau="auto", n_neighbors=5)
indexes = {
    "raw CNN features": VideoIndex(),
    "VidSageEmbedder()": VideoIndex(VidSageEmbedder(graph=graph)),
    "with trained layers": VideoIndex(VidSageEmbedder(
        graph=graph, hidden_dims=(128, 64), max_epochs=5 if FAST else 40,
        random_state=0)),
}
k_max = 10
hits, precision = {}, {}
for name, index in indexes.items():
    t0 = time.perf_counter()
    index.fit(F_catalogue)
    hits[name] = index.kneighbors(F_queries, n_neighbors=k_max,
                                  return_distance=False)
    relevant = y_catalogue[hits[name]] == y_queries[:, None]
    precision[name] = relevant.cumsum(axis=1).mean(axis=0) / np.arange(1, k_max + 1)
    print(f"{name}: {index.embedding_.shape[1]} columns ({index.normalize_} "
          f"normalised), {index.algorithm_} search, fit + search "
          f"{time.perf_counter() - t0:.1f} s")

print(f"\n{'k':>3}" + "".join(f"{name:>22}" for name in precision))
for k in (1, 5, 10):
    print(f"{k:>3}" + "".join(f"{p[k - 1]:>22.3f}" for p in precision.values()))

# %%
# A query and its top hits
# ------------------------
# Frames of one unseen query clip (left column, from its start to its end),
# then the middle frame of its five nearest catalogue clips in each
# representation (one row each), framed green when they share the query's
# class and red when they do not. We show the query where the raw features
# and the default embedding disagree most.
n_show = 5
agreement = {name: (y_catalogue[h[:, :n_show]] == y_queries[:, None]).sum(axis=1)
             for name, h in hits.items()}
q = int(np.argmax(agreement["VidSageEmbedder()"] - agreement["raw CNN features"]))


def show(ax, image, title, colour=None):
    ax.imshow(image)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    if colour is not None:
        for spine in ax.spines.values():
            spine.set_color(colour)
            spine.set_linewidth(3)


query_frames = read_frames(queries[q], n_frames=len(hits)).frames
fig, axes = plt.subplots(len(hits), 1 + n_show, figsize=(1.9 * (1 + n_show), 5.2),
                         gridspec_kw={"width_ratios": [1.25] + [1] * n_show})
for t, (row, (name, h)) in enumerate(zip(axes, hits.items(), strict=True)):
    show(row[0], query_frames[min(t, len(query_frames) - 1)],
         f"query, frame {t + 1}/{len(hits)}\n{data.target_names[y_queries[q]]}")
    for rank, (ax, j) in enumerate(zip(row[1:], h[q, :n_show], strict=True)):
        middle = read_frames(catalogue[j], n_frames=3).frames[1]
        ok = y_catalogue[j] == y_queries[q]
        show(ax, middle, f"hit {rank + 1}: {data.target_names[y_catalogue[j]]}",
             "green" if ok else "red")
    row[1].set_ylabel(name, fontsize=8)
fig.suptitle("An unseen query clip (left) and its top catalogue hits, "
             "one row per representation")
fig.tight_layout()
path = OUTPUT / "retrieval_hits.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

# %%
# Precision@k of each representation
# ----------------------------------
fig, ax = plt.subplots(figsize=(5, 3.5))
for name, p in precision.items():
    ax.plot(np.arange(1, k_max + 1), p, marker="o", label=name)
ax.axhline(np.mean(y_catalogue[:, None] == y_queries[None, :]), color="grey",
           linestyle=":", label="random hits")
ax.set_xlabel("k")
ax.set_ylabel("precision@k (same class)")
ax.set_title("Retrieval of unseen queries")
ax.legend(fontsize=8)
fig.tight_layout()
path = OUTPUT / "retrieval_precision.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
