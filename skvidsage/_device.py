"""Torch device selection shared by the estimators."""

import torch

__all__ = ["resolve_device"]


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
