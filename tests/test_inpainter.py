"""The shared inference path: any size, crop strategy, several holes, exact known pixels, padding."""
from __future__ import annotations

from conftest import RecordingInpainter

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from facefill.guidance import to_sketch
from facefill.imageio import ImageError
from facefill.inpainter import Inpainter
from facefill.windows import KNOWN_SHARE, CropBox, crop_boxes, inside, paste, resample_known, take
from facefill.registry import create_model


Recorder = RecordingInpainter


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (300, 200), (700, 500)])
def test_any_size_exact_outside_hole(size):
    w, h = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 3: h // 2, w // 4: w // 2] = 255
    torch.manual_seed(0)
    out = np.asarray(create_model("deepfill_v2_tiny").inpaint(image, mask))
    assert out.shape == image.shape
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert not np.array_equal(out[mask > 0], image[mask > 0])


def test_small_image_is_padded_not_resized():
    model = Recorder(resolution=64)
    image = np.full((40, 30, 3), 200, np.uint8)
    mask = np.zeros((40, 30), bool)
    mask[10:20, 10:20] = True
    out = np.asarray(model.inpaint(image, mask))
    (seen, seen_mask), = model.calls
    shape = tuple(seen.shape)
    assert shape == (1, 3, 64, 64)
    # the image sits unscaled in the top-left corner of the window (its hole zeroed: the network ignores it)
    known = ~mask
    assert torch.allclose(seen[0, :, :40, :30][:, known], torch.full((3, int(known.sum())), 200 / 127.5 - 1))
    assert seen_mask[0, 0, 10:20, 10:20].all() and seen_mask[0, 0, :40, :30].sum() == 100
    # past the border the hole is mirrored with the image: its mirror image is hole too, not context
    assert np.array_equal(seen_mask[0, 0].numpy() > 0, take(mask.astype(np.uint8), CropBox(0, 0, 64)) > 0)
    assert (out[mask] == 200).all()


def test_two_far_holes_two_windows_each_pasted_once():
    model = Recorder(resolution=64)
    image = np.zeros((400, 600, 3), np.uint8)
    image[:, :300] = 50
    image[:, 300:] = 150
    mask = np.zeros((400, 600), bool)
    mask[50:70, 50:70] = True     # in the dark half
    mask[300:320, 500:520] = True  # in the bright half
    out = np.asarray(model.inpaint(image, mask))
    assert len(model.calls) == 2 and all(tuple(c[0].shape) == (1, 3, 64, 64) for c in model.calls)
    # each hole is filled from its own window's context
    assert abs(int(out[60, 60, 0]) - 50) <= 2 and abs(int(out[310, 510, 0]) - 150) <= 2
    assert np.array_equal(out[~mask], image[~mask])


def test_large_hole_window_is_scaled_down_to_model_resolution():
    model = Recorder(resolution=64)
    image = np.full((1000, 800, 3), 90, np.uint8)
    mask = np.zeros((1000, 800), bool)
    mask[300:600, 200:500] = True
    out = np.asarray(model.inpaint(image, mask))
    (seen, seen_mask), = model.calls
    shape = tuple(seen.shape)
    assert shape == (1, 3, 64, 64)
    assert 0.05 < seen_mask.mean() < 0.5  # the 300 px hole with context fits, scaled, in 64 px
    assert (np.abs(out[mask].astype(int) - 90) <= 1).all()


def test_crop_boxes_inside_image_and_cover_holes():
    rng = np.random.default_rng(1)
    for _ in range(20):
        h, w = rng.integers(100, 900, 2)
        hole = np.zeros((h, w), bool)
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
            hole[y:y + rng.integers(5, 60), x:x + rng.integers(5, 60)] = True
        covered = np.zeros_like(hole)
        for box, group in crop_boxes(hole, 128):
            assert box.side >= min(128, max(h, w))
            if box.side <= h:
                assert 0 <= box.y0 and box.y0 + box.side <= h
            if box.side <= w:
                assert 0 <= box.x0 and box.x0 + box.side <= w
            part = inside(box, hole.shape)  # the group is a mask of the box's part inside the image
            assert group.shape == hole[part].shape and group.any()
            covered[part] |= group
        assert np.array_equal(covered, hole)


def test_crop_boxes_of_many_small_holes_on_a_large_photo_are_window_sized():
    """400 dust spots on a 12 Mpx photo: each group is a mask of its window, not of the whole image (400 image-sized
    masks took 4.8 GB and a whole-image pass each), and the groups still cover the hole exactly once."""
    h, w = 3000, 4000
    hole = np.zeros((h, w), bool)
    rng = np.random.default_rng(0)
    for y, x in zip(rng.integers(0, h - 6, 400), rng.integers(0, w - 6, 400)):
        hole[y:y + 6, x:x + 6] = True
    groups = crop_boxes(hole, 128)
    assert len(groups) > 300
    assert sum(group.nbytes for _, group in groups) < 0.05 * len(groups) * hole.nbytes
    covered = np.zeros(hole.shape, np.uint8)
    for box, group in groups:
        covered[inside(box, hole.shape)] += group
    assert np.array_equal(covered, hole)


