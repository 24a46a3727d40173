"""facefill.imageio, the one gate for pixels: every way a file or array can be wrong gives an ``ImageError`` that
says what is wrong, and every supported mode is read as the user sees it. All inputs are made here, in tmp_path."""
from __future__ import annotations

import os
import struct
import sys
import tempfile
import zlib

import numpy as np
import pytest
from PIL import Image

from facefill import imageio
from facefill.imageio import ImageError


def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 ``HxWx3`` test picture: smooth gradients plus noise (every pixel distinct-ish)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=-1)
    return np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


def quadrants(h: int, w: int) -> np.ndarray:
    """Four flat colours (red, green, blue, white clockwise from top-left) — survives JPEG, shows any rotation."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2, : w // 2] = (255, 0, 0)
    arr[: h // 2, w // 2:] = (0, 255, 0)
    arr[h // 2:, w // 2:] = (0, 0, 255)
    arr[h // 2:, : w // 2] = (255, 255, 255)
    return arr


def quadrant_means(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    m = 4  # stay away from the JPEG-blurred edges between quadrants
    cells = [arr[m:h // 2 - m, m:w // 2 - m], arr[m:h // 2 - m, w // 2 + m:-m],
             arr[h // 2 + m:-m, w // 2 + m:-m], arr[h // 2 + m:-m, m:w // 2 - m]]
    return np.array([c.reshape(-1, 3).mean(0) for c in cells])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_claiming(path, width: int, height: int) -> None:
    """A ~60-byte PNG whose IHDR claims ``width x height`` RGB: a decompression bomb without the memory."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + _chunk(b"IEND", b""))


def jpeg_with_orientation(path, arr: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(path, quality=95, exif=exif)


# ---------------------------------------------------------------------------------------------- read_image


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


def test_read_png_exact_and_independent_of_the_file(tmp_path):
    arr = picture(21, 34)
    path = tmp_path / "a.png"
    Image.fromarray(arr).save(path)
    img = imageio.read_image(path)
    path.unlink()  # fully decoded: no lazy read from a file that may be gone
    assert img.size == (34, 21)
    np.testing.assert_array_equal(np.asarray(img), arr)


def test_missing_path(tmp_path):
    path = tmp_path / "nope" / "missing.png"
    with pytest.raises(ImageError, match="does not exist") as info:
        imageio.read_image(path)
    assert "missing.png" in str(info.value)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not a file"):
        imageio.read_image(tmp_path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(path)

    def refuse(*args, **kwargs):  # simulated: chmod 000 does not stop root
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(imageio.Image, "open", refuse)
    with pytest.raises(ImageError, match="locked.png cannot be read: Permission denied"):
        imageio.read_image(path)


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n", bytes(range(256)) * 4,
                                     b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, b"\xff\xd8\xff" + b"\0" * 50])
def test_non_image_file(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        imageio.read_image(path, "image")
    msg = str(info.value)
    assert "fake.png" in msg and ("not an image" in msg or "could not be decoded" in msg)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
@pytest.mark.parametrize("keep", [0.3, 0.8])
def test_truncated_file(tmp_path, suffix, keep):
    full = tmp_path / f"full.{suffix}"
    Image.fromarray(picture(96, 128)).save(full)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError, match="truncated") as info:
        imageio.read_image(cut)
    assert "cut." in str(info.value)


def test_lazily_opened_truncated_pil_image(tmp_path):
    """A caller's ``Image.open`` defers decoding; the failure must still come out as an ImageError."""
    full = tmp_path / "full.png"
    Image.fromarray(picture(96, 128)).save(full)
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:400])
    with Image.open(cut) as lazy:
        with pytest.raises(ImageError, match="truncated"):
            imageio.to_rgb(lazy)
    with Image.open(cut) as lazy:
        with pytest.raises(ImageError, match="mask"):
            imageio.to_mask(lazy, lazy.size)


@pytest.mark.parametrize("width,height", [(20000, 20000), (9000, 9000)])
def test_decompression_bomb_refused_before_decoding(tmp_path, width, height):
    # 20000x20000 trips Pillow's own hard limit, 9000x9000 only facefill's MAX_PIXELS: both must be an ImageError
    path = tmp_path / "bomb.png"
    png_header_claiming(path, width, height)
    with pytest.raises(ImageError, match="downscale") as info:
        imageio.read_image(path)
    msg = str(info.value)
    assert "bomb.png" in msg and "pixels" in msg


