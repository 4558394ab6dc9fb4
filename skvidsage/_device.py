"""Torch device selection shared by the estimators.

One rule, skorch's: a fitted device that is not available here (a model
fitted on a GPU, unpickled or used on a machine without one) is remapped to
the CPU with a warning that says so, never silently: on unpickling
(:class:`DeviceStateMixin`) and at the point of use (:func:`usable_device`).
"""

import warnings

import torch

__all__ = ["DeviceStateMixin", "resolve_device", "usable_device"]


def resolve_device(device):
    """Return the ``torch.device`` for ``device`` ("auto": CUDA if present)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device: {exc}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available.")
    return device


def usable_device(device, owner="the estimator"):
    """Return ``device``, or the CPU (warning) where it is CUDA but CUDA is absent.

    A model fitted on a GPU and used on a machine without one then runs on
    the CPU instead of failing with "Found no NVIDIA driver".
    """
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"{owner} was fitted on {device}, but CUDA is not available here: "
            "it runs on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return device


class DeviceStateMixin:
    """Remap a fitted ``device_`` that is unavailable here on unpickling."""

    def __setstate__(self, state):
        device = state.get("device_")
        if isinstance(device, torch.device):
            state["device_"] = usable_device(device, type(self).__name__)
        super().__setstate__(state)
