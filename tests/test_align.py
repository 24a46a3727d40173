"""Face alignment for photos in the wild (facefill.align): template, similarity, warps, and the aligned path of
the shared inference code (several faces, a face at the border, a rotated face, no face)."""
from __future__ import annotations

from conftest import RecordingInpainter

import importlib.util
import logging
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from facefill import align

from conftest import shared_folder

HAS_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models")
needs_dlib = pytest.mark.skipif(not HAS_DLIB, reason="dlib is not installed: pip install " + align.PIP)


Recorder = RecordingInpainter


def _portrait(index: int, side: int) -> np.ndarray:
    """A CelebA-HQ portrait (face centred, upright) scaled to ``side`` px."""
    files = sorted(shared_folder("celebahq1024").glob("*.jpg"))
    im = Image.open(files[index]).convert("RGB").resize((side, side), Image.BOX)
    return np.asarray(im)


def _mouth_hole(shape, x0, y0, side) -> np.ndarray:
    """A hole over the mouth of a CelebA-HQ portrait of ``side`` px placed at ``(x0, y0)`` (mouth at ~(0.5, 0.74))."""
    hole = np.zeros(shape, bool)
    cx, cy, r = x0 + 0.5 * side, y0 + 0.74 * side, 0.09 * side
    hole[int(cy - r / 2):int(cy + r / 2), int(cx - r):int(cx + r)] = True
    return hole


def _similarity(angle: float, scale: float, shift) -> np.ndarray:
    m = cv2.getRotationMatrix2D((0.0, 0.0), angle, scale)
    m[:, 2] = shift
    return m


# ----------------------------------------------------------------------------------------------------- geometry


def test_estimate_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (68, 2))
    truth = _similarity(-17.0, 0.43, (31.0, -12.5))
    dst = src @ truth[:, :2].T + truth[:, 2]
    m = align.estimate_similarity(src, dst)
    assert np.allclose(m, truth, atol=1e-9)
    angle, scale = align.similarity_params(m)
    assert angle == pytest.approx(-17.0) and scale == pytest.approx(0.43)
    # a point with zero weight does not pull the fit
    dst[0] += 1000
    weights = np.ones(68)
    weights[0] = 0
    assert np.allclose(align.estimate_similarity(src, dst, weights), truth, atol=1e-9)


@pytest.mark.parametrize("angle,frame_px", [(20.0, 256), (-35.0, 300), (10.0, 520)])
def test_warp_round_trip(angle, frame_px):
    """take (image -> aligned window) then put_back (window -> image) returns the input inside the frame, within
    interpolation error; frames larger than the window are reduced first, so the image is smooth there."""
    from facefill.demo import demo_image

    image = cv2.resize(np.asarray(demo_image()), (800, 800), interpolation=cv2.INTER_CUBIC)
    if frame_px > 256:
        image = cv2.GaussianBlur(image, (0, 0), frame_px / 256 * 1.5)
    centre = np.array([400.0, 380.0])
    # image -> frame: rotate by `angle`, scale 256 / frame_px, frame centre at the image point `centre`
    m = _similarity(angle, 256 / frame_px, (0, 0))
    m[:, 2] = 127.5 - m[:, :2] @ centre
    face = align.Face(np.zeros((68, 2)), m, "test")
    window = align.Window.of(face, 256)
    assert face.angle == pytest.approx(angle) and face.size == pytest.approx(frame_px)
    back = window.put_back(window.take(image))
    b = window.box
    region = image[b.y0:b.y0 + b.side, b.x0:b.x0 + b.side]
    ys, xs = np.mgrid[b.y0:b.y0 + b.side, b.x0:b.x0 + b.side]
    uv = np.stack([xs.ravel(), ys.ravel()], 1) @ m[:, :2].T + m[:, 2]
    inside = ((uv > 4) & (uv < 251)).all(1).reshape(xs.shape)
    err = np.abs(back.astype(float) - region)[inside]
    assert err.mean() < 2.0, err.mean()
    assert np.percentile(err, 99) < 15


