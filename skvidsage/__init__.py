"""skvidsage: unsupervised video representation learning with graph neural networks.

A scikit-learn compatible implementation of VidSage / LiteVidSage: video
features, a graph between videos, and a GraphSAGE/GAT embedder trained without
labels, evaluated with the YouTube-8M metrics.
"""

import importlib

from skvidsage._version import __version__ as __version__

# Public names and their modules, imported on first use (PEP 562): importing a
# light submodule such as the decoder (in every decoding worker process) must
# not load torch and PyG.
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
_EXPORTS = {
    # video input: user-facing names of the decoding and model modules
    "Detector": "_detectors",
    "ImagePreprocess": "_backbones",
    "VideoDecodeError": "_decode",
    "VideoDecodeWarning": "_decode",
    "read_frames": "_decode",
    "GraphSmoothingClassifier": "classify",
    "VideoFeatures": "containers",
    "VideoGraph": "containers",
    "dump_youtube8m": "datasets",
    "load_youtube8m": "datasets",
    "make_video_classification": "datasets",
    "VidSageEmbedder": "embed",
    "VideoFeaturizer": "featurize",
    "VideoGraphBuilder": "graph",
    **dict.fromkeys(_METRICS, "metrics"),
}


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"skvidsage.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skvidsage' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted([*_EXPORTS, "__version__"])
