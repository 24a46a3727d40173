"""Contextual attention (Yu et al., "Generative Image Inpainting with Contextual Attention", CVPR'18, sec. 4.1).

Foreground features (inside the hole) attend to background patches (outside it):

    s_{x,y,x',y'} = < f_{x,y} / ||f_{x,y}||, b_{x',y'} / ||b_{x',y'}|| >      (eq. 1, cosine similarity as a conv)
    s*            = softmax_{x',y'}(lambda * s)                                  (eq. 1, lambda = softmax_scale)
    attention propagation: s is convolved with an identity kernel along both spatial axes (``fuse``),
    so neighbouring foreground pixels agree on coherent background offsets;
    reconstruction: transposed convolution of s* with the raw (full-resolution) background patches.

Matching happens at 1/``rate`` resolution for speed; pasting uses raw 2*rate patches, as in the authors' code.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ContextualAttention(nn.Module):
    """Patch-matching attention from the hole to the known region.

    ``forward(f, b, mask)``: ``f`` and ``b`` are ``(B, C, H, W)`` feature maps (foreground and background, the
    same tensor in DeepFill); ``mask`` is ``(B, 1, H, W)``, 1 = hole, at the same resolution; H and W must be
    divisible by ``rate``. Returns ``(y, flow)``: ``y`` is ``(B, C, H, W)`` and ``flow`` is ``(B, 2, H/rate,
    W/rate)``, the (dy, dx) offset in matching cells of each position's strongest match (for visualisation).
    """

    def __init__(self, ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                 softmax_scale: float = 10.0, fuse: bool = True):
        super().__init__()
        if rate < 2 or rate % 2:
            raise ValueError(f"rate must be an even number >= 2, got {rate}")
        self.ksize, self.stride, self.rate = ksize, stride, rate
        self.fuse_k, self.softmax_scale, self.fuse = fuse_k, softmax_scale, fuse
        self.register_buffer("fuse_weight", torch.eye(fuse_k).view(1, 1, fuse_k, fuse_k), persistent=False)

    def _propagate(self, score: torch.Tensor, hf: int, wf: int, hb: int, wb: int) -> torch.Tensor:
        """Attention propagation: identity-kernel convolution along the diagonal of the (fg, bg) score matrix,
        first in row-major order, then in column-major order."""
        pad = self.fuse_k // 2
        weight = self.fuse_weight.to(score.dtype)
        s = score.reshape(hb * wb, hf * wf).t().reshape(1, 1, hf * wf, hb * wb)
        s = F.conv2d(s, weight, padding=pad)
        s = s.reshape(hf, wf, hb, wb).permute(1, 0, 3, 2).reshape(1, 1, wf * hf, wb * hb)
        s = F.conv2d(s, weight, padding=pad)
        s = s.reshape(wf, hf, wb, hb).permute(1, 0, 3, 2).reshape(hf * wf, hb * wb)
        return s.t().reshape(1, hb * wb, hf, wf)

    def forward(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rate, k = self.rate, self.ksize
        batch, channels, height, width = b.shape
        raw_k = 2 * rate
        # raw background patches for pasting: (B, L, C, 2r, 2r)
        raw = F.unfold(b, raw_k, stride=rate * self.stride, padding=rate // 2 if rate > 1 else 0)
        raw = raw.transpose(1, 2).reshape(batch, -1, channels, raw_k, raw_k)

        f_s = F.interpolate(f, scale_factor=1 / rate, mode="nearest")
        b_s = F.interpolate(b, scale_factor=1 / rate, mode="nearest")
        m_s = F.interpolate(mask, scale_factor=1 / rate, mode="nearest")
        hf, wf = f_s.shape[-2:]
        hb, wb = b_s.shape[-2:]
        w = F.unfold(b_s, k, stride=self.stride, padding=k // 2).transpose(1, 2).reshape(batch, -1, channels, k, k)
        # a background patch is usable only if it holds no hole pixel
        m_patch = F.unfold(m_s, k, stride=self.stride, padding=k // 2).mean(1)          # (B, L)
        usable = (m_patch == 0).float().view(batch, -1, 1, 1)

        outputs, flows = [], []
        # matching and softmax in fp32, also under bf16 autocast: cosine scores rounded to bf16's 8-bit mantissa,
        # then multiplied by softmax_scale, would blur which background patch wins
        with torch.autocast(f.device.type, enabled=False):
            for i in range(batch):
                wi = w[i].float()
                norm = wi.flatten(1).norm(dim=1).clamp_min(1e-4).view(-1, 1, 1, 1)
                score = F.conv2d(f_s[i:i + 1].float(), wi / norm, padding=k // 2)     # (1, L, hf, wf)
                if self.fuse:
                    score = self._propagate(score, hf, wf, hb, wb)
                score = score * usable[i]
                attn = F.softmax(score * self.softmax_scale, dim=1) * usable[i]
                best = attn.argmax(dim=1)                                               # (1, hf, wf)
                flows.append(torch.stack([best // wb, best % wb], dim=1))
                # transposed conv pastes each raw patch weighted by its attention; /4 undoes the 2x2 overlap
                outputs.append(F.conv_transpose2d(attn, raw[i].float(), stride=rate, padding=rate // 2) / 4.0)
        y = torch.cat(outputs, 0).to(f.dtype)
        grid_y = torch.arange(hf, device=f.device).view(1, 1, hf, 1).expand(batch, 1, hf, wf)
        grid_x = torch.arange(wf, device=f.device).view(1, 1, 1, wf).expand(batch, 1, hf, wf)
        flow = torch.cat(flows, 0) - torch.cat([grid_y, grid_x], 1)
        return y, flow


def flow_to_color(flow: np.ndarray) -> np.ndarray:
    """Colour-code an offset field ``(2, H, W)`` (dy, dx) as an ``(H, W, 3)`` uint8 image: hue = direction,
    saturation = magnitude (the Middlebury-style visualisation used in the paper's attention figures)."""
    import cv2

    dy, dx = flow.astype(np.float32)
    magnitude = np.sqrt(dx ** 2 + dy ** 2)
    angle = (np.arctan2(-dy, -dx) / math.pi + 1) / 2                                     # 0..1
    hsv = np.zeros(dx.shape + (3,), np.uint8)
    hsv[..., 0] = (angle * 179).astype(np.uint8)
    hsv[..., 1] = np.clip(magnitude / max(magnitude.max(), 1e-6) * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