# ----------------------------------------------------------------------------------------------------- template


def test_stored_template_describes_its_measurement():
    meta = align._template_file()
    pts = align.template()
    assert pts.shape == (68, 2) and meta["frame"] == align.FRAME
    assert meta["images_used"] >= 2000 and 0 < meta["detection_rate"] <= 1
    assert meta["faces_detected"] == pytest.approx(meta["detection_rate"] * meta["images_used"], abs=1)
    # symmetric (the mean over faces and their mirror images): eyes level, nose tip on the centre line
    assert pts[36, 1] == pytest.approx(pts[45, 1]) and pts[30, 0] == pytest.approx(127.5)
    # the training crops are tight: eyes in the upper half, chin near the bottom
    assert pts[36:48, 1].mean() < 128 and pts[8, 1] > 200


@needs_dlib
def test_template_estimation_on_real_faces_matches_the_stored_template():
    folder = shared_folder("celeba256", "train")
    measured = align.build_template(folder, limit=40, seed=123, progress=False)
    assert measured["faces_detected"] >= 25
    diff = np.linalg.norm(np.array(measured["points"]) - align.template(), axis=1)
    assert diff.mean() < 3.0, diff.mean()  # px in the 256 frame
    # an aligned (held-out) crop is its own frame: the aligning similarity is close to the identity
    files = sorted(shared_folder("celeba256", "test").glob("*.jpg"))
    found = []
    for k in np.random.default_rng(0).choice(len(files), 12, replace=False):
        test = np.asarray(Image.open(files[k]).convert("RGB"))
        found += align.detect_faces(test, np.zeros(test.shape[:2], bool))[:1]
    assert len(found) >= 6  # many crops are profiles, which the frontal detector does not find
    for face in found:
        angle, scale = align.similarity_params(face.matrix)
        assert abs(angle) < 8 and 0.85 < scale < 1.15 and np.abs(face.centre - 127.5).max() < 20


# ----------------------------------------------------------------------------------------------------- inpainting


def test_no_face_takes_the_generic_path(caplog):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 3)
    mask = np.zeros((300, 400), np.uint8)
    mask[100:140, 150:230] = 255
    model = Recorder()
    off = np.asarray(model.inpaint(image, mask, align="off"))
    n_off = len(model.calls)
    with caplog.at_level(logging.INFO, logger="facefill"):
        auto = np.asarray(model.inpaint(image, mask))  # align="auto" is the default
    assert np.array_equal(auto, off) and len(model.calls) == 2 * n_off
    if HAS_DLIB:
        assert "no face touches a hole" in caplog.text
        with pytest.raises(align.FaceNotFoundError, match="align='auto'"):
            model.inpaint(image, mask, align="face")
    with pytest.raises(ValueError, match="align must be one of"):
        model.inpaint(image, mask, align="yes")


def test_without_dlib_auto_warns_once_and_face_raises(monkeypatch):
    from facefill._optional import MissingDependencyError

    def missing():
        raise MissingDependencyError("face alignment needs the package 'dlib', which is not installed: pip install x")

    monkeypatch.setattr(align, "dlib_models", missing)
    monkeypatch.setattr(align, "_warned_missing", False)
    image = np.full((100, 100, 3), 90, np.uint8)
    mask = np.zeros((100, 100), np.uint8)
    mask[40:60, 40:60] = 1
    model = Recorder()
    with pytest.warns(UserWarning, match="without face alignment"):
        model.inpaint(image, mask)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.inpaint(image, mask)  # once is enough
    with pytest.raises(MissingDependencyError):
        model.inpaint(image, mask, align="face")


def test_classical_models_ignore_align(caplog):
    import facefill

    image = np.full((64, 64, 3), 100, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:30, 20:30] = 1
    with caplog.at_level(logging.INFO, logger="facefill"):
        out = facefill.load("telea").inpaint(image, mask, align="face")
    assert "ignored" in caplog.text and np.asarray(out).shape == image.shape


