"""Object detectors: frames in, sets of object labels out (VidSage, Section 3.3).

VidSage links videos that show the same objects: each video gets the set of
labels detected on its sampled frames. :func:`load_detector` builds a
:class:`Detector` from a torchvision detection model name (labels are the COCO
category names of its weights) or wraps any callable ``frames -> label sets``.
Like :class:`skvidsage.video._backbones.Backbone`, a :class:`Detector` pickles with its
weights (as CPU tensors).
"""

import difflib
import inspect
import typing
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from skvidsage.video._backbones import cpu_state
from skvidsage.video._frames import check_frames
from skvidsage.video._weights import (
    build_with_weights,
    read_state_dict,
    resolve_weights,
)

__all__ = ["Detector", "load_detector"]

# Category names that are not objects (torchvision's COCO list has both).
_NOT_OBJECTS = frozenset({"__background__", "N/A"})


def _set_score_thresholds(module, threshold):
    """Make torchvision's own score cut-offs equal to ``threshold``.

    Faster/Mask/Keypoint R-CNN keep ``roi_heads.score_thresh``, RetinaNet/FCOS/
    SSD ``score_thresh``, and drop boxes with ``score <= score_thresh`` before
    their per-class non-maximum suppression. Boxes below our threshold can
    only suppress lower-scored boxes, so dropping them early changes nothing we
    report, and with a low threshold the model's own cut-off would otherwise
    hide boxes. The cut-off is the float32 just below ``threshold``, so that
    ``score > cut-off`` is ``score >= threshold`` for float32 scores.
    """
    cut = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    for owner in (module, getattr(module, "roi_heads", None)):
        if isinstance(getattr(owner, "score_thresh", None), float | int):
            owner.score_thresh = cut


def _resolve_backbone_weights(builder, weights_backbone, name):
    """Resolve ``weights_backbone`` against the builder's annotated enum."""
    if weights_backbone is None or isinstance(weights_backbone, WeightsEnum):
        return weights_backbone
    param = inspect.signature(builder).parameters.get("weights_backbone")
    enums = [
        a
        for a in typing.get_args(getattr(param, "annotation", None))
        if isinstance(a, type) and issubclass(a, WeightsEnum)
    ]
    if not enums:  # let torchvision decide
        return weights_backbone
    resolved = resolve_weights(weights_backbone, enums[0], f"{name} (weights_backbone)")
    if isinstance(resolved, Path):
        raise ValueError(
            "weights_backbone must be None or torchvision weights, not a file; "
            "load a whole detector's state dict with weights=<path>."
        )
    return resolved


class Detector:
    """Per-frame object label sets, from a detection model or a callable.

    Usually made by :func:`load_detector`.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Either a detection module with torchvision's interface (a list of
        float ``(3, H, W)`` images in [0, 1] in; a list of dicts with
        ``"labels"`` and ``"scores"`` out), or any callable mapping a uint8
        RGB array ``(B, H, W, 3)`` to ``B`` collections of hashable labels.
    categories : sequence of str, optional
        Names of a module's integer labels; without it labels stay integers.
        ``"__background__"`` and ``"N/A"`` are never reported.
    score_threshold : float, default=0.5
        A module's detections count when their score is ``>= score_threshold``.
        Not used for callables (they return label sets).
    name : str, optional
        Defaults to the class or function name.

    Attributes
    ----------
    module : torch.nn.Module or None
        The detection module (None for a plain callable).
    function : callable or None
        The callable (None for a module).
    categories, score_threshold, name
        As above.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage import Detector
    >>> def bright(frames):
    ...     return [{"bright"} if f.mean() > 127 else set() for f in frames]
    >>> det = Detector(bright)
    >>> frames = np.zeros((3, 8, 8, 3), np.uint8)
    >>> frames[1] = 255
    >>> det.detect(frames)
    [frozenset(), frozenset({'bright'}), frozenset()]
    >>> det.video_objects(frames)
    frozenset({'bright'})
    """

    def __init__(self, model, *, categories=None, score_threshold=0.5, name=None):
        if not callable(model):
            raise TypeError(
                "model must be a detection nn.Module or a callable frames -> label "
                f"sets; got {type(model).__name__}."
            )
        is_module = isinstance(model, nn.Module)
        self.module = model.eval() if is_module else None
        self.function = None if is_module else model
        self.categories = None if categories is None else tuple(categories)
        self.score_threshold = float(score_threshold)
        self.name = name or getattr(model, "__name__", type(model).__name__)

    def detect(self, frames, device=None, batch_size=8):
        """Return the set of object labels seen on each frame.

        Parameters
        ----------
        frames : ndarray of shape (T, H, W, 3), dtype uint8
            RGB frames.
        device : torch.device or str, optional
            Where a detection module runs (it is moved there); default CPU.
        batch_size : int, default=8
            Frames per call of the model.

        Returns
        -------
        list of frozenset
            One set per frame.
        """
        frames = check_frames(frames, min_frames=0)
        batch_size = int(batch_size)
        batches = [
            frames[i : i + batch_size] for i in range(0, len(frames), batch_size)
        ]
        if self.function is not None:
            return [s for b in batches for s in self._call_function(b)]
        device = torch.device("cpu" if device is None else device)
        module = self.module.to(device).eval()
        _set_score_thresholds(module, self.score_threshold)
        out = []
        with torch.inference_mode():
            for batch in batches:
                images = torch.tensor(batch, device=device).permute(0, 3, 1, 2)
                images = images.to(torch.float32).div_(255)
                out.extend(self._label_sets(module(list(images))))
        return out

    def video_objects(self, frames, device=None, batch_size=8):
        """Union of the label sets of all frames (the video's object set)."""
        sets = self.detect(frames, device, batch_size)
        return frozenset().union(*sets)

    def _call_function(self, batch):
        result = list(self.function(batch))
        if len(result) != len(batch):
            raise ValueError(
                f"The detector callable returned {len(result)} label sets for "
                f"{len(batch)} frames; it must return one per frame."
            )
        return [frozenset(labels) - _NOT_OBJECTS for labels in result]

    def _label_sets(self, outputs):
        sets = []
        for output in outputs:
            keep = output["scores"] >= self.score_threshold
            labels = output["labels"][keep].tolist()
            if self.categories is not None:
                labels = [self.categories[i] for i in labels]
            sets.append(frozenset(labels) - _NOT_OBJECTS)
        return sets

    def __getstate__(self):
        return cpu_state(self)

    def __repr__(self):
        return f"Detector(name={self.name!r}, score_threshold={self.score_threshold})"