def test_bomb_refused_even_when_pillow_check_is_disabled(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # what some training scripts do globally
    path = tmp_path / "bomb.png"
    png_header_claiming(path, 20000, 20000)
    with pytest.raises(ImageError, match="20000x20000"):
        imageio.read_image(path)


def test_max_pixels_applies_to_files_arrays_and_masks(tmp_path, monkeypatch):
    monkeypatch.setattr(imageio, "MAX_PIXELS", 300)
    path = tmp_path / "a.png"
    Image.fromarray(picture(20, 20)).save(path)
    with pytest.raises(ImageError, match="400 pixels, over the limit of 300"):
        imageio.read_image(path)
    with pytest.raises(ImageError, match="limit"):
        imageio.to_rgb(picture(20, 20))
    with pytest.raises(ImageError, match="limit"):
        imageio.to_rgb(Image.fromarray(picture(20, 20)))
    with pytest.raises(ImageError, match="limit"):
        imageio.to_mask(np.zeros((20, 20), bool), (20, 20))
    imageio.to_rgb(picture(15, 20))  # 300 pixels is allowed


@pytest.mark.parametrize("orientation,k", [(6, -1), (8, 1), (3, 2)])
def test_exif_orientation_applied(tmp_path, orientation, k):
    stored = quadrants(48, 80)
    path = tmp_path / "rot.jpg"
    jpeg_with_orientation(path, stored, orientation)
    img = imageio.read_image(path)
    seen = np.rot90(stored, k)  # 6: stored image turned 90 deg clockwise to display; 8: counter-clockwise
    assert img.size == (seen.shape[1], seen.shape[0])
    np.testing.assert_allclose(quadrant_means(np.asarray(img.convert("RGB"))), quadrant_means(seen), atol=12)
    # and once more through to_rgb with a path, the route Inpainter.inpaint takes
    rgb, alpha = imageio.to_rgb(path)
    assert rgb.shape == seen.shape and alpha is None


def test_exif_orientation_applied_to_mask_files_too(tmp_path):
    stored = np.zeros((30, 50), np.uint8)
    stored[:, :10] = 255  # hole along the stored left edge -> the displayed top edge for orientation 6
    path = tmp_path / "mask.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    hole = imageio.to_mask(path, (30, 50))
    assert hole.shape == (50, 30)
    assert hole[:8].all() and not hole[12:].any()


# ---------------------------------------------------------------------------------------------- to_rgb: modes


def test_rgb_pil_and_array_exact():
    arr = picture(13, 17)
    for src in (arr, Image.fromarray(arr)):
        rgb, alpha = imageio.to_rgb(src)
        assert rgb.dtype == np.uint8 and rgb.shape == (13, 17, 3) and alpha is None
        np.testing.assert_array_equal(rgb, arr)


def test_rgba_alpha_kept_byte_exact():
    arr = picture(13, 17)
    a = np.random.default_rng(1).integers(0, 256, (13, 17), dtype=np.uint8)
    rgba = np.dstack([arr, a])
    for src in (rgba, Image.fromarray(rgba, "RGBA")):
        rgb, alpha = imageio.to_rgb(src)
        np.testing.assert_array_equal(rgb, arr)
        np.testing.assert_array_equal(alpha, a)


def test_la_gray_replicated_alpha_kept():
    g = picture(9, 11)[..., 0]
    a = picture(9, 11, seed=2)[..., 1]
    rgb, alpha = imageio.to_rgb(Image.fromarray(np.dstack([g, a]), "LA"))
    np.testing.assert_array_equal(rgb, np.repeat(g[..., None], 3, 2))
    np.testing.assert_array_equal(alpha, a)


@pytest.mark.parametrize("shape", [(9, 11), (9, 11, 1)])
def test_grayscale(shape):
    g = picture(9, 11)[..., 0]
    for src in (g.reshape(shape), Image.fromarray(g, "L")):
        rgb, alpha = imageio.to_rgb(src)
        assert alpha is None
        np.testing.assert_array_equal(rgb, np.repeat(g[..., None], 3, 2))


def test_bilevel_mode_1():
    bits = np.zeros((6, 8), bool)
    bits[2:4, 3:6] = True
    rgb, _ = imageio.to_rgb(Image.fromarray(bits))
    np.testing.assert_array_equal(rgb[..., 0], bits * 255)


def test_16bit_png_scaled_to_8bit(tmp_path):
    u16 = np.linspace(0, 65535, 40 * 30).round().astype(np.uint16).reshape(30, 40)
    u16[0, :4] = [0, 128, 129, 65535]  # 128/257 rounds down, 129/257 up
    path = tmp_path / "deep.png"
    Image.fromarray(u16).save(path)
    img = imageio.read_image(path)
    assert img.mode.startswith("I")  # really 16-bit on disk, not already 8-bit
    rgb, alpha = imageio.to_rgb(img)
    expected = np.round(u16.astype(np.float64) / 257).astype(np.uint8)
    assert alpha is None
    np.testing.assert_array_equal(rgb[..., 0], expected)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    assert rgb[0, :4, 0].tolist() == [0, 0, 1, 255]


def test_16bit_png_with_small_values_not_mistaken_for_8bit(tmp_path):
    u16 = np.full((8, 8), 200, np.uint16)  # a very dark 16-bit image: must stay dark, not become 200/255
    path = tmp_path / "dark.png"
    Image.fromarray(u16).save(path)
    rgb, _ = imageio.to_rgb(path)
    assert rgb.max() == 1


def test_float_mode_f():
    f = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    rgb, _ = imageio.to_rgb(Image.fromarray(f, "F"))
    np.testing.assert_array_equal(rgb[..., 1], np.round(f * 255).astype(np.uint8))


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "print.jpg"
    cmyk = Image.new("CMYK", (40, 30), (0, 255, 255, 0))  # no cyan, full magenta + yellow = red
    cmyk.paste((0, 0, 0, 255), (20, 0, 40, 30))  # right half: full black
    cmyk.save(path, quality=95)
    img = imageio.read_image(path)
    assert img.mode == "CMYK"
    rgb, alpha = imageio.to_rgb(img)
    assert rgb.shape == (30, 40, 3) and alpha is None
    np.testing.assert_allclose(rgb[5:25, 2:16].reshape(-1, 3).mean(0), [255, 0, 0], atol=12)
    np.testing.assert_allclose(rgb[5:25, 24:38].reshape(-1, 3).mean(0), [0, 0, 0], atol=12)


def test_palette_without_transparency(tmp_path):
    arr = quadrants(10, 12)
    path = tmp_path / "pal.png"
    Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    img = imageio.read_image(path)
    assert img.mode == "P" and "transparency" not in img.info
    rgb, alpha = imageio.to_rgb(img)
    assert alpha is None
    np.testing.assert_array_equal(rgb, arr)


@pytest.mark.parametrize("suffix", ["png", "gif"])
def test_palette_with_transparency(tmp_path, suffix):
    arr = quadrants(10, 12)
    pal = Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    clear = pal.getpixel((0, 0))  # the red quadrant's index becomes transparent
    path = tmp_path / f"pal.{suffix}"
    pal.save(path, transparency=clear)
    img = imageio.read_image(path)
    assert img.mode == "P" and "transparency" in img.info
    rgb, alpha = imageio.to_rgb(img)
    assert alpha is not None
    expected_alpha = np.where((arr == (255, 0, 0)).all(-1), 0, 255)
    np.testing.assert_array_equal(alpha, expected_alpha)
    np.testing.assert_array_equal(rgb[alpha > 0], arr[alpha > 0])


def test_rgb_png_colour_key_is_alpha(tmp_path):
    arr = picture(6, 7)
    arr[0, 0] = (1, 2, 3)
    path = tmp_path / "key.png"
    Image.fromarray(arr).save(path, transparency=(1, 2, 3))
    rgb, alpha = imageio.to_rgb(path)
    assert alpha is not None and alpha[0, 0] == 0 and (alpha.ravel()[1:] == 255).all()
    np.testing.assert_array_equal(rgb, arr)


# ---------------------------------------------------------------------------------------------- to_rgb: arrays


def test_uint16_array_scaled():
    u16 = np.array([[[0, 257, 65535], [128, 129, 32896]]], np.uint16)
    rgb, _ = imageio.to_rgb(u16)
    assert rgb.tolist() == [[[0, 1, 255], [0, 1, 128]]]


def test_float_array_in_unit_range():
    f = np.array([[[0.0, 0.5, 1.0], [0.2, 1 / 255, 254.6 / 255]]], np.float64)
    rgb, _ = imageio.to_rgb(f)
    assert rgb.tolist() == [[[0, 128, 255], [51, 1, 255]]]
    rgb32, _ = imageio.to_rgb(f.astype(np.float32))
    np.testing.assert_array_equal(rgb32, rgb)


def test_float_rounding_slack_is_tolerated():
    rgb, _ = imageio.to_rgb(np.full((2, 2, 3), 1.0 + 1e-7))
    assert (rgb == 255).all()


def test_bool_and_int_arrays():
    b = np.zeros((3, 4), bool)
    b[1, 2] = True
    rgb, _ = imageio.to_rgb(b)
    assert rgb[1, 2].tolist() == [255] * 3 and rgb.sum() == 3 * 255
    ints = picture(5, 6).astype(np.int64)
    np.testing.assert_array_equal(imageio.to_rgb(ints)[0], ints)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_array(bad):
    arr = np.full((5, 5, 3), 0.5)
    arr[2, 3, 1] = bad
    with pytest.raises(ImageError, match="NaN or infinite"):
        imageio.to_rgb(arr)


def test_float_array_out_of_range_is_refused_not_clipped():
    with pytest.raises(ImageError, match=r"\[0, 1\].*255"):
        imageio.to_rgb(picture(5, 5).astype(np.float32))  # 0..255 floats: a common slip
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        imageio.to_rgb(np.full((5, 5), -0.5))


def test_negative_or_huge_int_array_refused():
    with pytest.raises(ImageError, match="0..255"):
        imageio.to_rgb(np.full((4, 4), -3, np.int32))
    with pytest.raises(ImageError, match="0..65535"):
        imageio.to_rgb(np.full((4, 4), 70000, np.int64))


@pytest.mark.parametrize("shape", [(10,), (4, 5, 2), (4, 5, 5), (2, 4, 5, 3), (0, 5, 3), (5, 0)])
def test_wrong_array_shapes(shape):
    with pytest.raises(ImageError) as info:
        imageio.to_rgb(np.zeros(shape, np.uint8))
    msg = str(info.value)
    assert str(shape) in msg or "empty" in msg


@pytest.mark.parametrize("dtype", [np.complex64, object])
def test_unsupported_dtype(dtype):
    with pytest.raises(ImageError, match="dtype"):
        imageio.to_rgb(np.zeros((4, 4, 3), dtype))


@pytest.mark.parametrize("bad", [None, [[1, 2], [3, 4]], 3.5, b"bytes"])
def test_not_an_image_object(bad):
    with pytest.raises(ImageError, match="PIL.Image, a NumPy array or a path"):
        imageio.to_rgb(bad)


# ---------------------------------------------------------------------------------------------- to_mask


def test_threshold_is_128_of_255():
    values = np.array([[0, 1, 127, 128, 129, 254, 255]], np.uint8)
    expected = [[False, False, False, True, True, True, True]]
    assert imageio.to_mask(values, (7, 1)).tolist() == expected
    assert imageio.to_mask(Image.fromarray(values, "L"), (7, 1)).tolist() == expected


def test_anti_aliased_mask_exact_threshold():
    ramp = np.tile(np.arange(256, dtype=np.uint8), (3, 1))
    hole = imageio.to_mask(Image.fromarray(ramp), (256, 3))
    np.testing.assert_array_equal(hole, ramp >= 128)


def test_custom_threshold():
    values = np.array([[63, 64, 200]], np.uint8)
    assert imageio.to_mask(values, (3, 1), threshold=0.25).tolist() == [[False, True, True]]
    assert imageio.to_mask(values, (3, 1), threshold=1.0).tolist() == [[False, False, False]]
    assert imageio.to_mask(np.array([[255]], np.uint8), (1, 1), threshold=1.0).tolist() == [[True]]


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan")])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        imageio.to_mask(np.zeros((2, 2), bool), (2, 2), threshold=threshold)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.uint16, np.int32])
def test_zero_one_integer_masks(dtype):
    m = np.zeros((4, 6), dtype)
    m[1:3, 2:5] = 1
    np.testing.assert_array_equal(imageio.to_mask(m, (6, 4)), m.astype(bool))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_zero_one_mask_saved_as_an_image(tmp_path, dtype):
    """Image.fromarray(mask.astype(uint8)).save(...) of a 0/1 mask is common: 1 = hole, as in the array."""
    m = np.zeros((4, 6), dtype)
    m[1:3, 2:5] = 1
    Image.fromarray(m).save(tmp_path / "m.png")
    for mask in (Image.fromarray(m), tmp_path / "m.png"):
        np.testing.assert_array_equal(imageio.to_mask(mask, (6, 4)), m.astype(bool))
    soft = np.array([[0, 1, 2, 200]], np.uint8)  # values beyond 1: the full-range reading, 1 and 2 are no hole
    np.testing.assert_array_equal(imageio.to_mask(Image.fromarray(soft), (4, 1)), [[False, False, False, True]])


def test_bool_mask():
    m = np.zeros((4, 6), bool)
    m[0, 0] = m[3, 5] = True
    np.testing.assert_array_equal(imageio.to_mask(m, (6, 4)), m)


def test_float_mask():
    m = np.array([[0.0, 0.49, 0.5, 0.51, 1.0]], np.float32)
    assert imageio.to_mask(m, (5, 1)).tolist() == [[False, False, True, True, True]]


def test_float_mask_out_of_range_refused():
    with pytest.raises(ImageError, match=r"mask float array must have values in \[0, 1\]"):
        imageio.to_mask(np.array([[0.0, 255.0]]), (2, 1))


def test_nan_mask():
    m = np.zeros((3, 3), np.float32)
    m[1, 1] = np.nan
    with pytest.raises(ImageError, match="mask array contains NaN"):
        imageio.to_mask(m, (3, 3))


def test_uint16_mask_and_16bit_png_mask(tmp_path):
    m = np.zeros((5, 7), np.uint16)
    m[2, 3], m[2, 4], m[0, 0] = 65535, 32896, 32639  # 32896/65535 = 128/255 -> hole; 32639 = 127/255 -> not
    expected = np.zeros((5, 7), bool)
    expected[2, 3] = expected[2, 4] = True
    np.testing.assert_array_equal(imageio.to_mask(m, (7, 5)), expected)
    path = tmp_path / "m16.png"
    Image.fromarray(m).save(path)
    np.testing.assert_array_equal(imageio.to_mask(path, (7, 5)), expected)


def test_colour_mask_uses_luminance():
    m = np.zeros((1, 4, 3), np.uint8)
    m[0, 0] = (255, 255, 255)  # white: hole
    m[0, 1] = (255, 0, 0)  # pure red is dark (luma 76): not a hole
    m[0, 2] = (0, 255, 0)  # pure green is bright (luma 150): hole
    for src in (m, Image.fromarray(m)):
        assert imageio.to_mask(src, (4, 1)).tolist() == [[True, False, True, False]]


def test_mask_alpha_is_ignored_as_documented():
    m = np.zeros((1, 2, 4), np.uint8)
    m[0, 0] = (255, 255, 255, 0)
    m[0, 1] = (0, 0, 0, 255)
    for src in (m, Image.fromarray(m, "RGBA")):
        assert imageio.to_mask(src, (2, 1)).tolist() == [[True, False]]


def test_mode_1_and_palette_masks():
    bits = np.zeros((4, 5), bool)
    bits[1:3, 1:4] = True
    np.testing.assert_array_equal(imageio.to_mask(Image.fromarray(bits), (5, 4)), bits)
    pal = Image.fromarray((bits * 255).astype(np.uint8)).convert("P")
    np.testing.assert_array_equal(imageio.to_mask(pal, (5, 4)), bits)


def test_mask_size_mismatch_message():
    with pytest.raises(ImageError) as info:
        imageio.to_mask(np.zeros((30, 40), bool), (50, 60))
    msg = str(info.value)
    assert "40x30" in msg and "50x60" in msg and "resize" in msg


def test_mask_resize_nearest():
    small = np.zeros((4, 6), np.uint8)
    small[1, 2] = 255
    hole = imageio.to_mask(small, (12, 8), resize=True)
    expected = np.zeros((8, 12), bool)
    expected[2:4, 4:6] = True
    np.testing.assert_array_equal(hole, expected)
    # nearest, not interpolated: a just-over-threshold pixel stays a whole block, not a shrunken blur
    soft = np.array([[128, 0], [0, 0]], np.uint8)
    np.testing.assert_array_equal(imageio.to_mask(soft, (6, 6), resize=True), np.kron(soft >= 128, np.ones((3, 3))))
    # a transposed mask, as from a file whose EXIF rotation was not applied, is also resized on request
    assert imageio.to_mask(np.ones((8, 12), bool), (8, 12), resize=True).shape == (12, 8)


def test_mask_file_that_is_not_an_image(tmp_path):
    path = tmp_path / "mask.png"
    path.write_text("not a mask")
    with pytest.raises(ImageError, match="mask .*mask.png is not an image"):
        imageio.to_mask(path, (4, 4))


def test_mask_missing_path(tmp_path):
    with pytest.raises(ImageError, match="mask .*does not exist"):
        imageio.to_mask(str(tmp_path / "missing.png"), (4, 4))


@pytest.mark.parametrize("bad", [None, [[0, 1]], "".join])
def test_mask_not_an_image_object(bad):
    with pytest.raises(ImageError, match="mask must be a PIL.Image"):
        imageio.to_mask(bad, (2, 1))


@pytest.mark.parametrize("shape", [(4,), (4, 5, 2), (1, 4, 5, 1), (0, 5)])
def test_mask_wrong_shape(shape):
    with pytest.raises(ImageError, match="mask"):
        imageio.to_mask(np.zeros(shape, np.uint8), (5, 4))


# ---------------------------------------------------------------------------------------------- to_pil / save


def test_to_pil_modes():
    arr = picture(5, 6)
    assert imageio.to_pil(arr).mode == "RGB"
    img = imageio.to_pil(arr, arr[..., 0])
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(img)[..., 3], arr[..., 0])


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_save_png_round_trip(tmp_path, mode):
    arr = picture(11, 13) if mode == "RGB" else np.dstack([picture(11, 13), picture(11, 13, 3)[..., 0]])
    out = imageio.save_image(Image.fromarray(arr, mode), tmp_path / "out.png")
    assert out == tmp_path / "out.png"
    np.testing.assert_array_equal(np.asarray(imageio.read_image(out)), arr)
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left over


