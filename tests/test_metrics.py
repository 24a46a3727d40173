"""Evaluation metrics on cases with known answers, and a small run of the quality benchmark."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from facefill.evaluation import (METRICS, PSNR_MAX, MetricAccumulator, evaluate, image_metrics, l1, psnr, ssim,
                                 write_report)
from facefill.evaluation.quality import TIME_METRIC

from conftest import shared_folder


def _image(seed=0, size=48, high=246):
    return np.random.default_rng(seed).integers(0, high, (size, size, 3), dtype=np.uint8)


def _hole(size=48):
    hole = np.zeros((size, size), bool)
    hole[10:30, 15:35] = True
    return hole


def test_identical_images():
    a, hole = _image(), _hole()
    m = image_metrics(a, a.copy(), hole)
    assert m["l1"] == 0 and m["l1_hole"] == 0
    assert m["psnr"] == PSNR_MAX and m["psnr_hole"] == PSNR_MAX  # capped, not inf
    assert m["ssim"] == pytest.approx(1.0, abs=1e-9) and m["ssim_hole"] == pytest.approx(1.0, abs=1e-9)


def test_constant_shift_by_10_levels():
    a = _image()  # values <= 245, so +10 does not clip
    b = a + np.uint8(10)
    # |diff| = 10/255 everywhere; PSNR = 10 log10(1 / (10/255)^2) = 20 log10(25.5)
    assert l1(b, a) == pytest.approx(10 / 255) == pytest.approx(0.0392157, abs=1e-7)
    assert psnr(b, a) == pytest.approx(20 * math.log10(25.5)) == pytest.approx(28.1308, abs=1e-4)
    assert psnr(b, a, _hole()) == pytest.approx(28.1308, abs=1e-4)
    assert 0 < ssim(b, a) < 1


def test_hole_metrics_ignore_the_outside():
    a, hole = _image(), _hole()
    b = a.copy()
    b[~hole] = 255 - b[~hole]  # wrong everywhere outside the hole, exact inside
    m = image_metrics(b, a, hole)
    assert m["l1_hole"] == 0 and m["psnr_hole"] == PSNR_MAX
    assert m["l1"] > 0.1 and m["psnr"] < 20 and m["ssim"] < 0.5
    c = a.copy()
    c[hole] = 0  # wrong only inside the hole: hole error is larger than the whole-image error
    m = image_metrics(c, a, hole)
    assert m["l1_hole"] == pytest.approx(a[hole].mean() / 255)
    assert m["l1_hole"] > m["l1"] > 0 and m["psnr_hole"] < m["psnr"]


def test_ssim_hole_is_map_mean_over_hole():
    from skimage.metrics import structural_similarity

    a, hole = _image(1), _hole()
    b = a.copy()
    b[hole] = 128
    _, full = structural_similarity(b, a, channel_axis=-1, data_range=255, full=True)
    assert ssim(b, a, hole) == pytest.approx(full.mean(-1)[hole].mean())
    assert ssim(b, a, hole) < ssim(b, a)


def test_bad_inputs_are_rejected():
    a, hole = _image(), _hole()
    with pytest.raises(ValueError, match="empty"):
        image_metrics(a, a, np.zeros_like(hole))
    with pytest.raises(ValueError, match="uint8"):
        l1(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="differ"):
        psnr(a[:10], a)


def test_accumulator_averages_per_image():
    a, hole = _image(), _hole()
    acc = MetricAccumulator()
    acc.update(a, a, hole)
    acc.update(a + np.uint8(10), a, hole)
    out = acc.compute()
    assert acc.n == 2 and set(out) == set(METRICS)
    assert out["l1"] == pytest.approx(5 / 255)
    assert out["psnr"] == pytest.approx((PSNR_MAX + 20 * math.log10(25.5)) / 2)
    acc.reset()
    with pytest.raises(ValueError, match="no images"):
        acc.compute()


def test_evaluate_two_test_images(tmp_path):
    data = shared_folder("celeba256", "test")
    records = evaluate(["telea"], data, limit=2, progress=False, metrics=[])
    buckets = ["10-20%", "20-30%", "30-40%", "40-50%", "50-60%", "all"]
    assert {r["bucket"] for r in records} == set(buckets)
    assert {r["metric"] for r in records} == set(METRICS) | {TIME_METRIC}
    assert len(records) == len(buckets) * (len(METRICS) + 1)
    for r in records:
        assert set(r) == {"model", "bucket", "metric", "value", "n"}
        assert r["model"] == "telea" and math.isfinite(r["value"])
        assert r["n"] == (10 if r["bucket"] == "all" else 2)
    psnr_all = next(r["value"] for r in records if r["metric"] == "psnr" and r["bucket"] == "all")
    assert 15 < psnr_all < 50
    # the same seed gives the same masks, hence the same scores
    again = evaluate(["telea"], data, limit=2, progress=False, buckets=[(0.1, 0.2)], metrics=[])
    first = {r["metric"]: r["value"] for r in records if r["bucket"] == "10-20%"}
    assert all(first[r["metric"]] == pytest.approx(r["value"]) for r in again if r["metric"] in METRICS)

    out = write_report(records, tmp_path / "report")
    assert json.loads((out / "metrics.json").read_text()) == list(records)
    report = (out / "report.md").read_text()
    assert "| telea |" in report and "higher is better" in report and "lower is better" in report
    from PIL import Image

    with Image.open(out / "grid.png") as grid:
        assert grid.width == 128 * 4 and grid.height == 16 + 128 * 5  # input, mask, telea, truth x 5 buckets
