"""Square windows of an image: where the shared inference path (``facefill.inpainter``) and face alignment
(``facefill.align``) cut the pixels a model sees, and how they paste its result back into the hole only.

A :class:`CropBox` may reach past the image border; :func:`take` mirrors the image there (and the hole with it:
the mirror image of a hole pixel shows what the hole hides, so it is hole, never context); :func:`paste` copies a
window back at a group of hole pixels only. A group is a bool mask of the box's part inside the image
(:func:`inside`), so many small holes on a large photo cost their windows, not a whole-image mask each.
:func:`resample_known` scales a cut image and its hole to the model's window from the known pixels only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np


KNOWN_SHARE = 0.5  # a window pixel is known when at least this share of the image pixels it averages is known


@dataclass(frozen=True)
class CropBox:
    """A square window ``[y0, y0+side) x [x0, x0+side)`` in image coordinates (may extend past the border)."""

    y0: int
    x0: int
    side: int


def inside(box: CropBox, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The part of ``box`` inside an image of ``shape`` (``h, w, ...``), as ``(rows, columns)`` slices of the image."""
    return (slice(max(0, box.y0), min(shape[0], box.y0 + box.side)),
            slice(max(0, box.x0), min(shape[1], box.x0 + box.side)))


def crop_boxes(hole: np.ndarray, min_side: int, margin: float = 0.5) -> list[tuple[CropBox, np.ndarray]]:
    """One square window per group of nearby holes: side = max(min_side, hole extent * (1 + 2*margin)),
    centred on the group and moved inside the image where it fits. Returns ``(box, group)`` pairs; ``group`` is the
    group's hole over ``hole[inside(box, hole.shape)]`` (the box's part inside the image, where the group lies)."""
    h, w = hole.shape
    if max(h, w) <= min_side:  # small image: one window, padded
        return [(CropBox(0, 0, min_side), hole)]
    # holes closer than a few pixels at model scale belong to the same window
    gap = max(1, min_side // 16)
    joined = cv2.dilate(hole.astype(np.uint8), np.ones((gap, gap), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        side = int(max(min_side, np.ceil(max(bw, bh) * (1 + 2 * margin))))
        side = min(side, max(h, w))
        cy, cx = y + bh / 2, x + bw / 2
        y0 = int(round(cy - side / 2))
        x0 = int(round(cx - side / 2))
        # keep the window inside the image along each axis where the image is long enough
        y0 = min(max(y0, 0), h - side) if side <= h else (h - side) // 2
        x0 = min(max(x0, 0), w - side) if side <= w else (w - side) // 2
        box = CropBox(y0, x0, side)
        rows, cols = inside(box, hole.shape)
        group = hole[rows, cols] & (labels[rows, cols] == i)  # the window only, not a whole-image pass per group
        if group.any():
            out.append((box, group))
    return out


def take(arr: np.ndarray, box: CropBox) -> np.ndarray:
    """The window ``box`` of ``arr``; parts outside the image are mirrored (reflect padding)."""
    h, w = arr.shape[:2]
    top, left = max(0, -box.y0), max(0, -box.x0)
    bottom, right = max(0, box.y0 + box.side - h), max(0, box.x0 + box.side - w)
    inner = arr[max(0, box.y0):min(h, box.y0 + box.side), max(0, box.x0):min(w, box.x0 + box.side)]
    if top or left or bottom or right:
        mode = cv2.BORDER_REFLECT_101 if min(inner.shape[:2]) > 1 else cv2.BORDER_REPLICATE
        inner = cv2.copyMakeBorder(inner, top, bottom, left, right, mode)
    return inner


def paste(work: np.ndarray, result: np.ndarray, box: CropBox, group: np.ndarray) -> None:
    """Copy ``result`` (the window) into ``work`` at the pixels of ``group`` only: a bool mask of the box's part
    inside the image, ``work[inside(box, work.shape)]``'s shape (as :func:`crop_boxes` gives)."""
    rows, cols = inside(box, work.shape)
    region = result[rows.start - box.y0:rows.stop - box.y0, cols.start - box.x0:cols.stop - box.x0]
    work[rows, cols][group] = region[group]


def resample_known(rgb: np.ndarray, hole: np.ndarray, resample: Callable[[np.ndarray], np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A cut ``rgb`` (uint8 ``HxWx3``) and its ``hole`` (``HxW``, nonzero = hole) scaled to a model's window:
    ``(window uint8 hxwx3, window hole bool hxw)``, from the known pixels only.

    ``resample`` is a linear resampling with non-negative weights (an area reduction, a bilinear warp), applied
    alike to the image with its hole zeroed and to the share of known pixels (normalised convolution, Knutsson &
    Westin, CVPR 1993): a window pixel is the average of the known image pixels it covers, and is hole where less
    than ``KNOWN_SHARE`` of what it covers is known (zero there; the networks ignore hole pixels). A window pixel on
    the hole's edge so keeps its known part, instead of turning hole because a hole pixel touches it (that
    dilation, about one pixel at model scale, cost deepfill_v2 0.3 dB PSNR through a face-aligned window), and no
    window pixel carries anything of what the hole hides."""
    known = (np.asarray(hole) == 0).astype(np.float32)
    share = resample(known)
    total = resample(rgb.astype(np.float32) * known[..., None])
    window_hole = share < KNOWN_SHARE
    out = total / np.maximum(share, KNOWN_SHARE)[..., None]
    out[window_hole] = 0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), window_hole
