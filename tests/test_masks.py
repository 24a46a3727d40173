"""Free-form mask generators: DeepFill v2 stroke statistics, determinism, evaluation buckets."""
from __future__ import annotations

import numpy as np
import pytest

from facefill.data.masks import (BUCKETS, MaskGenerator, box_mask, brush_stroke_mask, draw_stroke,
                                 evaluation_mask)


def test_brush_strokes_statistics():
    rng = np.random.default_rng(0)
    masks = [brush_stroke_mask(256, 256, rng) for _ in range(300)]
    ratios = np.array([m.mean() for m in masks])
    assert all(m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1} for m in masks)
    assert (ratios > 0).all()
    # 1-3 strokes of width 12-40 px: DeepFill v2 masks cover ~5-25 % on average
    assert 0.05 < ratios.mean() < 0.3, ratios.mean()
    assert ratios.max() < 0.75


def test_stroke_parameters_follow_deepfill_v2():
    """4-11 turns (5-12 points), widths 12-40 px at 256 (scaled with size), segments <= diag/4."""
    counts, widths = set(), []
    for seed in range(200):
        for size in (256, 512):
            m = np.zeros((size, size), np.uint8)
            vertices, width = draw_stroke(m, np.random.default_rng(seed))
            counts.add(len(vertices))
            widths.append(width * 256 / size)
            seg = np.hypot(*np.diff(np.array(vertices, float), axis=0).T)
            assert seg.max() <= np.hypot(size, size) / 4 + 2
            assert m[vertices[0][1], vertices[0][0]] == 1
    assert counts == set(range(5, 13))
    assert 11.5 <= min(widths) and max(widths) < 40
    assert np.std(widths) > 5


def test_masks_deterministic_per_seed():
    gen = MaskGenerator()
    a = [gen(128, 128, np.random.default_rng(5)) for _ in range(3)]
    b = [gen(128, 128, np.random.default_rng(5)) for _ in range(3)]
    c = gen(128, 128, np.random.default_rng(6))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c)


def test_box_mask_size():
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = box_mask(256, 256, rng)
        ys, xs = np.nonzero(m)
        h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert 128 - 32 <= h <= 128 and 128 - 32 <= w <= 128


@pytest.mark.parametrize("bucket", BUCKETS)
def test_evaluation_masks_in_bucket_and_fixed(bucket):
    for i in range(4):
        m = evaluation_mask(i, bucket, 256, seed=0)
        assert bucket[0] <= m.mean() < bucket[1]
        assert np.array_equal(m, evaluation_mask(i, bucket, 256, seed=0))
    assert not np.array_equal(evaluation_mask(0, bucket, 256, 0), evaluation_mask(0, bucket, 256, 1))
