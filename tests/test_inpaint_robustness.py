"""``Inpainter.inpaint`` on awkward real-world input, with the tiny untrained DeepFill v2 (64 px, CPU).

The contract under test: image + mask -> PIL image of the input's size; every pixel outside the hole is exactly
the input's (after conversion to 8-bit RGB), alpha is kept byte-exact, empty / full masks warn, and bad input
is an ``ImageError`` that says what is wrong. The untrained network's fill is noise; only the contract matters.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image

import facefill
from facefill import imageio
from facefill.imageio import ImageError
from facefill.inpainter import NetworkInpainter

MAGENTA = (255, 0, 255)


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=-1)
    return np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


def box_hole(h: int, w: int, where: str = "centre") -> np.ndarray:
    """A rectangular hole about a third of each side (at least one pixel), in the centre or a corner."""
    hole = np.zeros((h, w), bool)
    dh, dw = max(1, h // 3), max(1, w // 3)
    if where == "centre":
        hole[(h - dh) // 2:(h - dh) // 2 + dh, (w - dw) // 2:(w - dw) // 2 + dw] = True
    else:  # bottom-right corner: the window reaches past the border and is mirrored
        hole[h - dh:, w - dw:] = True
    return hole


def assert_contract(result: Image.Image, rgb: np.ndarray, hole: np.ndarray, alpha: np.ndarray | None = None):
    """Right size and mode, outside the hole exactly ``rgb``, alpha exactly ``alpha``, hole actually filled."""
    h, w = hole.shape
    assert isinstance(result, Image.Image)
    assert result.size == (w, h)
    assert result.mode == ("RGB" if alpha is None else "RGBA")
    out = np.asarray(result)
    np.testing.assert_array_equal(out[..., :3][~hole], rgb[~hole])
    if alpha is not None:
        np.testing.assert_array_equal(out[..., 3], alpha)
    return out[..., :3]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return facefill.create_model("deepfill_v2_tiny").eval()


@pytest.fixture
def windows(monkeypatch):
    """Records the (image, hole) window given to the network on each call."""
    seen = []
    original = NetworkInpainter.predict

    @functools.wraps(original)
    def spy(self, rgb, hole, **guidance):
        seen.append((rgb.copy(), hole.copy()))
        return original(self, rgb, hole, **guidance)

    monkeypatch.setattr(NetworkInpainter, "predict", spy)
    return seen


@pytest.fixture
def holes(monkeypatch):
    """Records the boolean hole that ``inpaint`` derived from the mask."""
    seen = []
    original = NetworkInpainter.inpaint_array

    def spy(self, rgb, hole, **guidance):
        seen.append(hole.copy())
        return original(self, rgb, hole, **guidance)

    monkeypatch.setattr(NetworkInpainter, "inpaint_array", spy)
    return seen


# ------------------------------------------------------------------------------------ sizes and the crop strategy


@pytest.mark.parametrize("h,w,where", [
    (53, 37, "centre"), (37, 53, "corner"),  # odd, smaller than the model: one padded window
    (64, 64, "corner"),  # exactly the model's size
    (200, 300, "centre"), (200, 300, "corner"),  # larger: a window cropped around the hole
    (9, 65, "centre"),  # just over the model size on one side, very thin on the other
    (1, 100, "centre"), (100, 1, "corner"), (2, 70, "centre"),  # one or two pixels thick
])
def test_any_size_outside_exact(model, h, w, where):
    rgb = picture(h, w)
    hole = box_hole(h, w, where)
    rgb_in = rgb.copy()
    rgb_in[hole] = MAGENTA
    filled = assert_contract(model.inpaint(rgb_in, hole), rgb_in, hole)
    assert (filled[hole] != MAGENTA).any(), "the hole was not filled"
    np.testing.assert_array_equal(rgb_in[~hole], rgb[~hole])  # the caller's array is not modified
    assert (rgb_in[hole] == MAGENTA).all()


def test_two_far_apart_holes_on_a_large_image(model, windows):
    h, w = 500, 700
    rgb = picture(h, w, seed=3)
    hole = np.zeros((h, w), bool)
    hole[20:45, 30:70] = True  # top-left
    hole[440:490, 610:690] = True  # bottom-right, far away: its own window
    rgb[hole] = MAGENTA
    filled = assert_contract(model.inpaint(Image.fromarray(rgb), Image.fromarray(hole)), rgb, hole)
    assert (filled[20:45, 30:70] != MAGENTA).any() and (filled[440:490, 610:690] != MAGENTA).any()
    assert len(windows) == 2, "far-apart holes should each get a window, not one window over the whole image"
    for crop, crop_hole in windows:
        assert crop.shape == (64, 64, 3) and crop_hole.shape == (64, 64)
        assert 0 < crop_hole.mean() < 0.5  # each window holds one hole with context around it


def test_large_hole_on_a_large_image(model, windows):
    h, w = 300, 400  # hole ~ 250x200: its window is larger than the image height, so it is mirrored and scaled
    rgb = picture(h, w, seed=4)
    hole = np.zeros((h, w), bool)
    hole[40:240, 60:310] = True
    hole[5:12, 380:395] = True  # and a small one in a corner
    rgb[hole] = MAGENTA
    filled = assert_contract(model.inpaint(rgb, hole), rgb, hole)
    assert (filled[40:240, 60:310] != MAGENTA).mean() > 0.5
    assert len(windows) == 2 and all(c.shape == (64, 64, 3) for c, _ in windows)


def test_one_pixel_image(model):
    """Explicit choice: a 1x1 image is valid input. With its pixel as the hole it warns (no context) and still
    returns a 1x1 result; with an empty mask it warns and returns the pixel unchanged."""
    px = np.array([[[10, 20, 30]]], np.uint8)
    with pytest.warns(UserWarning, match="whole image"):
        result = model.inpaint(px, np.ones((1, 1), bool))
    assert result.size == (1, 1) and result.mode == "RGB"
    with pytest.warns(UserWarning, match="empty"):
        result = model.inpaint(px, np.zeros((1, 1), bool))
    assert np.asarray(result).tolist() == [[[10, 20, 30]]]


# ------------------------------------------------------------------------------------ empty and full masks


@pytest.mark.parametrize("with_alpha", [False, True])
def test_empty_mask_returns_input_unchanged(model, windows, with_alpha):
    rgb = picture(30, 41)
    alpha = picture(30, 41, seed=9)[..., 0] if with_alpha else None
    image = np.dstack([rgb, alpha]) if with_alpha else rgb
    mask = np.full((30, 41), 127, np.uint8)  # just under the threshold everywhere: still empty
    with pytest.warns(UserWarning, match="mask is empty"):
        result = model.inpaint(image, mask)
    np.testing.assert_array_equal(np.asarray(result), image)
    assert windows == []  # the network is not run at all


@pytest.mark.parametrize("with_alpha", [False, True])
def test_full_mask_warns_and_returns_a_result(model, with_alpha):
    rgb = picture(33, 47)
    alpha = picture(33, 47, seed=2)[..., 1] if with_alpha else None
    image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA") if with_alpha else Image.fromarray(rgb)
    with pytest.warns(UserWarning, match="whole image"):
        result = model.inpaint(image, Image.new("L", (47, 33), 255))
    out = assert_contract(result, rgb, np.ones((33, 47), bool), alpha)
    assert out.dtype == np.uint8


# ------------------------------------------------------------------------------------ masks: thresholds and kinds


def _soft_disc(h: int, w: int) -> np.ndarray:
    """An anti-aliased disc: a linear ramp from 255 inside to 0 outside over ~6 px, every grey level present."""
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot(y - h / 2, x - w / 2)
    disc = np.clip((h / 4 + 3 - r) * 255 / 6, 0, 255).round().astype(np.uint8)
    disc[0, :4] = [126, 127, 128, 129]  # the threshold's edge, whatever the disc's ramp happens to hit
    return disc


@pytest.mark.parametrize("kind", ["pil_L", "uint8", "rgb_png", "float", "zero_one_int", "bool"])
def test_mask_kinds_and_threshold(model, holes, tmp_path, kind):
    h, w = 45, 51
    grey = _soft_disc(h, w)
    expected = grey >= 128
    mask = {
        "pil_L": lambda: Image.fromarray(grey),
        "uint8": lambda: grey,
        "rgb_png": lambda: _saved(Image.fromarray(np.dstack([grey] * 3)), tmp_path / "m.png"),
        "float": lambda: grey.astype(np.float64) / 255,
        "zero_one_int": lambda: (grey >= 128).astype(np.int64),
        "bool": lambda: grey >= 128,
    }[kind]()
    rgb = picture(h, w)
    assert_contract(model.inpaint(rgb, mask), rgb, expected)
    np.testing.assert_array_equal(holes[0], expected)


def _saved(image: Image.Image, path):
    image.save(path)
    return path


def test_custom_threshold(model, holes):
    grey = _soft_disc(40, 40)
    rgb = picture(40, 40)
    assert_contract(model.inpaint(rgb, grey, threshold=0.25), rgb, grey >= 64)
    np.testing.assert_array_equal(holes[0], grey >= 64)


def test_mask_size_mismatch_is_explained(model):
    with pytest.raises(ImageError) as info:
        model.inpaint(picture(40, 60), np.ones((20, 30), bool))
    msg = str(info.value)
    assert "30x20" in msg and "60x40" in msg and "resize" in msg


def test_resize_mask_fixes_a_mismatch(model, holes):
    small = np.zeros((20, 30), np.uint8)
    small[5:10, 10:20] = 255
    rgb = picture(40, 60)
    expected = np.zeros((40, 60), bool)
    expected[10:20, 20:40] = True
    assert_contract(model.inpaint(rgb, small, resize_mask=True), rgb, expected)
    np.testing.assert_array_equal(holes[0], expected)


# ------------------------------------------------------------------------------------ image modes and files


def test_rgba_alpha_byte_exact(model):
    h, w = 37, 53
    rgb = picture(h, w)
    alpha = np.random.default_rng(5).integers(0, 256, (h, w), dtype=np.uint8)
    alpha[:, :5] = 0  # fully transparent strip, including under the hole
    hole = box_hole(h, w)
    hole[:, :8] |= True
    rgba = np.dstack([rgb, alpha])
    for image in (rgba, Image.fromarray(rgba, "RGBA")):
        assert_contract(model.inpaint(image, hole), rgb, hole, alpha)


def test_la_image(model):
    g = picture(30, 40)[..., 0]
    a = picture(30, 40, seed=1)[..., 2]
    hole = box_hole(30, 40)
    out = assert_contract(model.inpaint(Image.fromarray(np.dstack([g, a]), "LA"), hole),
                          np.repeat(g[..., None], 3, 2), hole, a)
    assert (out[~hole][:, 0] == out[~hole][:, 2]).all()


@pytest.mark.parametrize("as_array", [False, True])
def test_grayscale_image(model, as_array):
    g = picture(30, 40)[..., 0]
    hole = box_hole(30, 40, "corner")
    result = model.inpaint(g if as_array else Image.fromarray(g, "L"), hole)
    assert_contract(result, np.repeat(g[..., None], 3, 2), hole)


def test_palette_images(model, tmp_path):
    rgb = picture(30, 40)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    expected = np.asarray(pal.convert("RGB"))
    hole = box_hole(30, 40)
    assert_contract(model.inpaint(pal, hole), expected, hole)
    pal.save(tmp_path / "t.png", transparency=pal.getpixel((0, 0)))
    with_t = Image.open(tmp_path / "t.png")
    alpha = np.asarray(with_t.convert("RGBA"))[..., 3]
    assert alpha[0, 0] == 0 and alpha.max() == 255
    assert_contract(model.inpaint(tmp_path / "t.png", hole), expected, hole, alpha)


def test_16bit_png(model, tmp_path):
    u16 = (picture(30, 40).astype(np.uint32)[..., 0] * 257 + np.arange(40) * 3).clip(0, 65535).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(u16).save(path)
    hole = box_hole(30, 40)
    expected = np.round(u16 / 257).astype(np.uint8)
    assert_contract(model.inpaint(path, hole), np.repeat(expected[..., None], 3, 2), hole)


def test_cmyk_jpeg(model, tmp_path):
    path = tmp_path / "print.jpg"
    Image.fromarray(picture(30, 40)).convert("CMYK").save(path, quality=95)
    hole = box_hole(30, 40)
    expected, _ = imageio.to_rgb(path)
    assert_contract(model.inpaint(path, hole), expected, hole)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_jpeg(model, tmp_path, orientation):
    stored = picture(30, 50)  # stored 50 wide x 30 high, seen 30 wide x 50 high
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    seen, _ = imageio.to_rgb(path)
    assert seen.shape == (50, 30, 3)
    hole = box_hole(50, 30, "corner")  # the user drew the mask on the picture as they see it
    assert_contract(model.inpaint(path, hole), seen, hole)
    assert_contract(model.inpaint(imageio.read_image(path), Image.fromarray(hole)), seen, hole)
    with pytest.raises(ImageError, match="30x50.*resize"):  # a mask drawn on the stored pixels does not fit
        model.inpaint(path, np.ones((30, 50), bool))


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_icc_profile_kept(model, tmp_path, suffix):
    """The RGB values are returned as they are, so the profile that says what they mean must come with them
    (without it a Display P3 / Adobe RGB photo changes colour in colour-managed viewers)."""
    ImageCms = pytest.importorskip("PIL.ImageCms")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / f"profiled.{suffix}"
    Image.fromarray(picture(30, 40)).save(path, icc_profile=icc)
    seen, _ = imageio.to_rgb(path)
    hole = box_hole(30, 40)
    for image in (path, imageio.read_image(path)):
        result = model.inpaint(image, hole)
        assert_contract(result, seen, hole)
        assert result.info.get("icc_profile") == icc
    with pytest.warns(UserWarning, match="empty"):
        assert model.inpaint(path, np.zeros((30, 40), bool)).info.get("icc_profile") == icc  # empty mask too
    imageio.save_image(result, tmp_path / f"out.{suffix}")
    assert Image.open(tmp_path / f"out.{suffix}").info.get("icc_profile") == icc


@pytest.mark.parametrize("dtype", ["uint16", "float32", "float64"])
def test_numpy_inputs(model, dtype):
    rgb8 = picture(30, 40)
    image = {"uint16": rgb8.astype(np.uint16) * 257, "float32": rgb8.astype(np.float32) / 255,
             "float64": rgb8 / 255.0}[dtype]
    hole = box_hole(30, 40)
    assert_contract(model.inpaint(image, hole), rgb8, hole)


def test_read_inpaint_save_round_trip(model, tmp_path):
    """The command line's path: files in, atomic file out, what was written is what was returned."""
    rgba = np.dstack([picture(30, 40), picture(30, 40, seed=6)[..., 0]])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    Image.fromarray(box_hole(30, 40)).save(tmp_path / "mask.png")
    result = model.inpaint(imageio.read_image(tmp_path / "in.png"),
                           imageio.read_image(tmp_path / "mask.png", "mask"))
    imageio.save_image(result, tmp_path / "out.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), np.asarray(result))
    imageio.save_image(result, tmp_path / "out.jpg")  # JPEG cannot hold alpha: flattened, not an error
    assert Image.open(tmp_path / "out.jpg").mode == "RGB"


def test_same_input_same_output(model):
    rgb = picture(40, 45)
    hole = box_hole(40, 45)
    a = np.asarray(model.inpaint(rgb, hole))
    b = np.asarray(model.inpaint(rgb, hole))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------ rejected input (no network)


def test_bad_inputs_are_image_errors(model, windows, tmp_path):
    good = picture(10, 12)
    hole = np.ones((10, 12), bool)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    nan = good / 255.0
    nan[3, 4, 0] = np.nan
    cases = [
        ((tmp_path / "missing.jpg", hole), "does not exist"),
        ((text, hole), "not an image"),
        ((good, text), r"mask .*not an image"),
        ((good, tmp_path / "missing_mask.png"), r"mask .*does not exist"),
        ((nan, hole), "NaN"),
        ((good, np.where(hole, np.nan, 0.0)), "NaN"),
        ((np.zeros((10, 12, 2), np.uint8), hole), r"\(10, 12, 2\)"),
        ((np.zeros((2, 10, 12, 3), np.uint8), hole), "shape"),
        ((good.astype(np.float32), hole), r"\[0, 1\]"),
        ((None, hole), "PIL.Image"),
        ((good, None), "mask must be"),
    ]
    for (image, mask), message in cases:
        with pytest.raises(ImageError, match=message):
            model.inpaint(image, mask)
    assert windows == []


def test_truncated_file_is_an_image_error(model, tmp_path):
    Image.fromarray(picture(60, 80)).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:600])
    with pytest.raises(ImageError, match="truncated"):
        model.inpaint(tmp_path / "cut.jpg", np.ones((60, 80), bool))


