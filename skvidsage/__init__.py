"""skvidsage: unsupervised video representation learning with graph neural networks.

A scikit-learn compatible implementation of VidSage / LiteVidSage: video
features, a graph between videos, and a GraphSAGE/GAT embedder trained without
labels, evaluated with the YouTube-8M metrics.

The subpackages follow the data flow: :mod:`skvidsage.video` (videos to
features), :mod:`skvidsage.graph` (features to a graph), :mod:`skvidsage.embed`
(graph to embeddings), :mod:`skvidsage.classify` (a graph-aware head),
:mod:`skvidsage.metrics` and :mod:`skvidsage.datasets`. Every public name is
also here, imported on first use.
"""

from skvidsage._lazy import attach
from skvidsage._version import __version__ as __version__

_METRICS = [
    "gap_scorer",
    "global_average_precision_score",
    "hit_at_k_score",
    "hit_at_one_scorer",
    "make_youtube8m_scorer",
    "map_scorer",
    "mean_average_precision_score",
    "perr_score",
    "perr_scorer",
    "precision_at_equal_recall_rate_score",
    "top_k_accuracy_score",
    "top_k_scorer",
]
_VIDEO = [
    "Detector",
    "ImageNetTagger",
    "ImagePreprocess",
    "VideoDecodeError",
    "VideoDecodeWarning",
    "VideoFeaturizer",
    "featurize_to_folder",
    "load_featurized",
    "read_frames",
]
_EXPORTS = {
    **dict.fromkeys(_VIDEO, "video"),
    "VideoFeatures": "containers",
    "VideoGraph": "containers",
    "ZeroRowWarning": "_checks",
    "VideoGraphBuilder": "graph",
    "VidSageEmbedder": "embed",
    "GraphSmoothingClassifier": "classify",
    "VideoIndex": "retrieval",
    "dask_apply": "distributed",
    **dict.fromkeys(_METRICS, "metrics"),
    "dump_youtube8m": "datasets",
    "load_youtube8m": "datasets",
    "make_video_classification": "datasets",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
__all__ = sorted([*__all__, "__version__"])
