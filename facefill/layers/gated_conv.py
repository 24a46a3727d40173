"""Gated convolution (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV'19, eq. 1).

    Gating  = W_g * I
    Feature = W_f * I
    O       = phi(Feature) * sigmoid(Gating)

As in the authors' TensorFlow code, one convolution produces both halves (2 x out channels) and is split;
the output layer (3 channels, no activation) is a plain convolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .init import GATED_GAIN, init_conv_


class GatedConv2d(nn.Module):
    """``phi(conv_f(x)) * sigmoid(conv_g(x))`` with 'same' padding for any dilation.

    ``activation=None`` makes it a plain convolution (used for the RGB output layer).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 activation: str | None = "elu"):
        super().__init__()
        self.out_ch = out_ch
        self.activation = activation
        gated = activation is not None
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_ch, out_ch * (2 if gated else 1), kernel_size, stride, padding, dilation)
        init_conv_(self.conv, GATED_GAIN if gated else 1.0)  # keeps the signal alive through deep stacks (init.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.activation is None:
            return x
        feature, gate = x.split(self.out_ch, dim=1)
        feature = F.elu(feature) if self.activation == "elu" else F.relu(feature)
        return feature * torch.sigmoid(gate)


class GatedUpConv2d(nn.Module):
    """Nearest-neighbour x2 upsampling then a 3x3 gated convolution (the paper's ``gen_deconv``);
    avoids the checkerboard artefacts of transposed convolution."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = GatedConv2d(in_ch, out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
