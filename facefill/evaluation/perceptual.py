"""ST-LPIPS: the shift-tolerant LPIPS of Ghildyal & Liu, "Shift-tolerant Perceptual Similarity Metric", ECCV 2022.

LPIPS (Zhang et al., CVPR 2018, eq. 1): ``d(x, x0) = sum_l mean_hw || w_l * (y_l - y0_l) ||^2`` where ``y_l`` are the
channel-normalised activations of layer ``l`` of a trunk network and ``w_l`` learned per-channel weights. ST-LPIPS
keeps the formula and makes the AlexNet trunk tolerate small shifts: the first convolution runs at stride 1 and is
followed by a blur-pool (reflect-pad, [1, 2, 1] x [1, 2, 1] / 16 blur, subsample by 2: Zhang, "Making Convolutional
Networks Shift-Invariant Again", ICML 2019), and each max pool runs at stride 1 followed by a blur-pool. We use the
AlexNet variant (``net="alex", variant="shift_tolerant"``, the example of the package's README) with the authors'
weights for the trunk and the ``w_l``.

The weights are ``weights/vST0.0/alex_shift_tolerant.pth`` of the ``stlpips-pytorch==0.0.2`` wheel, loaded by file
path into ``STLPIPS`` below, a transcription of the package's ``stlpips.LPIPS`` + ``invariant_networks.alexnet``
(``shift_tolerant`` branch) + ``models_lpf.Downsample(pad_more=True)`` with the same module names, so the state dict
loads with ``strict=True``. Why not import the package: it imports torchvision, IPython and torchsummary at import
time (unused on this path; torchvision cannot be imported here, the other two are not installed), so importing it
would mean putting fake modules into ``sys.modules``, which leaks into the whole process and hides a later real
import failure; and its own loader uses ``load_state_dict(strict=False)``, which would silently keep random weights if
a key changed. ``tests/test_eval_metrics.py`` checks that this transcription gives the package's numbers (importing
the package there with the stubs confined to the test).

Input convention (as LPIPS): ``(B, 3, H, W)`` RGB in [-1, 1] (the project's convention), scaled inside by the
``scaling_layer`` (ImageNet-like shift/scale stored in the weights); output ``(B,)``, 0 for identical images.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Sequence

import numpy as np

from .._optional import package_file

PIP = "--no-deps stlpips-pytorch==0.0.2"
WEIGHTS = "weights/vST0.0/alex_shift_tolerant.pth"
CHANNELS = (64, 192, 384, 256, 256)  # the five AlexNet layers LPIPS compares (relu1 .. relu5)


def weights_path():
    """Path of the ST-LPIPS AlexNet weights inside the installed stlpips-pytorch (the package is not imported)."""
    return package_file("stlpips_pytorch", WEIGHTS, PIP, "ST-LPIPS")


def _build():
    """The network as an ``nn.Module`` (built lazily: torch is imported only when ST-LPIPS is used)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class BlurPool(nn.Module):
        """models_lpf.Downsample(filt_size=3, stride=2, pad_more=True): reflect-pad 2, depthwise [1,2,1]^2/16, stride 2."""

        def __init__(self, channels: int):
            super().__init__()
            a = torch.tensor([1.0, 2.0, 1.0])
            filt = a[:, None] * a[None, :]
            self.register_buffer("filt", (filt / filt.sum())[None, None].repeat(channels, 1, 1, 1))
            self.pad = nn.ReflectionPad2d(2)

        def forward(self, x):
            return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])

    def seq(**layers):
        return nn.Sequential(OrderedDict(layers))

    class AlexNetST(nn.Module):
        """invariant_networks.alexnet(variant="shift_tolerant"): five slices, each returning a compared layer."""

        def __init__(self):
            super().__init__()
            # the indices are those of the package's ``features`` list, so the state-dict keys match
            self.slice1 = seq(**{"0": nn.Conv2d(3, 64, 11, stride=1, padding=2), "1": BlurPool(64), "2": nn.ReLU()})
            self.slice2 = seq(**{"3": nn.MaxPool2d(3, stride=1), "4": BlurPool(64),
                                 "5": nn.Conv2d(64, 192, 5, padding=2), "6": nn.ReLU()})
            self.slice3 = seq(**{"7": nn.MaxPool2d(3, stride=1), "8": BlurPool(192),
                                 "9": nn.Conv2d(192, 384, 3, padding=1), "10": nn.ReLU()})
            self.slice4 = seq(**{"11": nn.Conv2d(384, 256, 3, padding=1), "12": nn.ReLU()})
            self.slice5 = seq(**{"13": nn.Conv2d(256, 256, 3, padding=1), "14": nn.ReLU()})

        def forward(self, x):
            out = []
            for s in (self.slice1, self.slice2, self.slice3, self.slice4, self.slice5):
                x = s(x)
                out.append(x)
            return out

    class ScalingLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
            self.register_buffer("scale", torch.ones(1, 3, 1, 1))

        def forward(self, x):
            return (x - self.shift) / self.scale

    class NetLin(nn.Module):
        """A 1x1 convolution without bias (``model.0`` was a Dropout in the package: a no-op in eval mode)."""

        def __init__(self, channels: int):
            super().__init__()
            self.model = seq(**{"0": nn.Identity(), "1": nn.Conv2d(channels, 1, 1, bias=False)})

        def forward(self, x):
            return self.model(x)

    class STLPIPS(nn.Module):
        """ST-LPIPS (AlexNet). ``forward(x0, x1)``: ``(B, 3, H, W)`` in [-1, 1] -> ``(B,)`` distances.
        ``features(x)`` + ``distance(f0, f1)`` let a caller reuse one image's features against many others."""

        def __init__(self):
            super().__init__()
            self.scaling_layer = ScalingLayer()
            self.net = AlexNetST()
            for k, c in enumerate(CHANNELS):
                self.add_module(f"lin{k}", NetLin(c))

        def features(self, x):
            # LPIPS' normalize_tensor: unit length along channels, eps 1e-10
            return [f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) for f in self.net(self.scaling_layer(x))]

        def distance(self, f0, f1):
            total = 0
            for k, (a, b) in enumerate(zip(f0, f1)):
                total = total + getattr(self, f"lin{k}")((a - b) ** 2).mean(dim=(2, 3))
            return total[:, 0]

        def forward(self, x0, x1):
            return self.distance(self.features(x0), self.features(x1))

    return STLPIPS()