def test_unknown_guidance_is_a_type_error(model):
    with pytest.raises(TypeError, match="does not take"):
        model.inpaint(picture(8, 8), np.ones((8, 8), bool), colour=np.zeros((8, 8, 3)))


def test_inpaint_leaves_training_mode_alone():
    torch.manual_seed(0)
    net = facefill.create_model("deepfill_v2_tiny").train()
    net.inpaint(picture(16, 16), box_hole(16, 16))
    assert net.training, "inpaint switched a model in training to eval mode for good"


# ------------------------------------------------------------------------------ what the hole hides stays unseen


@pytest.mark.parametrize("h,w", [
    (48, 40),  # smaller than the model: one window padded past the right and bottom borders
    (40, 200), (200, 40),  # thin: the window reaches past both long borders
    (60, 300),  # a window larger than the image height, mirrored and scaled down
])
def test_fill_ignores_what_the_hole_hides(model, h, w):
    """The fill is a function of the known pixels only. Where a window reaches past the border the image is
    mirrored, and the mirror image of a hole pixel shows what the hole hides: it must be hole too, not context,
    or an object removed at the border (or anywhere in a small or thin image) is copied back from its reflection."""
    rgb = picture(h, w, seed=5)
    hole = box_hole(h, w, "corner")
    other = rgb.copy()
    other[hole] = np.random.default_rng(6).integers(0, 256, (int(hole.sum()), 3))  # another object under the hole
    a = np.asarray(model.inpaint(rgb, hole, align="off"))
    b = np.asarray(model.inpaint(other, hole, align="off"))
    np.testing.assert_array_equal(a, b)


def test_aligned_window_past_the_border_hides_the_hole_content():
    """The aligned path's window (``align.Window``) reaching past the left border: the window and its hole must not
    depend on the hole's content (its mirror image past the border is hole too), and the hole's mirror image is
    hole in the window as the hole itself is."""
    from facefill.align import Window

    rgb = picture(128, 128, seed=7)
    hole = np.zeros((128, 128), bool)
    hole[40:70, 0:16] = True  # touching the left border
    other = rgb.copy()
    other[hole] = 255 - other[hole]
    window = Window.from_matrix(np.array([[0.5, 0.0, 10.0], [0.0, 0.5, 0.0]]), 64)  # image x -20..108
    assert window.box.x0 < 0
    image, window_hole = window.take_image(rgb, hole)
    other_image, other_hole = window.take_image(other, hole)
    np.testing.assert_array_equal(image, other_image)
    np.testing.assert_array_equal(window_hole, other_hole)
    # window x = (image x + 20) / 2: the hole spans x 10..17, its mirror image (x -16..-1) spans x 2..9
    assert window_hole[25:33, 3:17].all() and not window_hole[25:33, 20:].any()
