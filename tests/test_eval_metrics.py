"""FID/KID, ST-LPIPS and identity preservation (the ``eval`` extra) on cases with known answers.

The formula tests need nothing; the network tests skip, saying which pip command installs what they need, when a
wheel is missing, and use a few real faces from ../shared/data/celeba256/test (skipped when it is absent), scaled to
128 px where the metric allows it to keep the file fast on a laptop CPU.
"""
from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from facefill.evaluation import extras, fid as fidmod
from facefill._optional import MissingDependencyError

from conftest import shared_folder

# files of celeba256/test: three different people whose faces dlib's MMOD detector finds
FACES = ("00089.jpg", "00165.jpg", "00182.jpg")
OTHER_FACES = ("00015.jpg", "00034.jpg", "00048.jpg")  # three more people


def needs(family: str) -> None:
    try:
        extras.check_family(family)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


def _read(names) -> list[np.ndarray]:
    from PIL import Image

    folder = shared_folder("celeba256", "test")
    return [np.asarray(Image.open(folder / f).convert("RGB")) for f in names]


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    return _read(FACES)


@pytest.fixture(scope="module")
def other_faces() -> list[np.ndarray]:
    return _read(OTHER_FACES)


def small(image: np.ndarray, size: int = 128) -> np.ndarray:
    import cv2

    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------- FID / KID formulas (no network)


def _scipy_fid(a, b):
    import scipy.linalg

    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("n_a, n_b", [(400, 300), (6, 9)])  # N > D (eigh factors) and N < D (centred data)
def test_fid_matches_the_textbook_formula(n_a, n_b):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n_a, 12)) @ rng.normal(size=(12, 12))
    b = rng.normal(size=(n_b, 12)) @ rng.normal(size=(12, 12)) + 0.5
    if n_a > 12 and n_b > 12:
        assert fidmod.fid(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-7)
    else:  # rank-deficient covariances: the same value, without sqrtm's round-off
        assert fidmod.fid(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-4)


def test_fid_of_a_translated_set_is_the_squared_shift():
    a = np.random.default_rng(1).normal(size=(20, 50))
    delta = np.linspace(-1, 1, 50)
    assert fidmod.fid(a, a) == pytest.approx(0.0, abs=1e-9)
    assert fidmod.fid(a, a + delta) == pytest.approx(float(delta @ delta), rel=1e-9)


def test_kid_unbiased_estimate():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(30, 16))
    # same set on both sides: the unbiased MMD^2 is -2 (mean k(x, x) - mean_{i != j} k(x_i, x_j)) / n
    k = (a @ a.T / 16 + 1) ** 3
    expected = -2 * (np.trace(k) / 30 - (k.sum() - np.trace(k)) / (30 * 29)) / 30
    assert fidmod.kid(a, a) == pytest.approx(expected, rel=1e-9)
    near = fidmod.kid(a, rng.normal(size=(30, 16)))
    far = fidmod.kid(a, rng.normal(size=(30, 16)) + 1.0)
    assert abs(near) < 0.1 * far
    # subsets: reproducible for a given generator
    big = rng.normal(size=(50, 16))
    one = fidmod.kid(big, big + 1.0, subsets=10, subset_size=20, rng=np.random.default_rng(5))
    assert one == fidmod.kid(big, big + 1.0, subsets=10, subset_size=20, rng=np.random.default_rng(5)) > 0


def test_fid_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        fidmod.fid(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="same D"):
        fidmod.kid(np.zeros((3, 4)), np.zeros((3, 5)))


# ---------------------------------------------------------------- Inception input convention


