"""Torch device selection shared by the estimators."""

import torch

__all__ = ["resolve_device", "usable_device"]


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


def usable_device(device):
    """Return ``device``, or the CPU where ``device`` is CUDA but CUDA is absent.

    A model fitted on a GPU and unpickled on a machine without one then runs
    on the CPU instead of failing.
    """
    if device.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device