def test_save_jpeg_flattens_alpha_on_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, 8:, 3] = 0  # right half transparent black -> white
    imageio.save_image(Image.fromarray(rgba, "RGBA"), tmp_path / "o.jpg")
    back = np.asarray(Image.open(tmp_path / "o.jpg").convert("RGB")).astype(int)
    assert back[:, :6].max() < 10 and back[:, 10:].min() > 245


@pytest.mark.parametrize("mode", ["P", "PA", "LA", "I;16", "F", "1"])
def test_save_jpeg_from_modes_jpeg_cannot_hold(tmp_path, mode):
    imageio.save_image(Image.new(mode, (8, 6)), tmp_path / "o.jpg")
    assert Image.open(tmp_path / "o.jpg").size == (8, 6)


def test_saved_file_has_normal_permissions(tmp_path):
    if sys.platform == "win32":
        pytest.skip("POSIX permissions")
    imageio.save_image(Image.new("RGB", (4, 4)), tmp_path / "new.png")
    reference = tmp_path / "reference"
    reference.write_bytes(b"")  # created the ordinary way: 0o666 less the umask
    assert (tmp_path / "new.png").stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"old")
    existing.chmod(0o640)
    imageio.save_image(Image.new("RGB", (4, 4)), existing)
    assert existing.stat().st_mode & 0o777 == 0o640


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        imageio.save_image(Image.new("RGB", (4, 4)), tmp_path / "no" / "such" / "out.png")
    assert os.listdir(tmp_path) == []