def _detection_models():
    return torchvision.models.list_models(module=torchvision.models.detection)


def load_detector(
    detector, weights="DEFAULT", *, score_threshold=0.5, weights_backbone=None
):
    """Build a :class:`Detector` (or None for no detection).

    Parameters
    ----------
    detector : None, str, Detector or callable
        None (returns None); a name in
        ``torchvision.models.list_models(module=torchvision.models.detection)``
        such as ``"ssdlite320_mobilenet_v3_large"`` or
        ``"fasterrcnn_mobilenet_v3_large_320_fpn"``; a :class:`Detector`
        (returned as is); or a callable mapping uint8 frames ``(B, H, W, 3)``
        to ``B`` label sets. A detection ``nn.Module`` needs its category
        names: wrap it as ``Detector(module, categories=...)``.
    weights : str, path, WeightsEnum or None, default="DEFAULT"
        As for :func:`skvidsage.video._backbones.load_backbone`: ``"DEFAULT"``, an
        enum member name such as ``"COCO_V1"``, a member, a state-dict file
        (for the model built with its default number of classes), or None
        (random weights). Labels are the COCO names of the weights' metadata
        (of the default weights when ``weights`` is None or a file).
    score_threshold : float, default=0.5
        Keep detections with score ``>= score_threshold``.
    weights_backbone : str, WeightsEnum or None, default=None
        ImageNet weights of the backbone, used only when ``weights`` is None or
        a file. torchvision's default downloads them; here None does not.

    Returns
    -------
    Detector or None

    Examples
    --------
    >>> from skvidsage.video._detectors import load_detector
    >>> load_detector(None) is None
    True
    >>> load_detector(lambda frames: [{"cat"} for _ in frames]).name
    '<lambda>'
    """
    if detector is None:
        return None
    if isinstance(detector, Detector):
        return detector
    if isinstance(detector, nn.Module):
        raise TypeError(
            "Wrap a detection nn.Module as Detector(module, categories=[...]) so "
            "that its integer labels get names."
        )
    if not isinstance(detector, str):
        if callable(detector):
            return Detector(detector, score_threshold=score_threshold)
        raise TypeError(
            "detector must be None, a torchvision detection model name or a "
            f"callable frames -> label sets; got {type(detector).__name__}."
        )
    names = _detection_models()
    if detector not in names:
        close = difflib.get_close_matches(detector, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown detector {detector!r}.{hint} Accepted: None, a callable, or "
            f"one of: {', '.join(names)}."
        )
    enum_cls = torchvision.models.get_model_weights(detector)
    weights = resolve_weights(weights, enum_cls, detector)
    builder = torchvision.models.get_model_builder(detector)
    if isinstance(weights, WeightsEnum):
        model = build_with_weights(builder, detector, weights)
        categories = weights.meta["categories"]
    else:
        categories = enum_cls.DEFAULT.meta["categories"]
        model = build_with_weights(
            builder,
            detector,
            None,
            weights_backbone=_resolve_backbone_weights(
                builder, weights_backbone, detector
            ),
            num_classes=len(categories),
        )
        if isinstance(weights, Path):
            try:
                model.load_state_dict(read_state_dict(weights))
            except RuntimeError as exc:
                raise ValueError(
                    f"The state dict in {str(weights)!r} does not fit {detector!r}: "
                    f"{exc}"
                ) from None
    return Detector(
        model, categories=categories, score_threshold=score_threshold, name=detector
    )
