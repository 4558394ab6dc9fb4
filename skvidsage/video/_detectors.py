"""Object detectors: frames in, sets of object labels out (VidSage, Section 3.3).

VidSage links videos that show the same objects: each video gets the set of
labels detected on its sampled frames. :func:`load_detector` builds

- an :class:`ImageNetTagger` from ``"imagenet"``: the labels are the ImageNet
  classes that the backbone's own classifier head ranks high on a frame, from
  the logits of the forward pass that gives the features (no second network,
  no download);
- a :class:`Detector` from a torchvision detection model name (labels are the
  COCO category names of its weights), from a TorchScript or ONNX detector
  file, or around any callable ``frames -> label sets``.

Like :class:`skvidsage.video._backbones.Backbone`, a :class:`Detector` pickles
with its weights (as CPU tensors; a TorchScript module as its archive bytes).
"""

import difflib
import inspect
import io
import os
import typing
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from skvidsage.video._backbones import cpu_state
from skvidsage.video._frames import check_frames
from skvidsage.video._tagger import (
    IMAGENET,
    TAGGER_THRESHOLD,
    TAGGER_TOP_K,
    ImageNetTagger,
)
from skvidsage.video._weights import (
    build_with_weights,
    read_state_dict,
    resolve_weights,
)

__all__ = ["Detector", "ImageNetTagger", "load_detector"]

# Category names that are not objects (torchvision's COCO list has both).
_NOT_OBJECTS = frozenset({"__background__", "N/A"})

DETECTOR_THRESHOLD = 0.5
# Files read as detectors: TorchScript archives (torch.jit.save) and ONNX.
_TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit", ".zip")
_ONNX_SUFFIXES = (".onnx",)
_CATEGORIES_FILE = "categories.txt"  # extra file of a TorchScript archive


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
    top_k : int or None, default=None
        A module's frame keeps at most the ``top_k`` distinct labels of its
        highest-scored detections (None: every label above the threshold).
        Not used for callables.
    name : str, optional
        Defaults to the class or function name.

    Attributes
    ----------
    module : torch.nn.Module or None
        The detection module (None for a plain callable). A TorchScript
        module (:func:`torch.jit.load`) works like an eager one; its
        ``(losses, detections)`` output in scripting is understood.
    function : callable or None
        The callable (None for a module).
    categories, score_threshold, top_k, name
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

    def __init__(
        self, model, *, categories=None, score_threshold=0.5, top_k=None, name=None
    ):
        if not callable(model):
            raise TypeError(
                "model must be a detection nn.Module or a callable frames -> label "
                f"sets; got {type(model).__name__}."
            )
        is_module = isinstance(model, nn.Module | _OnnxDetection)
        self.module = model.eval() if is_module else None
        self.function = None if is_module else model
        self.categories = None if categories is None else tuple(categories)
        self.score_threshold = float(score_threshold)
        self.top_k = None if top_k is None else int(top_k)
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
        with torch.inference_mode(), warnings.catch_warnings():
            # scripted torchvision detectors say so on every call
            warnings.filterwarnings(
                "ignore", "[A-Za-z]+ always returns a", category=UserWarning
            )
            for batch in batches:
                images = torch.tensor(batch, device=device).permute(0, 3, 1, 2)
                images = images.to(torch.float32).div_(255)
                outputs = module(list(images))
                if isinstance(outputs, tuple) and len(outputs) == 2:
                    outputs = outputs[1]  # TorchScript: (losses, detections)
                out.extend(self._label_sets(outputs))
        return out

    def __call__(self, frames):
        """Per-frame label sets of uint8 frames ``(B, H, W, 3)`` (on the CPU).

        A :class:`Detector` is thus itself a callable detector, so
        ``VideoFeaturizer(detector=Detector(module, categories=...))`` works.
        """
        return self.detect(frames)

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
            scores = torch.as_tensor(output["scores"]).float().cpu()
            labels = torch.as_tensor(output["labels"]).long().cpu()
            keep = scores >= self.score_threshold
            scores, labels = scores[keep], labels[keep]
            order = torch.argsort(scores, descending=True, stable=True)
            names = labels[order].tolist()
            if self.categories is not None:
                names = [self.categories[i] for i in names]
            names = [n for n in dict.fromkeys(names) if n not in _NOT_OBJECTS]
            sets.append(frozenset(names[: self.top_k]))
        return sets

    def __getstate__(self):
        state = cpu_state(self)
        if isinstance(state["module"], torch.jit.ScriptModule):
            buffer = io.BytesIO()  # ScriptModules do not pickle: keep the archive
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "`torch.jit.save` is deprecated")
                torch.jit.save(state["module"].cpu(), buffer)
            state["module"] = _ScriptArchive(buffer.getvalue())
        return state

    def __setstate__(self, state):
        state.setdefault("top_k", None)  # pickled before top_k existed
        if isinstance(state["module"], _ScriptArchive):
            state["module"] = _jit_load(io.BytesIO(state["module"].data)).eval()
        self.__dict__.update(state)

    def __repr__(self):
        top_k = "" if self.top_k is None else f", top_k={self.top_k}"
        return (
            f"Detector(name={self.name!r}, score_threshold={self.score_threshold}"
            f"{top_k})"
        )