@needs_dlib
def test_two_faces_each_hole_in_its_own_frame():
    a, b = _portrait(0, 440), _portrait(5, 300)
    canvas = np.full((560, 900, 3), 200, np.uint8)
    canvas[60:500, 30:470] = a
    canvas[150:450, 560:860] = b
    hole_a = _mouth_hole(canvas.shape[:2], 30, 60, 440)
    hole_b = _mouth_hole(canvas.shape[:2], 560, 150, 300)
    hole_bg = np.zeros_like(hole_a)
    hole_bg[520:545, 480:540] = True  # background, below both faces
    hole = hole_a | hole_b | hole_bg
    pairs = align.plan(canvas, hole, 64)
    assert len(pairs) == 2
    parts = sorted((p for _, p in pairs), key=lambda p: np.nonzero(p)[1].mean())
    assert np.array_equal(parts[0], hole_a) and np.array_equal(parts[1], hole_b)
    sizes = sorted(w.box.side for w, _ in pairs)
    assert sizes[0] < sizes[1]  # the smaller face has the smaller frame
    model = Recorder()
    with align.decisions() as notes:
        out = np.asarray(model.inpaint(canvas, hole.astype(np.uint8) * 255))
    assert sum("inpainted in its aligned 64 px frame" in n for n in notes) == 2
    assert len(model.calls) == 3  # two aligned windows, one generic crop for the background hole
    assert np.array_equal(out[~hole], canvas[~hole]) and not np.array_equal(out[hole], canvas[hole])


@needs_dlib
def test_a_face_only_a_later_pass_finds_still_gets_its_hole():
    """Two people, two holes: the first pass (hole pre-filled) finds the portrait only -- the astronaut's eyes and
    mouth are covered, the image as given shows her face -- and her hole still goes to her own frame, not to a
    generic crop."""
    from facefill.demo import demo_image, demo_mask

    astronaut, covered = np.asarray(demo_image()), np.asarray(demo_mask()) > 0
    canvas = np.full((560, 1000, 3), 200, np.uint8)
    canvas[20:532, :512] = astronaut
    canvas[80:480, 560:960] = _portrait(0, 400)
    hole = _mouth_hole(canvas.shape[:2], 560, 80, 400)
    hole[20:532, :512] |= covered
    with align.decisions() as notes:
        pairs = align.plan(canvas, hole, 128)
    assert len(pairs) == 2, notes
    left, right = sorted((p for _, p in pairs), key=lambda p: np.nonzero(p)[1].mean())
    assert not (left & right).any() and np.array_equal(left | right, hole)
    assert left[:, :512].sum() == covered.sum()


@needs_dlib
def test_face_at_the_border_pads_the_aligned_window():
    full = _portrait(1, 512)
    image = np.ascontiguousarray(full[:, 140:])  # the left part of the face is outside the photo
    hole = _mouth_hole(full.shape[:2], 0, 0, 512)[:, 140:]
    pairs = align.plan(image, hole, 64)
    assert len(pairs) == 1
    window, part = pairs[0]
    assert window.box.x0 < 0  # the frame reaches past the left border
    assert np.array_equal(part, hole)
    model = Recorder()
    out = np.asarray(model.inpaint(image, hole))
    assert np.array_equal(out[~hole], image[~hole])
    seen_image, seen_mask = model.calls[0]
    # the part of the window past the border is mirrored context (not black), where only the mirror image of the
    # hole is hole too (it shows what the hole hides)
    vs, us = np.mgrid[0:64, 0:64]
    xy = np.stack([us.ravel(), vs.ravel()], 1) @ cv2.invertAffineTransform(window.image_matrix)[:, :2].T
    outside = (xy[:, 0] + cv2.invertAffineTransform(window.image_matrix)[0, 2] < 0).reshape(64, 64)
    assert outside.mean() > 0.05
    seen_outside = seen_mask[0, 0][torch.from_numpy(outside)]
    assert 0 < seen_outside.mean() < 0.2, seen_outside.mean()  # the mouth's mirror image only
    assert seen_image[0][:, torch.from_numpy(outside)].std() > 0.05


