"""
"More like this": retrieving similar videos with VidSage embeddings
===================================================================

A video platform's "more like this" shelf is a nearest-neighbour search in
some video representation. VidSage embeddings are learned without labels from
the graph of the catalogue and embed new videos inductively, through their
links to the catalogue, so a freshly uploaded video can be matched at once,
without retraining.

This example fits the featurizer, the graph and the embedder on a catalogue of
training clips, embeds unseen query clips, retrieves each query's nearest
catalogue clips with :class:`~sklearn.neighbors.NearestNeighbors`, and
measures precision@k (the fraction of the top ``k`` hits of the query's class)
for the raw CNN features and for the embeddings.
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
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline

from skvidsage import VideoFeaturizer, VideoGraphBuilder, VidSageEmbedder, read_frames
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
# Fit on the catalogue, embed the queries
# ---------------------------------------
# No step sees a label. The featurizer is fitted (it loads its CNN) on the
# catalogue; the graph links each query to its most similar catalogue clips,
# and the embedder, trained on the catalogue's graph, embeds the queries
# through those links.
featurizer = VideoFeaturizer(sample_rate=2.0, n_jobs=2)
embedder = make_pipeline(
    VideoGraphBuilder(n_neighbors=5),
    VidSageEmbedder(hidden_dims=(128, 64), max_epochs=5 if FAST else 40,
                    random_state=0),
)
t0 = time.perf_counter()
F_catalogue = featurizer.fit_transform(catalogue)
F_queries = featurizer.transform(queries)
print(f"featurized {len(catalogue) + len(queries)} clips in "
      f"{time.perf_counter() - t0:.1f} s")
t0 = time.perf_counter()
Z_catalogue = embedder.fit_transform(F_catalogue)
Z_queries = embedder.transform(F_queries)
print(f"trained the embedder and embedded the queries in "
      f"{time.perf_counter() - t0:.1f} s: {F_queries.shape[1]}-d features -> "
      f"{Z_queries.shape[1]}-d embeddings")

# %%
# Nearest catalogue clips, and precision@k
# ----------------------------------------
# Cosine distance for both representations. A hit is relevant when it has the
# query's class.
k_max = 10
hits, precision = {}, {}
for name, (catalogue_rows, query_rows) in {
    "raw CNN features": (F_catalogue, F_queries),
    "VidSage embedding": (Z_catalogue, Z_queries),
}.items():
    search = NearestNeighbors(n_neighbors=k_max, metric="cosine")
    search.fit(catalogue_rows)
    hits[name] = search.kneighbors(query_rows, return_distance=False)
    relevant = y_catalogue[hits[name]] == y_queries[:, None]
    precision[name] = np.cumsum(relevant, axis=1).mean(axis=0) / np.arange(
        1, k_max + 1)

print(f"\n{'k':>3}" + "".join(f"{name:>20}" for name in precision))
for k in (1, 5, 10):
    print(f"{k:>3}" + "".join(f"{p[k - 1]:>20.3f}" for p in precision.values()))

# %%
# A query and its top hits
# ------------------------
# The middle frame of one query clip, then its five nearest catalogue clips in
# each representation, framed green when they share the query's class and red
# when they do not. We show the query where the two disagree most.
n_show = 5
agreement = {name: (y_catalogue[h[:, :n_show]] == y_queries[:, None]).sum(axis=1)
             for name, h in hits.items()}
q = int(np.argmax(agreement["VidSage embedding"] - agreement["raw CNN features"]))


def thumbnail(path):
    frames = read_frames(path, n_frames=3).frames
    return frames[len(frames) // 2]


fig, axes = plt.subplots(2, n_show + 1, figsize=(2.1 * (n_show + 1), 4.6))
for row, (name, h) in zip(axes, hits.items(), strict=True):
    row[0].imshow(thumbnail(queries[q]))
    row[0].set_title(f"query\n{data.target_names[y_queries[q]]}", fontsize=7)
    for ax, j in zip(row[1:], h[q, :n_show], strict=True):
        ax.imshow(thumbnail(catalogue[j]))
        ok = y_catalogue[j] == y_queries[q]
        for spine in ax.spines.values():
            spine.set_color("green" if ok else "red")
            spine.set_linewidth(3)
        ax.set_title(data.target_names[y_catalogue[j]], fontsize=7)
    row[0].set_ylabel(name, fontsize=8)
    for ax in row:
        ax.set_xticks([])
        ax.set_yticks([])
fig.suptitle("Top catalogue hits for an unseen query (top: raw features, "
             "bottom: VidSage)")
fig.tight_layout()
path = OUTPUT / "retrieval_hits.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, p in precision.items():
    ax.plot(np.arange(1, k_max + 1), p, marker="o", label=name)
ax.axhline(np.mean(y_catalogue[:, None] == y_queries[None, :]), color="grey",
           linestyle=":", label="random hits")
ax.set_xlabel("k")
ax.set_ylabel("precision@k (same class)")
ax.set_title("Retrieval of unseen queries")
ax.legend()
fig.tight_layout()
path = OUTPUT / "retrieval_precision.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