class _ScriptArchive:
    """The bytes of a TorchScript archive, in a pickled :class:`Detector`."""

    def __init__(self, data):
        self.data = data


def _jit_load(source, extra_files=None):
    """``torch.jit.load`` on the CPU, without its deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated")
        return torch.jit.load(source, map_location="cpu", _extra_files=extra_files)


def _detection_models():
    return torchvision.models.list_models(module=torchvision.models.detection)


def _is_auto(value):
    return isinstance(value, str) and value == "auto"


def _is_file_spec(detector):
    """Whether a ``detector`` string or path names a model file, not a model."""
    if isinstance(detector, os.PathLike):
        return True
    path = Path(detector).expanduser()
    suffixes = _TORCHSCRIPT_SUFFIXES + _ONNX_SUFFIXES
    return path.is_file() or path.suffix.lower() in suffixes or os.sep in detector


def _load_file(path, categories):
    """Return the detection model in a TorchScript or ONNX file, and its names."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"detector file {str(path)!r} does not exist.")
    if path.suffix.lower() in _ONNX_SUFFIXES:
        return _OnnxDetection(path), categories
    extra = {_CATEGORIES_FILE: ""}
    try:
        module = _jit_load(str(path), extra)
    except RuntimeError as exc:
        raise ValueError(
            f"{str(path)!r} is not a TorchScript file (torch.jit.save) nor an "
            f"ONNX file (.onnx): {exc}"
        ) from None
    if categories is None and extra[_CATEGORIES_FILE]:
        text = extra[_CATEGORIES_FILE]
        text = text.decode() if isinstance(text, bytes) else text
        categories = text.splitlines()
    return module, categories