def test_paste_copies_the_group_of_a_window_past_the_border():
    work = np.zeros((40, 50, 3), np.uint8)
    result = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    box = CropBox(-4, 30, 32)  # reaches past the top and the right border
    hole = np.zeros((40, 50), bool)
    hole[2:6, 40:45] = True
    paste(work, result, box, hole[inside(box, hole.shape)])
    assert np.array_equal(work.any(2), hole)
    assert np.array_equal(work[2:6, 40:45], result[6:10, 10:15])  # window row = image row + 4, col = col - 30


def _halve(a):
    return cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)


def test_resample_known_averages_the_known_pixels_only():
    """Halving: each window pixel averages 2x2 image pixels. One with a hole pixel among them keeps the mean of its
    three known pixels (not turned hole, not tinted by what the hole hides); one with three hole pixels is hole."""
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0:2, 0:2] = [[[10, 20, 30], [30, 40, 50]], [[50, 60, 70], [250, 250, 250]]]
    rgb[2:4, 2:4] = 200
    hole = np.zeros((4, 4), bool)
    hole[1, 1] = True  # one of four: known share 0.75
    hole[2:4, 2:4] = True
    hole[2, 2] = False  # three of four: known share 0.25 < KNOWN_SHARE
    window, window_hole = resample_known(rgb, hole, _halve)
    assert window.shape == (2, 2, 3) and window_hole.dtype == bool
    assert np.array_equal(window_hole, [[False, False], [False, True]])
    assert np.array_equal(window[0, 0], [30, 40, 50])  # (10+30+50)/3, ... : the 250 under the hole plays no part
    assert np.array_equal(window[1, 1], [0, 0, 0])  # hole pixels are zero
    assert 0.25 < KNOWN_SHARE <= 0.75


def test_resample_known_does_not_depend_on_what_the_hole_hides():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    hole = np.zeros((96, 96), bool)
    hole[20:61, 13:50] = True
    other = rgb.copy()
    other[hole] = 255 - other[hole]
    a, a_hole = resample_known(rgb, hole, _halve)
    b, b_hole = resample_known(other, hole, _halve)
    assert np.array_equal(a, b) and np.array_equal(a_hole, b_hole)
    # the window hole is the image hole at window scale: no more than a pixel's rounding at its edge
    scaled = _halve(hole.astype(np.float32)) > 0.5
    assert (a_hole != scaled).sum() <= 2 * (a_hole.shape[0] + a_hole.shape[1])
    assert a_hole[10:30, 7:24].all() and not a_hole[:9].any()
    # away from the hole, the window is the plain area reduction (up to rounding)
    assert np.abs(a[40:].astype(int) - _halve(rgb)[40:]).max() <= 1


def test_guidance_not_accepted_by_plain_model():
    with pytest.raises(TypeError, match="does not take"):
        create_model("deepfill_v2_tiny").inpaint(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool),
                                                 sketch=np.zeros((8, 8)))
    # None means "not given", for any model
    create_model("deepfill_v2_tiny").inpaint(np.zeros((48, 64, 3), np.uint8), _hole(), sketch=None)


class _Guided(Inpainter):
    """Takes sketch and colour; records the arrays ``inpaint_array`` is given."""

    inputs = ("image", "mask", "sketch", "color")

    def __init__(self):
        self.calls = []

    def inpaint_array(self, rgb, hole, **guidance):
        self.calls.append(guidance)
        return rgb


def _hole(h: int = 48, w: int = 64) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[12:24, 16:32] = 255
    return m


def test_inpaint_converts_drawings_for_every_model():
    model = _Guided()
    layer = np.zeros((48, 64, 4), np.uint8)
    layer[16, 10:40] = (20, 20, 20, 255)  # dark lines on a transparent layer: the alpha is the line
    model.inpaint(np.zeros((48, 64, 3), np.uint8), _hole(), sketch=Image.fromarray(layer, "RGBA"), color=None)
    got = model.calls[-1]
    assert set(got) == {"sketch"}  # None: not given
    assert got["sketch"].dtype == np.float32 and got["sketch"].shape == (48, 64)
    assert got["sketch"][16, 10:40].min() == 1 and got["sketch"].sum() == 30


def test_resize_mask_resizes_drawings_too():
    model = _Guided()
    image = np.zeros((48, 64, 3), np.uint8)
    half = np.zeros((24, 32), np.uint8)
    half[10, 4:28] = 255
    with pytest.raises(ImageError, match="sketch is 32x24 but the image is 64x48"):
        model.inpaint(image, _hole(), sketch=half)
    double = np.zeros((96, 128, 3), np.uint8)
    double[40:42, 80:81] = (200, 100, 0)  # half of a 2x2 block
    model.inpaint(image, _hole(), sketch=half, color=double, resize_mask=True)
    got = model.calls[-1]
    enlarged = np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)  # nearest neighbour when enlarging
    assert np.array_equal(got["sketch"], to_sketch(enlarged, (64, 48)))
    assert got["color"].shape == (48, 64, 3)
    assert np.allclose(got["color"][20, 40], np.array([100, 50, 0]) / 255)  # area average when shrinking
    assert got["color"].sum() == got["color"][20, 40].sum()


