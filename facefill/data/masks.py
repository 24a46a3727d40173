"""Free-form hole masks.

``brush_stroke_mask`` follows DeepFill v2's generator (Yu et al., ICCV'19, Algorithm 1 and the authors'
``brush_stroke_mask``): 1-3 strokes, each a polyline of 4-11 vertices whose turning angles alternate around
2*pi/5 +- 2*pi/15, segment lengths ~ N(diag/8, diag/16) clipped to [0, diag/4], widths uniform in 12-40 px at
256 px (scaled with the image), round joints; random flips. ``box_mask`` is its random rectangle (half the image
side, shrunk by up to 32 px at 256). Training masks are the union of strokes and, with ``box_prob``, a box. The
authors' code adds a box to every mask (``box_prob=1``, mean hole ratio ~0.32 at 128 px); facefill's default 0.5
(mean ~0.24) also trains on the stroke-only masks that users draw and the 10-30 % evaluation buckets hold.

``bucket_mask`` draws masks whose hole ratio falls in a given bucket, for the fixed evaluation set.
``face_part_mask`` / ``FaceMaskGenerator`` are SC-FEGAN's training masks (Jo & Park, arXiv 1902.06838, sec. 3.1):
the same free-form strokes, but started on facial parts of the aligned face (eyes, brows, nose, mouth, hair line,
from the mean landmarks of ``face_template.json``) so that the hole mostly covers what users edit, plus -- as the
paper does for the eyes -- an ellipse over one or both eyes now and then.

All functions take an explicit ``np.random.Generator``; 1 = hole, uint8 ``HxW``.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

BUCKETS: tuple[tuple[float, float], ...] = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))


def bucket_name(bucket: tuple[float, float]) -> str:
    return f"{round(bucket[0] * 100)}-{round(bucket[1] * 100)}%"


def draw_stroke(mask: np.ndarray, rng: np.random.Generator, width_scale: float = 1.0,
                start: tuple[int, int] | None = None) -> tuple[list[tuple[int, int]], int]:
    """Draw one DeepFill v2 brush stroke into ``mask`` (in place); returns its ``(vertices, width)``.
    ``start`` (x, y) fixes the first vertex (face-part masks); by default it is uniform over the image."""
    h, w = mask.shape
    scale = math.sqrt(h * w) / 256
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    average_radius = math.sqrt(h * h + w * w) / 8
    num_vertex = int(rng.integers(4, 12))
    angle_min = mean_angle - rng.uniform(0, angle_range)
    angle_max = mean_angle + rng.uniform(0, angle_range)
    angles = [2 * math.pi - rng.uniform(angle_min, angle_max) if i % 2 == 0 else rng.uniform(angle_min, angle_max)
              for i in range(num_vertex)]
    vertices = [(int(rng.integers(0, w)), int(rng.integers(0, h))) if start is None else start]
    for angle in angles:
        r = float(np.clip(rng.normal(average_radius, average_radius / 2), 0, 2 * average_radius))
        x = np.clip(vertices[-1][0] + r * math.cos(angle), 0, w - 1)
        y = np.clip(vertices[-1][1] + r * math.sin(angle), 0, h - 1)
        vertices.append((int(x), int(y)))
    width = max(1, int(rng.uniform(12, 40) * scale * width_scale))
    cv2.polylines(mask, [np.array(vertices, np.int32)], False, 1, thickness=width)
    for x, y in vertices:
        cv2.circle(mask, (x, y), width // 2, 1, thickness=-1)
    return vertices, width


def brush_stroke_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """DeepFill v2 free-form mask: 1-3 strokes, random horizontal/vertical flips."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        draw_stroke(mask, rng)
    if rng.normal() > 0:
        mask = mask[:, ::-1]
    if rng.normal() > 0:
        mask = mask[::-1, :]
    return np.ascontiguousarray(mask)