class _OnnxDetection:
    """An ONNX detector run by onnxruntime, with torchvision's interface.

    The graph takes one float ``(3, H, W)`` image in [0, 1] (as
    ``torch.onnx.export`` writes a torchvision detector) and returns its
    boxes, scores and labels: the labels are the 1-D integer output, the
    scores the 1-D float output (output names are the exporter's choice, so
    they are used only to choose between several such outputs: ``labels``,
    ``scores``). Images run one at a time. Called with a list of ``(3, H,
    W)`` tensors it gives a list of ``{"labels", "scores"}`` dicts, so
    :class:`Detector` treats it as a module.
    """

    def __init__(self, path):
        try:
            import onnxruntime
        except ImportError as exc:
            raise ImportError(
                f"Running the ONNX detector {str(path)!r} needs onnxruntime: pip "
                "install onnxruntime (or save the model with torch.jit.save and "
                "pass that file)."
            ) from exc
        self.path = str(path)
        self.__name__ = Path(path).stem
        self._session = onnxruntime.InferenceSession(
            self.path, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def to(self, device):
        """Stay on the CPU (onnxruntime's CPU provider); return self."""
        return self

    def eval(self):
        """Return self (an ONNX graph has no training mode)."""
        return self

    def _pick(self, outputs, kind, name):
        found = [
            (o.name, v)
            for o, v in zip(self._session.get_outputs(), outputs, strict=True)
            if np.ndim(v) == 1 and np.asarray(v).dtype.kind in kind
        ]
        named = [v for n, v in found if n == name]
        if len(found) == 1 or named:
            return named[0] if named else found[0][1]
        raise ValueError(
            f"The ONNX detector {self.path!r} must return one 1-D "
            f"{'integer' if kind == 'iu' else 'float'} output of {name} (or one "
            f"named {name!r}); its outputs are "
            f"{[o.name for o in self._session.get_outputs()]}."
        )

    def __call__(self, images):
        outputs = []
        for image in images:
            x = image.detach().cpu().numpy().astype(np.float32)
            values = self._session.run(None, {self._input: x})
            outputs.append(
                {
                    "labels": self._pick(values, "iu", "labels"),
                    "scores": self._pick(values, "f", "scores"),
                }
            )
        return outputs

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(Path(state["path"]))


def load_detector(
    detector,
    weights="DEFAULT",
    *,
    score_threshold="auto",
    top_k="auto",
    weights_backbone=None,
    backbone=None,
    categories=None,
):
    """Build a :class:`Detector` or an :class:`ImageNetTagger` (or None).

    Parameters
    ----------
    detector : None, str, path, Detector or callable
        - None: no detection (returns None);
        - ``"imagenet"``: an :class:`ImageNetTagger` on ``backbone`` (the
          default EfficientNet-Lite0 when None): the ImageNet classes its
          classifier head ranks high on a frame;
        - a name in
          ``torchvision.models.list_models(module=torchvision.models.detection)``
          such as ``"ssdlite320_mobilenet_v3_large"`` or
          ``"fasterrcnn_mobilenet_v3_large_320_fpn"``;
        - the path of a detector file: a TorchScript archive
          (``torch.jit.save(torch.jit.script(model), path)``, e.g. a scripted
          torchvision detector; its extra file ``categories.txt``, one name
          per line, names the labels) or an ONNX file (``.onnx``, run by
          onnxruntime, which must be installed: one ``(3, H, W)`` image in,
          its boxes, scores and labels out, as ``torch.onnx.export`` writes a
          torchvision detector);
        - a :class:`Detector` (returned as is);
        - a callable mapping uint8 frames ``(B, H, W, 3)`` to ``B`` label sets.

        A detection ``nn.Module`` needs its category names: wrap it as
        ``Detector(module, categories=...)``.
    weights : str, path, WeightsEnum or None, default="DEFAULT"
        For a torchvision name, as for
        :func:`skvidsage.video._backbones.load_backbone`: ``"DEFAULT"``, an
        enum member name such as ``"COCO_V1"``, a member, a state-dict file
        (for the model built with its default number of classes), or None
        (random weights). Labels are the COCO names of the weights' metadata
        (of the default weights when ``weights`` is None or a file).
    score_threshold : float or "auto", default="auto"
        Keep detections with score ``>= score_threshold``; for the tagger, the
        classes with softmax probability ``>=`` it. "auto": 0.5 for
        detectors, 0.1 for the tagger.
    top_k : int, None or "auto", default="auto"
        At most this many labels per frame, the highest scored (None: no
        cap). "auto": no cap for detectors, 2 for the tagger.
    weights_backbone : str, WeightsEnum or None, default=None
        ImageNet weights of a torchvision detector's backbone, used only when
        ``weights`` is None or a file. torchvision's default downloads them;
        here None does not.
    backbone : Backbone, optional
        The tagger's backbone (``"imagenet"`` only).
    categories : sequence of str, optional
        Names of a detector file's integer labels (overrides its
        ``categories.txt``); without either, labels stay integers.

    Returns
    -------
    Detector, ImageNetTagger or None

    Examples
    --------
    >>> from skvidsage.video._detectors import load_detector
    >>> load_detector(None) is None
    True
    >>> load_detector(lambda frames: [{"cat"} for _ in frames]).name
    '<lambda>'
    >>> load_detector("imagenet")
    ImageNetTagger(backbone='efficientnet_lite0', score_threshold=0.1, top_k=2)
    """
    if detector is None:
        return None
    if isinstance(detector, Detector | ImageNetTagger):
        return detector
    auto = _is_auto(score_threshold)
    threshold = DETECTOR_THRESHOLD if auto else score_threshold
    if isinstance(detector, str) and detector == IMAGENET:
        if backbone is None:
            from skvidsage.video._backbones import load_backbone

            backbone = load_backbone()
        return ImageNetTagger(
            backbone,
            score_threshold=TAGGER_THRESHOLD if auto else threshold,
            top_k=TAGGER_TOP_K if _is_auto(top_k) else top_k,
        )
    top_k = None if _is_auto(top_k) else top_k
    if isinstance(detector, nn.Module):
        raise TypeError(
            "Wrap a detection nn.Module as Detector(module, categories=[...]) so "
            "that its integer labels get names."
        )
    if isinstance(detector, str | os.PathLike) and _is_file_spec(detector):
        module, categories = _load_file(detector, categories)
        return Detector(
            module,
            categories=categories,
            score_threshold=threshold,
            top_k=top_k,
            name=Path(detector).name,
        )
    if not isinstance(detector, str):
        if callable(detector):
            return Detector(detector, score_threshold=threshold, top_k=top_k)
        raise TypeError(
            f"detector must be None, {IMAGENET!r}, a torchvision detection model "
            "name, a TorchScript or ONNX detector file or a callable frames -> "
            f"label sets; got {type(detector).__name__}."
        )
    names = _detection_models()
    if detector not in names:
        close = difflib.get_close_matches(detector, [IMAGENET, *names], n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown detector {detector!r}.{hint} Accepted: None, a callable, "
            f"{IMAGENET!r} (the backbone's ImageNet classifier), the path of a "
            f"TorchScript or ONNX detector file, or one of: {', '.join(names)}."
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
        model,
        categories=categories,
        score_threshold=threshold,
        top_k=top_k,
        name=detector,
    )