def test_save_unknown_suffix(tmp_path):
    for name in ("out.xyz", "out"):
        with pytest.raises(ImageError, match="format"):
            imageio.save_image(Image.new("RGB", (4, 4)), tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_save_onto_a_folder(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(ImageError, match="out.png"):
        imageio.save_image(Image.new("RGB", (4, 4)), tmp_path / "out.png")
    assert os.listdir(tmp_path) == ["out.png"] and (tmp_path / "out.png").is_dir()


def test_save_array_is_refused(tmp_path):
    with pytest.raises(ImageError, match="PIL.Image"):
        imageio.save_image(picture(4, 4), tmp_path / "o.png")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_save_into_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageError, match="cannot write"):
            imageio.save_image(Image.new("RGB", (4, 4)), folder / "out.png")
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


def test_save_unwritable_folder_simulated(tmp_path, monkeypatch):
    """The read-only case for any user, root included: the temporary file cannot be created."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ImageError, match="cannot write .*Permission denied"):
        imageio.save_image(Image.new("RGB", (4, 4)), tmp_path / "out.png")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, error):
    """A write failing half-way (disk full, Ctrl-C) leaves no partial file and an existing output untouched."""
    existing = tmp_path / "out.png"
    Image.new("RGB", (3, 3), "red").save(existing)
    before = existing.read_bytes()
    real_save = Image.Image.save

    def half_then_fail(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)  # bytes reach the temporary file ...
        raise error  # ... then the write fails

    monkeypatch.setattr(Image.Image, "save", half_then_fail)
    expected = ImageError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        imageio.save_image(Image.new("RGB", (40, 40), "blue"), existing)
    with pytest.raises(expected):
        imageio.save_image(Image.new("RGB", (40, 40), "blue"), tmp_path / "new.png")
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    assert existing.read_bytes() == before


@pytest.mark.parametrize("name, mode", [("out.psd", "RGB"), ("out.xpm", "RGB"), ("out.pcx", "RGBA"),
                                        ("out.eps", "RGBA")])
def test_save_in_a_format_or_mode_pillow_cannot_write(tmp_path, name, mode):
    """A format Pillow only reads (KeyError inside Pillow) or a mode the format cannot hold (ValueError) is an
    ImageError that says so, not a traceback, and leaves nothing behind."""
    with pytest.raises(ImageError, match="cannot write"):
        imageio.save_image(Image.new(mode, (4, 4)), tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_16bit_grey_png_colour_key_is_alpha(tmp_path):
    u16 = np.full((3, 4), 40000, np.uint16)
    u16[0, 0] = 1000
    Image.fromarray(u16).save(tmp_path / "key16.png", transparency=1000)
    assert Image.open(tmp_path / "key16.png").mode == "I;16"
    rgb, alpha = imageio.to_rgb(tmp_path / "key16.png")
    assert alpha is not None and alpha[0, 0] == 0 and (alpha.ravel()[1:] == 255).all()
    assert (rgb[1, 1] == 156).all()  # round(40000 * 255 / 65535)


def test_icc_profile_kept_on_save(tmp_path):
    icc = b"\0" * 16 + b"RGB " + b"\0" * 108
    img = imageio.to_pil(picture(6, 8), None, icc)
    for name in ("o.png", "o.jpg", "o.webp", "o.tif"):
        imageio.save_image(img, tmp_path / name)
        assert Image.open(tmp_path / name).info.get("icc_profile") == icc, name


def test_webp_is_written_lossless(tmp_path):
    """Known pixels are returned exactly; a WebP output keeps them exactly (Pillow's default WebP is lossy)."""
    for arr in (picture(24, 32), np.dstack([picture(24, 32), np.arange(24 * 32).reshape(24, 32) % 256])):
        image = Image.fromarray(arr.astype(np.uint8))
        imageio.save_image(image, tmp_path / "o.webp")
        assert np.array_equal(np.asarray(Image.open(tmp_path / "o.webp")), arr)
