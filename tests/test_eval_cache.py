"""The evaluation score cache: unchanged models are not run again, changed ones always are, broken files are
rebuilt, and cached scores equal fresh ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facefill.evaluation import evaluate
from facefill.evaluation.cache import EvalCache, model_fingerprint
from facefill.models.classical import OpenCVInpainter

BUCKETS = [(0.1, 0.2), (0.3, 0.4)]


class CountingTelea(OpenCVInpainter):
    """Telea that counts its calls."""

    def __init__(self, **kw):
        super().__init__("telea", **kw)
        self.name = "counting_telea"
        self.calls = 0

    def inpaint_array(self, rgb, hole, **guidance):
        self.calls += 1
        return super().inpaint_array(rgb, hole, **guidance)


def _run(model, data, cache, **kw):
    kw = {"size": 96, "buckets": BUCKETS, "progress": False, "metrics": [], **kw}
    return evaluate([model], data, cache=cache, **kw)


def _scores(records, timed: bool = True):
    """``(bucket, metric) -> value``; ``timed=False`` leaves out the wall time (not repeatable when recomputed)."""
    return {(r["bucket"], r["metric"]): r["value"] for r in records if timed or r["metric"] != "ms_per_image"}


def test_unchanged_model_is_read_from_the_cache(face_folder, tmp_path):
    cache = tmp_path / "cache"
    first_model = CountingTelea()
    first = _run(first_model, face_folder, cache)
    assert first_model.calls == 6 * 2 and first.meta["cached"] == 0
    again = CountingTelea()
    second = _run(again, face_folder, cache)
    # only the grid's examples (one per bucket) are inpainted again; every score comes from the cache
    assert again.calls == 2 and second.meta["cached"] == 12
    assert _scores(second) == _scores(first)
    # without a cache everything is recomputed, to the same values
    fresh = CountingTelea()
    assert _scores(_run(fresh, face_folder, None), False) == pytest.approx(_scores(first, False))
    assert fresh.calls == 12


def test_a_changed_model_or_new_images_miss(face_folder, tmp_path):
    cache = tmp_path / "cache"
    _run(CountingTelea(), face_folder, cache, limit=2)
    grown = CountingTelea()
    assert _run(grown, face_folder, cache, limit=4).meta["cached"] == 2 * 2  # the first two images only
    other = CountingTelea(radius=5)  # another setting: another fingerprint
    assert model_fingerprint(other) != model_fingerprint(CountingTelea())
    assert _run(other, face_folder, cache, limit=2).meta["cached"] == 0
    # other masks (seed) are other entries
    assert _run(CountingTelea(), face_folder, cache, limit=2, seed=1).meta["cached"] == 0


def test_network_fingerprint_follows_the_weights():
    from facefill.registry import create_model

    torch.manual_seed(0)
    a = create_model("deepfill_v2_tiny")
    before = model_fingerprint(a)
    assert model_fingerprint(a) == before
    with torch.no_grad():
        next(a.parameters()).view(-1)[0] += 1e-3
    assert model_fingerprint(a) != before


def test_network_fingerprint_follows_the_precision():
    """bf16 autocast (``amp``) inpaints differently from fp32: its scores must not be served for an fp32 run."""
    from facefill.registry import create_model

    torch.manual_seed(0)
    a = create_model("deepfill_v2_tiny")
    a.amp = "off"
    fp32 = model_fingerprint(a)
    a.amp = "bf16"
    assert model_fingerprint(a) != fp32


def test_a_broken_cache_file_is_rebuilt(face_folder, tmp_path):
    cache = tmp_path / "cache"
    model = CountingTelea()
    first = _run(model, face_folder, cache, limit=2)
    store = cache / f"counting_telea-{model_fingerprint(model)}.npz"
    assert store.is_file()
    store.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable evaluation cache"):
        again = _run(CountingTelea(), face_folder, cache, limit=2)
    assert again.meta["cached"] == 0 and _scores(again, False) == pytest.approx(_scores(first, False))
    assert _run(CountingTelea(), face_folder, cache, limit=2).meta["cached"] == 4  # rewritten


def test_put_keeps_families_it_did_not_compute(tmp_path):
    cache = EvalCache(tmp_path)
    base = {"l1": 0.1, "psnr": 20.0, "ssim": 0.9, "l1_hole": 0.3, "psnr_hole": 12.0, "ssim_hole": 0.5, "ms": 3.0}
    cache.put("m-1", "k", {**base, "st_lpips": 0.25}, np.ones(2048, np.float32))
    cache.put("m-1", "k", base, None)  # a later run without ST-LPIPS / FID
    cache.save()
    again = EvalCache(tmp_path)
    values, feature = again.get("m-1", "k", ["st_lpips", "fid"])
    assert values["st_lpips"] == 0.25 and feature is not None and feature.sum() == 2048
    assert again.get("m-1", "k", ["identity"]) is None  # identity was never computed (and the truth's face unknown)
    assert again.get("m-1", "k", ["identity"], face=0.0) is not None  # no face in the truth: nothing to compute


def test_extra_metrics_cached_equal_fresh(face_folder, tmp_path):
    from facefill.evaluation import extras
    from facefill._optional import MissingDependencyError

    try:
        extras.check_family("st_lpips")
        extras.check_family("fid")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    cache = tmp_path / "cache"
    base = _run(CountingTelea(), face_folder, cache, limit=3)  # base metrics only: no ST-LPIPS stored yet
    assert base.meta["cached"] == 0
    model = CountingTelea()
    first = _run(model, face_folder, cache, limit=3, metrics=["st_lpips", "fid"])
    assert first.meta["cached"] == 0 and model.calls == 6  # entries without ST-LPIPS are recomputed
    model = CountingTelea()
    second = _run(model, face_folder, cache, limit=3, metrics=["st_lpips", "fid"])
    assert second.meta["cached"] == 6 and model.calls == 2
    from facefill.evaluation.quality import readme_block

    block = readme_block("<!-- results:start -->\n<!-- results:end -->\n", second, "facefill eval ...")
    assert "6 of the (model, image, bucket) scores read from the evaluation cache" in block
    assert _scores(second) == pytest.approx(_scores(first), rel=1e-6)
    assert {"st_lpips", "fid"} <= {m for _, m in _scores(second)}


def test_extra_limit_scores_the_extra_families_on_the_first_images(face_folder, tmp_path):
    from facefill.evaluation import extras
    from facefill._optional import MissingDependencyError
    from facefill.evaluation.quality import readme_block

    try:
        extras.check_family("st_lpips")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    records = _run(CountingTelea(), face_folder, tmp_path / "cache", limit=4, metrics=["st_lpips"], extra_limit=2)
    n = {(r["bucket"], r["metric"]): r["n"] for r in records}
    assert n["10-20%", "psnr"] == 4 and n["10-20%", "st_lpips"] == 2 and n["all", "st_lpips"] == 4
    assert records.meta["extra_images"] == 2
    readme = "x\n<!-- results:start -->\n<!-- results:end -->\n"
    block = readme_block(readme, records, "facefill eval ...")
    assert "st_lpips on the first 2 images" in block and "ST-LPIPS" in block and "PSNR (dB), whole image" in block
    with pytest.raises(ValueError, match="extra_limit must be at least 1"):
        _run(CountingTelea(), face_folder, None, metrics=["st_lpips"], extra_limit=0)


def test_a_model_named_by_a_path_is_cached_inside_the_cache(face_folder, tmp_path):
    """Models given as paths (a weights folder, a training run) get a file name without separators."""
    cache = tmp_path / "cache"
    model = CountingTelea()
    model.name = str(tmp_path / "elsewhere" / "run")
    _run(model, face_folder, cache, limit=2)
    assert not (tmp_path / "elsewhere").exists()
    stores = [p.name for p in cache.glob("*.npz") if p.name != "truths.npz"]
    assert len(stores) == 1 and stores[0].endswith(".npz") and "elsewhere_run-" in stores[0]
    again = CountingTelea()
    again.name = model.name
    assert _run(again, face_folder, cache, limit=2).meta["cached"] == 2 * 2
