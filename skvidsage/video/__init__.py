"""Videos to features: decoding, frame sampling, ImageNet backbones, detectors.

:class:`VideoFeaturizer` is the estimator (paper 3.2-3.3). Its building blocks
are public for users who decode or detect on their own: :func:`read_frames`
(one file through PyAV, with its errors :class:`VideoDecodeError` and
:class:`VideoDecodeWarning`), :class:`ImagePreprocess` (a backbone's input
transform), :class:`Detector` (object sets from a detection model) and
:class:`ImageNetTagger` (object sets from the backbone's own ImageNet
classifier: ``detector="imagenet"``).
:func:`featurize_to_folder` featurises a large list of files shard by shard,
resumably, on any joblib backend; :func:`load_featurized` reads it back.

Names are imported on first use: the decoding worker processes import
:mod:`skvidsage.video._decode` without loading torch.
"""

from skvidsage._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Detector": "_detectors",
        "ImageNetTagger": "_tagger",
        "ImagePreprocess": "_backbones",
        "VideoDecodeError": "_decode",
        "VideoDecodeWarning": "_decode",
        "VideoFeaturizer": "featurize",
        "featurize_to_folder": "shards",
        "load_featurized": "shards",
        "read_frames": "_decode",
    },
)
