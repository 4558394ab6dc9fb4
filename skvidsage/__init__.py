"""skvidsage: unsupervised video representation learning with graph neural networks.

A scikit-learn compatible implementation of VidSage / LiteVidSage: video
features, a graph between videos, and a GraphSAGE/GAT embedder trained without
labels, evaluated with the YouTube-8M metrics.
"""

from skvidsage._version import __version__
from skvidsage.containers import VideoFeatures, VideoGraph
from skvidsage.datasets import load_youtube8m
from skvidsage.embed import VidSageEmbedder
from skvidsage.graph import VideoGraphBuilder
from skvidsage.metrics import (
    gap_scorer,
    global_average_precision_score,
    hit_at_k_score,
    hit_at_one_scorer,
    make_youtube8m_scorer,
    map_scorer,
    mean_average_precision_score,
    perr_score,
    perr_scorer,
    precision_at_equal_recall_rate_score,
    top_k_accuracy_score,
    top_k_scorer,
)

__all__ = [
    "VidSageEmbedder",
    "VideoFeatures",
    "VideoGraph",
    "VideoGraphBuilder",
    "__version__",
    "gap_scorer",
    "global_average_precision_score",
    "hit_at_k_score",
    "hit_at_one_scorer",
    "load_youtube8m",
    "make_youtube8m_scorer",
    "map_scorer",
    "mean_average_precision_score",
    "perr_score",
    "perr_scorer",
    "precision_at_equal_recall_rate_score",
    "top_k_accuracy_score",
    "top_k_scorer",
]
