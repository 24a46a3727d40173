"""Spectral-normalised discriminator blocks and the SN-PatchGAN of DeepFill v2 (Yu et al., ICCV'19, sec. 3.2).

SN-PatchGAN: six 5x5 stride-2 spectral-normalised convolutions with leaky ReLU; every element of the final
feature map is a GAN output (a 3-D "patch" score), trained with the hinge loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class SNConvBlock(nn.Module):
    """5x5 (default) stride-2 spectral-normalised convolution + LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2, activation: bool = True):
        super().__init__()
        self.conv = spectral_norm(nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2))
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.leaky_relu(x, 0.2) if self.activation else x


class SNPatchDiscriminator(nn.Module):
    """SN-PatchGAN discriminator.

    Input ``(B, in_ch, H, W)``: the image in [-1, 1] concatenated with the mask (1 = hole) and any guidance
    channels. Output ``(B, N)``: one score per patch (flattened), for the hinge loss.
    """

    def __init__(self, in_ch: int = 4, cnum: int = 64, n_layers: int = 6):
        super().__init__()
        widths = [cnum, 2 * cnum] + [4 * cnum] * (n_layers - 2)
        layers, prev = [], in_ch
        for width in widths:
            layers.append(SNConvBlock(prev, width))
            prev = width
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)