@needs_dlib
def test_rotated_face_is_turned_upright():
    face = _portrait(2, 512)
    hole = _mouth_hole(face.shape[:2], 0, 0, 512)
    upright = align.detect_faces(face, hole)
    rot = cv2.getRotationMatrix2D((255.5, 255.5), 25, 1.0)
    turned = cv2.warpAffine(face, rot, (512, 512), borderMode=cv2.BORDER_REFLECT_101)
    turned_hole = cv2.warpAffine(hole.astype(np.uint8), rot, (512, 512), flags=cv2.INTER_NEAREST) > 0
    found = align.detect_faces(turned, turned_hole)
    assert len(upright) == 1 and len(found) == 1
    assert found[0].angle - upright[0].angle == pytest.approx(-25, abs=3)
    assert math.isclose(found[0].size, upright[0].size, rel_tol=0.08)
    # the aligned windows of both show the same upright face
    w0, w1 = align.Window.of(upright[0], 64).take(face), align.Window.of(found[0], 64).take(turned)
    assert np.abs(w0.astype(float) - w1).mean() < 20


@needs_dlib
def test_every_network_model_takes_the_aligned_path():
    """The aligned path lives in the shared inference code: every registered trainable model (tiny variants) goes
    through it, and only hole pixels change."""
    from facefill.registry import create_model, model_names

    face = _portrait(3, 320)
    hole = _mouth_hole(face.shape[:2], 0, 0, 320)
    names = [n for n in model_names() if n.endswith("_tiny")]
    assert names
    for name in names:
        torch.manual_seed(0)
        model = create_model(name)
        assert model.aligns_faces, name
        with align.decisions() as notes:
            out = np.asarray(model.inpaint(face, hole))
        assert any("inpainted in its aligned" in n for n in notes), (name, notes)
        assert np.array_equal(out[~hole], face[~hole]), name


@needs_dlib
def test_alignment_measurement_writes_report_and_readme_block(tmp_path, tiny_weights):
    from facefill.evaluation import alignment

    data = tmp_path / "portraits"  # one portrait, at 384 px to keep detection cheap
    data.mkdir()
    Image.fromarray(_portrait(0, 384)).save(data / "0.png")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- alignment:start -->\nold\n<!-- alignment:end -->\n")
    out = tmp_path / "alignment"
    alignment.main(["--model", str(tiny_weights), "--data", str(data), "--limit", "1", "-o", str(out),
                    "--readme", str(readme)])
    result = __import__("json").loads((out / "alignment.json").read_text())
    assert result["meta"]["masks"] == 3 and {c["method"] for c in result["cases"]} == set(alignment.METHODS)
    text = readme.read_text()
    assert "old" not in text and "| align=auto (face frame) |" in text and "demo_before_after.png" in text
    assert f"--limit 1 -o {out}" in text  # the command that produced it


def test_alignment_report_counts_the_portraits_skipped_for_no_face():
    from facefill.evaluation import alignment

    row = {"l1_hole": 0.1, "psnr_hole": 17.0, "id_cosine": 0.95, "id_match": 1.0, "aligned": 1.0, "ms": 10.0}
    result = {"summary": {m: row for m in alignment.METHODS},
              "by_part": {p: {m: row for m in alignment.METHODS} for p in alignment.PARTS},
              "paired": {k: {"auto_beats_off": 0.5, "auto_beats_telea": 0.5} for k in ("l1_hole", "psnr_hole")},
              "meta": {"model": "m", "resolution": 128, "images": 2, "skipped": ["c.png"], "masks": 6, "seed": 0}}
    text = alignment.report(result)
    assert "on 2 CelebA-HQ" in text and "Skipped (no face found in the truth): 1 of 3 portraits (c.png)" in text
    result["meta"]["skipped"] = []
    assert "Skipped" not in alignment.report(result)
