"""Training colour maps for SC-FEGAN (Jo & Park, arXiv 1902.06838, sec. 3.1 "Sketch & color domain").

The paper blurs the ground truth (a 3x3 median filter, then 20 bilateral filters) so that colour comes in flat
areas, segments the face into parts (with the GFC face parser) and paints each part with its median colour; the
colour map is given inside the hole only. We have no face parser, so the parts are SLIC superpixels (Achanta et al.,
TPAMI 2012; ``skimage.segmentation.slic``) of the blurred image: with ~``n_segments`` compact regions they follow
hair, skin, lips and eyes closely enough for the coarse colour strokes a user paints.

Colour maps are float32 ``HxWx3`` RGB in [0, 1] with 0 (black) where nothing is painted, facefill's ``color``
convention (see ``facefill.guidance``).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .map_cache import MapCache


def blur_for_color(rgb: np.ndarray, bilateral_passes: int = 20) -> np.ndarray:
    """The paper's flattening: 3x3 median filter, then ``bilateral_passes`` bilateral filters (d=9, sigmas 25/7)."""
    out = cv2.medianBlur(np.ascontiguousarray(rgb), 3)
    for _ in range(bilateral_passes):
        out = cv2.bilateralFilter(out, 9, 25, 7)
    return out


def bilateral_torch(images: torch.Tensor, passes: int = 20, d: int = 9, sigma_color: float = 25.0,
                    sigma_space: float = 7.0, chunk: int = 8) -> torch.Tensor:
    """``passes`` bilateral filters of a uint8 ``(N, 3, H, W)`` batch on its own device, as OpenCV's
    ``bilateralFilter`` for 8-bit colour images computes them (circular window of radius ``d // 2``, colour
    distance = sum of the channels' absolute differences, reflect-101 border, rounded to uint8 after each pass),
    so a GPU flattens a batch of faces for :func:`color_map` in milliseconds. Agrees with :func:`blur_for_color`'s
    OpenCV passes up to rounding (checked in the tests)."""
    r = d // 2
    offsets = [(i, j) for i in range(-r, r + 1) for j in range(-r, r + 1) if i * i + j * j <= r * r]
    space = torch.tensor([-(i * i + j * j) / (2 * sigma_space ** 2) for i, j in offsets], device=images.device)
    out = []
    for x in images.split(chunk):
        x = x.float()
        n, c, h, w = x.shape
        for _ in range(passes):
            padded = F.pad(x, (r, r, r, r), mode="reflect")
            num = torch.zeros_like(x)
            den = torch.zeros((n, 1, h, w), device=x.device)
            for (i, j), sw in zip(offsets, space):
                y = padded[:, :, r + i:r + i + h, r + j:r + j + w]
                diff = (y - x).abs().sum(1, keepdim=True)
                wgt = torch.exp(sw - diff.square() / (2 * sigma_color ** 2))
                num += wgt * y
                den += wgt
            x = torch.round(num / den)
        out.append(x.to(torch.uint8))
    return torch.cat(out)


