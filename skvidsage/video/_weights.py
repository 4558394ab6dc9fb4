"""Model weights: resolve a ``weights`` argument, read state dicts, explain downloads.

Shared by the backbones (:mod:`skvidsage.video._backbones`) and the detectors
(:mod:`skvidsage.video._detectors`): ``weights`` is a torchvision ``WeightsEnum``
member or its name, a path to a state dict saved with ``torch.save``, or
None (random weights).
"""

import os
from pathlib import Path

import torch
from torchvision.models import WeightsEnum

_STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


def accepted_weights(enum_cls):
    """Describe the accepted ``weights`` values, for error messages."""
    names = list(enum_cls.__members__) if enum_cls is not None else ["DEFAULT"]
    member = f"a {enum_cls.__name__} member, " if enum_cls is not None else ""
    return (
        f"one of {', '.join(map(repr, names))}, {member}a path to a state dict "
        "saved with torch.save, or None (random weights)"
    )


def resolve_weights(weights, enum_cls, model_name):
    """Return None, a ``WeightsEnum`` member of ``enum_cls``, or a ``Path``."""
    if weights is None:
        return None
    if isinstance(weights, WeightsEnum):
        if enum_cls is None or not isinstance(weights, enum_cls):
            raise ValueError(
                f"weights={weights} are not weights for {model_name!r}; pass "
                f"{accepted_weights(enum_cls)}."
            )
        return weights
    if isinstance(weights, str) and enum_cls is not None:
        member = weights.removeprefix(enum_cls.__name__ + ".")
        if member in enum_cls.__members__:
            return enum_cls[member]
    if isinstance(weights, str | os.PathLike):
        path = Path(weights).expanduser()
        if path.is_file():
            return path
        if (
            isinstance(weights, os.PathLike)
            or path.suffix in _STATE_DICT_SUFFIXES
            or os.sep in str(weights)
        ):
            raise FileNotFoundError(f"weights file {str(weights)!r} does not exist.")
        raise ValueError(
            f"Unknown weights {weights!r} for {model_name!r}; pass "
            f"{accepted_weights(enum_cls)}."
        )
    raise TypeError(
        f"weights must be a string, a path, a WeightsEnum member or None; got "
        f"{type(weights).__name__}."
    )


def read_state_dict(path):
    """Load a state dict saved with ``torch.save`` (tensors only), on the CPU."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} does not hold a state dict.")
    return state


def checkpoint_path(weights):
    """Where torch.hub caches the file of a ``WeightsEnum`` member."""
    name = os.path.basename(weights.url.split("?")[0])
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def build_with_weights(builder, model_name, weights, **kwargs):
    """Call a torchvision builder, explaining download failures.

    ``weights`` are the torchvision weights (or None); a failed download
    (``OSError``, which includes ``urllib.error.URLError``) raises a
    ``ConnectionError`` that says how to load the file offline.
    """
    try:
        return builder(weights=weights, **kwargs)
    except OSError as exc:
        wanted = [w for w in (weights, kwargs.get("weights_backbone")) if w]
        members = [w for w in wanted if isinstance(w, WeightsEnum)]
        missing = [w for w in members if not checkpoint_path(w).is_file()]
        if not wanted or (len(members) == len(wanted) and not missing):
            raise  # nothing to download, or the files are there
        where = "; ".join(f"{w.url} -> {checkpoint_path(w)}" for w in missing)
        raise ConnectionError(
            f"Could not download the weights of {model_name!r} ({exc}); there "
            "seems to be no network access. To load them offline, download the "
            "file on a machine with network access and place it in the torch "
            "hub cache, $TORCH_HOME/hub/checkpoints "
            f"({where or Path(torch.hub.get_dir()) / 'checkpoints'}), or pass "
            "weights=<path to a state dict saved with torch.save>, or "
            "weights=None (random weights)."
        ) from exc