def test_inception_preprocessing():
    import torch

    # range: 0 -> -1, 255 -> 0.9921875 (TF Inception: x / 128 - 1)
    x = fidmod.preprocess([np.zeros((299, 299, 3), np.uint8), np.full((299, 299, 3), 255, np.uint8)])
    assert x.shape == (2, 3, 299, 299)
    assert float(x[0].min()) == -1.0 and float(x[1].max()) == 0.9921875
    # legacy TF1 bilinear: output column j samples source column j * 256 / 299
    ramp = torch.arange(256, dtype=torch.float32).repeat(1, 1, 4, 1)
    out = fidmod._tf_bilinear(ramp, 299)[0, 0, 0]
    j = torch.arange(299, dtype=torch.float32)
    assert torch.allclose(out, torch.clamp(j * 256 / 299, max=255), atol=1e-3)


def test_inception_features(faces, other_faces):
    needs("fid")
    import cv2

    feats = fidmod.inception_features(faces + faces, batch_size=6)
    assert feats.shape == (6, fidmod.FEATURE_DIM) and feats.min() >= 0 and np.isfinite(feats).all()
    one_by_one = fidmod.inception_features(faces[:2], batch_size=1)
    np.testing.assert_allclose(one_by_one, feats[:2], rtol=1e-3, atol=1e-4)  # batch composition does not matter
    a, again = feats[:3], feats[3:]
    assert fidmod.fid(a, again) < 1e-3  # identical images
    assert fidmod.fid(np.roll(a, 1, axis=0), again) < 1e-3  # the same set in another order
    blurred = fidmod.inception_features([cv2.GaussianBlur(f, (0, 0), 1.0) for f in faces])
    different = fidmod.inception_features(other_faces)
    assert 1.0 < fidmod.fid(blurred, a) < fidmod.fid(different, a)  # different faces are farther than a blur


# ---------------------------------------------------------------- ST-LPIPS


def test_st_lpips_identical_shifted_and_different(faces):
    needs("st_lpips")
    from facefill.evaluation.perceptual import STLPIPSScorer, st_lpips

    a, b = small(faces[0]), small(faces[1])
    assert st_lpips(a, a.copy()) == 0.0
    # the same face shifted by 2 px (two crops of one image) vs. a different face, both 124 px wide
    shifted = st_lpips(a[:, :-4], a[:, 2:-2])
    different = st_lpips(a[:, :-4], b[:, :-4])
    assert 0 < shifted < 0.1 < different
    assert shifted < 0.25 * different
    scorer = STLPIPSScorer(batch_size=2)
    scorer.set_truth(a)
    np.testing.assert_allclose(scorer.score([a, b, a]), [0.0, st_lpips(b, a), 0.0], atol=1e-6)


@pytest.fixture
def stlpips_package(monkeypatch):
    """The stlpips_pytorch package itself, imported with stand-ins for the torchvision, IPython and torchsummary
    imports it does not use on the shift-tolerant AlexNet path (confined to this test)."""
    needs("st_lpips")
    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    stubs = {"torchvision": tv, "torchvision.models": tv.models, "IPython": types.ModuleType("IPython"),
             "torchsummary": types.ModuleType("torchsummary")}
    stubs["IPython"].embed = stubs["torchsummary"].summary = None
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    before = set(sys.modules)
    try:
        from stlpips_pytorch import stlpips
    except Exception as exc:  # noqa: BLE001 - any import failure means we cannot compare with it here
        pytest.skip(f"stlpips_pytorch cannot be imported even with the stand-ins: {exc!r}")
    yield stlpips
    # forget the package that saw the stand-ins; torch's own modules that it pulled in stay (re-importing
    # torch.distributed registers its operator library twice, which fails the next test that trains)
    for name in set(sys.modules) - before:
        if name.split(".")[0] == "stlpips_pytorch":
            sys.modules.pop(name, None)