def segment_medians(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each labelled region painted with its per-channel median colour; uint8 ``HxWx3``."""
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    sorted_labels = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    ends = np.r_[starts[1:], flat.size]
    pixels = rgb.reshape(-1, 3)[order]
    out = np.empty((flat.size, 3), np.uint8)
    for s, e in zip(starts, ends):
        out[order[s:e]] = np.median(pixels[s:e], axis=0).astype(np.uint8)
    return out.reshape(rgb.shape)


def color_map(rgb: np.ndarray, n_segments: int = 64, compactness: float = 10.0, bilateral_passes: int = 20,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """Median colour of superpixels of the blurred image, uint8 ``HxWx3``. ``rng`` jitters the segment count
    (+-25%) so the colour granularity varies between samples."""
    n = n_segments if rng is None else max(4, int(round(n_segments * rng.uniform(0.75, 1.25))))
    return flat_colors(blur_for_color(rgb, bilateral_passes), n, compactness)


def flat_colors(smooth: np.ndarray, n_segments: int = 64, compactness: float = 10.0) -> np.ndarray:
    """:func:`color_map` after the blur: SLIC superpixels of the flattened ``smooth`` image, each painted with
    its median colour (uint8 ``HxWx3``)."""
    from skimage.segmentation import slic

    labels = slic(smooth, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    return segment_medians(smooth, labels)


class ColorMaker:
    """Training colour map of one sample: ``(rgb uint8 HxWx3, hole HxW, rng, key=None) -> float32 HxWx3`` in
    [0, 1], the median colours inside the hole, 0 elsewhere. Painted black is lifted to 1/255 so it stays
    "painted". A colour map costs ~0.8 s at 256 px on one CPU core (20 bilateral passes + SLIC): with
    ``cache_dir`` the map of each ``key`` is computed once (with ``n_segments`` exactly, no jitter) and reused; the
    cache entries are named by the parameters (:meth:`cache_kind`)."""

    def __init__(self, n_segments: int = 64, compactness: float = 10.0, bilateral_passes: int = 20,
                 cache_dir: str | Path | None = None):
        self.n_segments, self.compactness, self.bilateral_passes = n_segments, compactness, bilateral_passes
        self.cache = MapCache(cache_dir, self.cache_kind(), color=True) if cache_dir else None

    def cache_kind(self) -> str:
        """The cache entries' kind: every parameter that changes the map is in it, so maps made with other
        parameters are never read back (the defaults keep the plain ``color`` of existing caches)."""
        if (self.n_segments, self.compactness, self.bilateral_passes) == (64, 10.0, 20):
            return "color"
        return f"color-n{self.n_segments}-c{self.compactness:g}-b{self.bilateral_passes}"

    def cached(self, key: str | None, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The cached map of ``key`` (uint8 ``HxWx3``), or None when there is none (of this ``shape``)."""
        return self.cache.read(key, shape) if self.cache is not None and key else None

    def store(self, key: str, colors: np.ndarray) -> None:
        """Write ``colors`` (uint8 ``HxWx3``) as the cached map of ``key``."""
        self.cache.write(key, colors)

    def colors(self, rgb: np.ndarray, rng: np.random.Generator | None, key: str | None = None) -> np.ndarray:
        cached = self.cached(key, rgb.shape)
        if cached is not None:
            return cached
        caching = self.cache is not None and bool(key)
        colors = color_map(rgb, self.n_segments, self.compactness, self.bilateral_passes, None if caching else rng)
        if caching:
            self.store(key, colors)
        return colors

    def colors_batch(self, rgbs: list[np.ndarray], device: str = "cpu", pool=None) -> list[np.ndarray]:
        """The cached-kind maps (``n_segments`` exactly) of several faces: the bilateral passes run batched on
        ``device`` (:func:`bilateral_torch`) unless it is the CPU, SLIC in ``pool`` (an executor) when given."""
        if torch.device(device).type == "cpu":
            smooth = [blur_for_color(rgb, self.bilateral_passes) for rgb in rgbs]
        else:
            medians = np.stack([cv2.medianBlur(np.ascontiguousarray(rgb), 3) for rgb in rgbs])
            x = torch.from_numpy(medians).permute(0, 3, 1, 2).to(device)
            smooth = list(bilateral_torch(x, self.bilateral_passes).permute(0, 2, 3, 1).cpu().numpy())
        args = (smooth, [self.n_segments] * len(smooth), [self.compactness] * len(smooth))
        return list(pool.map(flat_colors, *args) if pool is not None else map(flat_colors, *args))

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, rng: np.random.Generator,
                 key: str | None = None) -> np.ndarray:
        colors = self.colors(rgb, rng, key)
        colors = colors.astype(np.float32) / 255
        colors[colors.max(axis=2) == 0] = 1 / 255  # black hair must not read as "no colour"
        return colors * (hole > 0)[..., None]