def test_sketch_deepfill_takes_a_pil_sketch():
    torch.manual_seed(0)
    model = create_model("deepfill_v2_tiny", sketch=True)
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = _hole()
    sketch = np.full((48, 64), 255, np.uint8)
    sketch[14:22, 24] = 0  # dark lines on white paper
    given = []
    predict = model.predict
    model.predict = lambda rgb, hole, **guidance: given.append(guidance) or predict(rgb, hole, **guidance)
    guided = np.asarray(model.inpaint(image, mask, sketch=Image.fromarray(sketch), align="off"))
    assert guided.shape == image.shape and np.array_equal(guided[mask == 0], image[mask == 0])
    window = given[-1]["sketch"]  # the 64 px window of the 64x48 image (mirrored rows below it)
    assert window.dtype == np.float32 and window.shape == (64, 64)
    assert window[14:22, 24].min() == 1 and window[:48].sum() == 8
    model.inpaint(image, mask, align="off")  # without a sketch: no lines (zeros), not an error
    assert given[-1] == {}


def test_frame_sets_the_generic_window_size():
    """Weights trained on 256-px crops scaled to 64 see a 256-px face through a 256-px window scaled to 64."""
    model = Recorder(resolution=64)
    model.frame = 256
    image = np.full((256, 256, 3), 120, np.uint8)
    image[:128] = 30
    mask = np.zeros((256, 256), bool)
    mask[100:120, 100:130] = True
    model.inpaint(image, mask)
    (seen, seen_mask), = model.calls
    shape = tuple(seen.shape)
    assert shape == (1, 3, 64, 64)
    assert abs(seen_mask.float().mean().item() - mask.mean()) < 0.01  # the whole image, scaled by 1/4
    assert torch.allclose(seen[0, 0, 5, 5], torch.tensor(30 / 127.5 - 1), atol=1e-3)


def test_bf16_inference_is_close_to_fp32_and_keeps_known_pixels(tiny_weights, monkeypatch):
    """amp="bf16" runs the network under bf16 autocast: nearly the fp32 result, known pixels still exact;
    "auto" follows the CPU's native bf16 support; an unknown setting is refused."""
    import facefill
    from facefill import precision

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (80, 72, 3), dtype=np.uint8)
    mask = np.zeros((80, 72), np.uint8)
    mask[20:50, 10:40] = 255
    fp32 = np.asarray(facefill.load(str(tiny_weights), amp="off").inpaint(image, mask)).astype(int)
    calls = []
    real = torch.autocast

    def spy(device_type, dtype=None, enabled=True, **kw):
        calls.append((dtype, enabled))
        return real(device_type, dtype=dtype, enabled=enabled, **kw)

    monkeypatch.setattr(precision.torch, "autocast", spy)
    bf16 = np.asarray(facefill.load(str(tiny_weights), amp="bf16").inpaint(image, mask)).astype(int)
    # bf16 wherever autocast is on (contextual attention's matching turns it off for fp32 islands)
    assert (torch.bfloat16, True) in calls and all(c == (torch.bfloat16, True) for c in calls if c[1])
    assert np.array_equal(bf16[mask == 0], image[mask == 0])
    assert np.abs(bf16 - fp32)[mask > 0].mean() < 3 and not np.array_equal(bf16[mask > 0], image[mask > 0])
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    calls.clear()
    facefill.load(str(tiny_weights)).inpaint(image, mask)
    assert calls and all(not enabled for _, enabled in calls)
    with pytest.raises(ValueError, match="amp must be one of"):
        facefill.load(str(tiny_weights), amp="fp16")


@pytest.mark.parametrize("flags, speedup, expected", [("avx2", 5.0, False), ("avx512_bf16", 2.0, True),
                                                       ("amx_bf16", 2.0, True), ("avx512_bf16", 0.8, False)])
def test_auto_precision_is_measured_on_cpus_with_native_bf16(monkeypatch, flags, speedup, expected):
    """Native bf16 is necessary, not sufficient: "auto" takes bf16 on a CPU only where it measures faster (an
    AVX512-BF16 Xeon without AMX ran the nets ~1.3x slower in bf16); without the flag nothing is timed."""
    from facefill import precision

    timed = []
    monkeypatch.setattr(precision, "cpu_flags", lambda: f"flags : fpu sse2 {flags}")
    monkeypatch.setattr(precision, "bf16_speedup", lambda: timed.append(1) or speedup)
    precision.cpu_has_fast_bf16.cache_clear()
    try:
        assert precision.use_bf16("auto", torch.device("cpu")) is expected
        assert precision.use_bf16("auto", torch.device("cpu")) is expected and len(timed) == (flags != "avx2")
        assert precision.use_bf16("bf16", torch.device("cpu")) and not precision.use_bf16("off", torch.device("cpu"))
    finally:
        precision.cpu_has_fast_bf16.cache_clear()


def test_bf16_speedup_is_a_measurement():
    from facefill.precision import bf16_speedup

    assert 0 < bf16_speedup() < 100