@functools.lru_cache(maxsize=None)
def st_lpips_network(device: str = "cpu"):
    """The ST-LPIPS network with its shipped weights (strict load), once per device, eval mode, no gradients."""
    import torch

    net = _build()
    net.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True), strict=True)
    net.requires_grad_(False)
    return net.eval().to(device)


def to_tensor(images: Sequence[np.ndarray], device: str = "cpu"):
    """uint8 ``HxWx3`` RGB images (one size) -> ``(B, 3, H, W)`` float in [-1, 1]."""
    import torch

    for im in images:
        if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
            raise ValueError(f"images must be uint8 HxWx3 RGB arrays, got {im.dtype} {im.shape}")
    x = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def st_lpips(pred: np.ndarray, truth: np.ndarray, device: str = "cpu") -> float:
    """ST-LPIPS distance of two uint8 ``HxWx3`` RGB images of one size (0 when identical; lower is more similar)."""
    import torch

    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in size")
    with torch.inference_mode():
        return float(st_lpips_network(device)(to_tensor([pred], device), to_tensor([truth], device))[0])


class STLPIPSScorer:
    """Distances of many results to one truth, computing the truth's features once.

    >>> scorer = STLPIPSScorer()
    >>> scorer.set_truth(truth)             # uint8 HxWx3
    >>> scorer.score([out_a, out_b, ...])   # -> np.ndarray of distances
    """

    def __init__(self, device: str = "cpu", batch_size: int = 8):
        self.device, self.batch_size = device, batch_size
        self.net = st_lpips_network(device)
        self._truth = None

    def set_truth(self, truth: np.ndarray) -> None:
        import torch

        with torch.inference_mode():
            self._truth = self.net.features(to_tensor([truth], self.device))
        self._shape = truth.shape

    def score(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        if self._truth is None:
            raise ValueError("call set_truth(truth) before score(images)")
        for im in images:
            if im.shape != self._shape:
                raise ValueError(f"result {im.shape} and truth {self._shape} differ in size")
        out = []
        with torch.inference_mode():
            for k in range(0, len(images), self.batch_size):
                f = self.net.features(to_tensor(images[k:k + self.batch_size], self.device))
                out.append(self.net.distance(f, [t.expand_as(a) for t, a in zip(self._truth, f)]).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)