def box_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """DeepFill's random box: half the image side, shrunk by up to 32 px (at 256) per axis, anywhere inside."""
    mask = np.zeros((height, width), np.uint8)
    bh, bw = height // 2, width // 2
    dh = int(rng.integers(0, max(1, 32 * height // 256) + 1))
    dw = int(rng.integers(0, max(1, 32 * width // 256) + 1))
    y = int(rng.integers(0, height - bh + 1)) + dh // 2
    x = int(rng.integers(0, width - bw + 1)) + dw // 2
    mask[y:y + bh - dh, x:x + bw - dw] = 1
    return mask


@dataclass
class MaskGenerator:
    """Training masks: brush strokes united with a random box with probability ``box_prob``."""

    box_prob: float = 0.5

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        mask = brush_stroke_mask(height, width, rng)
        if rng.uniform() < self.box_prob:
            mask |= box_mask(height, width, rng)
        return mask


def bucket_mask(height: int, width: int, bucket: tuple[float, float], rng: np.random.Generator,
                max_tries: int = 1000) -> np.ndarray:
    """A free-form mask (strokes, sometimes a box) whose hole ratio lies in ``[lo, hi)``."""
    lo, hi = bucket
    for _ in range(max_tries):
        mask = np.zeros((height, width), np.uint8)
        if rng.uniform() < 0.3:
            mask |= box_mask(height, width, rng)
        # wider strokes for bigger buckets, so a few strokes reach the ratio
        width_scale = 1.0 + 2.0 * lo
        while mask.mean() < lo:
            draw_stroke(mask, rng, width_scale)
        if mask.mean() < hi:
            return mask
    raise RuntimeError(f"could not draw a mask in bucket {bucket} in {max_tries} tries")


def evaluation_mask(index: int, bucket: tuple[float, float], size: int = 256, seed: int = 0) -> np.ndarray:
    """The fixed evaluation mask number ``index`` of ``bucket``: the same for a given (seed, bucket, index)."""
    bucket_id = BUCKETS.index(tuple(bucket)) if tuple(bucket) in BUCKETS else int(bucket[0] * 1000)
    rng = np.random.default_rng([seed, bucket_id, index])
    return bucket_mask(size, size, bucket, rng)


@functools.lru_cache(maxsize=1)
def face_parts() -> dict[str, tuple[float, float]]:
    """Centres ``(x, y)`` of facial parts as fractions of the aligned frame (mean 68-point landmarks of
    ``celeba256/train`` in ``face_template.json``); ``hair`` is above the brows, at the hair line."""
    data = json.loads((Path(__file__).with_name("face_template.json")).read_text())
    pts = np.asarray(data["points"], np.float64) / data["frame"]
    parts = {"left_eye": pts[36:42], "right_eye": pts[42:48], "left_brow": pts[17:22], "right_brow": pts[22:27],
             "nose": pts[27:36], "mouth": pts[48:68]}
    out = {k: (float(v[:, 0].mean()), float(v[:, 1].mean())) for k, v in parts.items()}
    brow_y = pts[17:27, 1].mean()
    out["hair"] = (float(pts[:, 0].mean()), float(max(0.02, brow_y - 0.12)))
    return out


def face_part_mask(height: int, width: int, rng: np.random.Generator, part_prob: float = 0.75,
                   eye_prob: float = 0.25) -> np.ndarray:
    """1-3 DeepFill strokes, each started (with ``part_prob``) within a few pixels of a random facial part, and
    with ``eye_prob`` an ellipse over one or both eyes; for aligned face crops. uint8 ``HxW``, 1 = hole."""
    mask = np.zeros((height, width), np.uint8)
    parts = face_parts()
    names = sorted(parts)
    jitter = 0.04 * min(height, width)
    for _ in range(int(rng.integers(1, 4))):
        if rng.uniform() >= part_prob:
            draw_stroke(mask, rng)
            continue
        fx, fy = parts[names[int(rng.integers(len(names)))]]
        cx = float(np.clip(fx * width + rng.normal(0, jitter), 0, width - 1))
        cy = float(np.clip(fy * height + rng.normal(0, jitter), 0, height - 1))
        stroke = np.zeros_like(mask)
        draw_stroke(stroke, rng, start=(int(cx), int(cy)))
        # DeepFill's turning angles make a stroke wander off one way from its start: centre it on the part
        ys, xs = np.nonzero(stroke)
        shift = np.float32([[1, 0, cx - xs.mean()], [0, 1, cy - ys.mean()]])
        mask |= cv2.warpAffine(stroke, shift, (width, height), flags=cv2.INTER_NEAREST)
    if rng.uniform() < eye_prob:
        which = [("left_eye",), ("right_eye",), ("left_eye", "right_eye")][int(rng.integers(3))]
        for name in which:
            fx, fy = parts[name]
            axes = (max(1, int(width * rng.uniform(0.07, 0.12))), max(1, int(height * rng.uniform(0.04, 0.08))))
            cv2.ellipse(mask, (int(fx * width), int(fy * height)), axes, float(rng.uniform(-15, 15)), 0, 360, 1, -1)
    return mask


@dataclass
class FaceMaskGenerator:
    """SC-FEGAN training masks: face-part strokes (``face_part_mask``), with probability ``box_prob`` united with
    a random box as ``MaskGenerator`` does."""

    box_prob: float = 0.0
    part_prob: float = 0.75
    eye_prob: float = 0.25

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        mask = face_part_mask(height, width, rng, self.part_prob, self.eye_prob)
        if rng.uniform() < self.box_prob:
            mask |= box_mask(height, width, rng)
        return mask