def test_st_lpips_matches_the_package(stlpips_package, faces):
    import torch

    from facefill.evaluation.perceptual import st_lpips_network, to_tensor

    reference = stlpips_package.LPIPS(net="alex", variant="shift_tolerant", verbose=False)
    x0 = to_tensor([small(faces[0], 96), small(faces[1], 96)])
    x1 = to_tensor([small(faces[0], 96)[:, ::-1].copy(), small(faces[2], 96)])
    with torch.inference_mode():
        expected = reference(x0, x1).flatten()
        got = st_lpips_network()(x0, x1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- identity (dlib)


def test_identity_same_different_and_destroyed_face(faces):
    needs("identity")
    from facefill.evaluation.identity import IdentityScorer, SAME_PERSON_DISTANCE

    truth, other = faces[0], faces[1]
    scorer = IdentityScorer()
    assert scorer.set_truth(truth)
    destroyed = truth.copy()
    destroyed[60:200, 40:220] = 128  # most of the face grey: the detector would not find it, the truth's box does
    same, different, grey = scorer.score([truth.copy(), other, destroyed])
    assert same["id_cosine"] == pytest.approx(1.0, abs=1e-6) and same["id_distance"] < 1e-6
    assert same["id_match"] == 1.0
    assert different["id_distance"] > SAME_PERSON_DISTANCE and different["id_match"] == 0.0
    assert different["id_cosine"] < 0.9
    assert grey["id_distance"] > 0.1 and np.isfinite(grey["id_distance"])
    assert not scorer.set_truth(np.full((128, 128, 3), 128, np.uint8))  # no face: skipped
    with pytest.raises(ValueError, match="no face"):
        scorer.score([truth])


# ---------------------------------------------------------------- selection and the benchmark


def test_select_families(monkeypatch):
    with pytest.raises(ValueError, match="valid: fid, kid, st_lpips, identity"):
        extras.select(["lpips"])
    with pytest.raises(TypeError):
        extras.select("fid")
    assert extras.select([]) == ([], {})
    # a missing package: skipped with the pip command by default, an error when asked for
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dlib" else real(name, *a))
    chosen, skipped = extras.select(None)
    assert "identity" not in chosen and "pip install dlib-bin==20.0.1.post1" in skipped["identity"]
    with pytest.raises(MissingDependencyError, match="pip install dlib-bin"):
        extras.select(["identity"])


def test_evaluate_with_every_family(faces, tmp_path):
    for family in extras.EXTRA_METRICS:
        needs(family)
    from PIL import Image

    from facefill.evaluation import evaluate, write_report

    data = tmp_path / "faces"
    data.mkdir()
    for k, f in enumerate(faces[:2]):
        Image.fromarray(small(f)).save(data / f"{k}.png")
    Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(data / "2.png")  # no face in this truth
    records = evaluate(["telea"], data, size=128, buckets=[(0.1, 0.2)], progress=False)
    assert records.meta["metrics"] == list(extras.EXTRA_METRICS) and records.meta["skipped_metrics"] == {}
    assert records.meta["identity_no_face"] == 1
    got = {(r["bucket"], r["metric"]): r for r in records}
    for bucket in ("10-20%", "all"):
        assert got[bucket, "fid"]["n"] == 3 and got[bucket, "fid"]["value"] > 0
        assert got[bucket, "st_lpips"]["n"] == 3 and 0 < got[bucket, "st_lpips"]["value"] < 1
        assert got[bucket, "id_distance"]["n"] == 2 and got[bucket, "kid"]["n"] == 3
        assert 0 <= got[bucket, "id_match"]["value"] <= 1 and -1 <= got[bucket, "id_cosine"]["value"] <= 1
    out = write_report(records, tmp_path / "report")
    assert json.loads((out / "metrics.json").read_text()) == list(records)
    report = (out / "report.md").read_text()
    assert "### ST-LPIPS" in report and "### LPIPS" not in report
    assert "| telea |" in report and "no face found in 1 of the 3" in report
    assert "10-20% (n=2)" in report  # the identity tables count only the images with a face
    # metrics=[]: the base metrics only
    base = evaluate(["telea"], data, size=128, buckets=[(0.1, 0.2)], progress=False, metrics=[], limit=1)
    assert {r["metric"] for r in base}.isdisjoint(extras.EXTRA_HIGHER_IS_BETTER)


def test_versus_summarises_the_targets_against_a_baseline():
    from facefill.evaluation.quality import versus

    def rec(model, bucket, metric, value):
        return {"model": model, "bucket": bucket, "metric": metric, "value": value, "n": 10}

    records = [rec("net", "10-20%", "psnr", 25.0), rec("net", "40-50%", "psnr", 20.0),
               rec("net", "10-20%", "l1", 0.02), rec("net", "40-50%", "l1", 0.05),
               rec("telea", "10-20%", "psnr", 24.0), rec("telea", "40-50%", "psnr", 18.0),
               rec("telea", "10-20%", "l1", 0.03), rec("telea", "40-50%", "l1", 0.04),
               rec("net", "40-50%", "id_match", 0.80), rec("telea", "40-50%", "id_match", 0.65),
               rec("navier_stokes", "10-20%", "psnr", 23.0), rec("navier_stokes", "40-50%", "psnr", 17.0),
               rec("telea", "all", "psnr", 21.0), rec("net", "all", "psnr", 22.5)]
    text = versus(records)
    assert text.count("\n") == 1 and "`net` vs `telea`" in text  # classical models are not summarised
    assert "**+1.50 dB**" in text and "10-20% +1.00, 40-50% +2.00" in text
    assert "**1 of 2** buckets" in text and "80.0 % vs 65.0 %** (+15.0 points)" in text
    assert versus([r for r in records if r["model"] != "telea"]) == ""


def test_versus_checks_the_hog_identity_claim_against_deepfill_v2():
    from facefill.evaluation.quality import versus

    def rec(model, bucket, metric, value):
        return {"model": model, "bucket": bucket, "metric": metric, "value": value, "n": 10}

    records = [rec(m, b, "psnr", 20.0) for m in ("hogface", "deepfill_v2", "telea") for b in ("10-20%", "40-50%")]
    records += [rec(m, b, "l1", 0.05) for m in ("hogface", "deepfill_v2", "telea") for b in ("10-20%", "40-50%")]
    records += [rec("telea", "all", "psnr", 20.0),
                rec("hogface", "10-20%", "id_cosine", 0.95), rec("deepfill_v2", "10-20%", "id_cosine", 0.96),
                rec("hogface", "40-50%", "id_cosine", 0.93), rec("deepfill_v2", "40-50%", "id_cosine", 0.91),
                rec("hogface", "40-50%", "id_match", 0.70), rec("deepfill_v2", "40-50%", "id_match", 0.60)]
    claim = [line for line in versus(records).splitlines() if line.startswith("- Identity claim")]
    assert len(claim) == 1 and "`hogface` vs `deepfill_v2`" in claim[0]
    assert "**1 of 2** buckets (10-20% 0.950 vs 0.960, 40-50% 0.930 vs 0.910)" in claim[0]
    assert "**70.0 % vs 60.0 %** (+10.0 points)" in claim[0]
    # without the identity family, or without deepfill_v2, there is nothing to claim
    assert "Identity claim" not in versus([r for r in records if not r["metric"].startswith("id_")])
    assert "Identity claim" not in versus([r for r in records if r["model"] != "deepfill_v2"])


def test_report_counts_faceless_truths_among_the_images_identity_scored(tmp_path):
    from facefill.evaluation.quality import Records, write_report

    meta = {"data_dir": "d", "images": 1000, "seed": 0, "size": 256, "buckets": ["10-20%"], "wall_s": 1.0,
            "metrics": ["identity"], "skipped_metrics": {}, "cached": 0, "extra_images": 200, "identity_no_face": 4}
    records = Records([{"model": "telea", "bucket": b, "metric": "l1", "value": 0.1, "n": 1000}
                       for b in ("10-20%", "all")], meta=meta)
    report = (write_report(records, tmp_path) / "report.md").read_text()
    assert "no face found in 4 of the 200 ground truths" in report  # identity looked at the first 200 only
