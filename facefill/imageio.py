"""The one gate for pixels entering facefill: reading, validating and normalising images and masks.

Conventions at the edge (the public API):
  - image: ``PIL.Image`` (any mode: RGB, RGBA, L, LA, P, I;16, I, F, CMYK) or a NumPy array ``HxW``, ``HxWx3``
    or ``HxWx4`` (uint8, uint16, bool, or float in [0, 1]). Alpha (including a PNG ``tRNS`` colour key) is kept
    aside and re-attached to the result. 16-bit data is scaled to 8-bit (``round(v * 255 / 65535)``). A float
    array outside [0, 1] (e.g. 0..255 data in a float array) or a negative integer array is refused rather than
    clipped, since clipping would silently turn it into a different picture.
  - mask: same kinds of input; a pixel is a **hole** when its value is at least ``threshold`` (default 0.5) of
    the full range (>= 128 for 8-bit). Boolean arrays and integer arrays whose values are only 0 and 1 are read
    as 0/1 masks. Colour masks are converted to luminance; a mask's alpha channel, if any, is ignored.
  - files: EXIF orientation is applied (the image is inpainted as the user sees it); images over
    ``MAX_PIXELS`` are refused before decoding (decompression bombs); truncated or unreadable files raise.
    ``save_image`` writes atomically and gives the file the usual permissions (``0o666`` less the umask, or
    the mode of the file it replaces), not the private ``0o600`` of a temporary file.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._atomic import atomic_write

MAX_PIXELS = 64_000_000  # ~8000 x 8000; larger inputs are refused rather than risking memory exhaustion
_FLOAT_SLACK = 1e-3  # float inputs may overshoot [0, 1] by rounding error, not by more


class ImageError(ValueError):
    """An image or mask that facefill cannot use; the message says what is wrong and what to do."""


def read_image(path: str | os.PathLike, what: str = "image") -> Image.Image:
    """Open, fully decode and EXIF-orient an image file. Raises ``ImageError`` with a clear reason."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{what} {path} does not exist or is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixels(img.size, what, path)
                img.load()
                img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{what} {path} is too large to decode safely ({exc}); facefill accepts at most "
                         f"{MAX_PIXELS:,} pixels: downscale it first") from None
    except UnidentifiedImageError:
        raise ImageError(f"{what} {path} is not an image file that Pillow can read") from None
    except PermissionError as exc:
        raise ImageError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what} {path} could not be decoded (truncated or corrupt?): {exc}") from None
    return img


def _check_pixels(size: tuple[int, int], what: str, path=None) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageError(f"{what} {path or ''} is empty ({w}x{h})".replace("  ", " "))
    if w * h > MAX_PIXELS:
        raise ImageError(f"{what} {path or ''} has {w}x{h} = {w * h:,} pixels, over the limit of {MAX_PIXELS:,}; "
                         "downscale it first".replace("  ", " "))


def _array_to_unit(arr: np.ndarray, what: str) -> np.ndarray:
    """Any numeric array -> float32 in [0, 1]."""
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError(f"{what} array contains NaN or infinite values")
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
        if lo < -_FLOAT_SLACK or hi > 1.0 + _FLOAT_SLACK:
            raise ImageError(f"{what} float array must have values in [0, 1], got [{lo:g}, {hi:g}]; "
                             "divide 0..255 data by 255 (or pass a uint8 array)")
        return np.clip(arr.astype(np.float32), 0.0, 1.0)  # only rounding slack is clipped
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min(initial=0)), int(arr.max(initial=0))
        if lo < 0 or hi > 65535:
            raise ImageError(f"{what} integer array must have values in 0..255 or 0..65535, got {lo}..{hi}")
        top = 255 if hi <= 255 else 65535
        return arr.astype(np.float32) / top
    raise ImageError(f"{what} array has unsupported dtype {arr.dtype}; use uint8, uint16, bool or float")


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """PIL image of any mode -> uint8 ``HxW``, ``HxWx3`` or ``HxWx4`` (16-bit and float scaled down)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img.convert("I"), dtype=np.int64)
        top = 65535 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255
        grey = np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        key = img.info.get("transparency")
        if isinstance(key, int):  # a 16-bit grey PNG's tRNS colour key is alpha too
            return np.dstack([grey, grey, grey, np.where(arr == key, 0, 255).astype(np.uint8)])
        return grey
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        top = 255.0 if arr.max(initial=0) > 1.0 else 1.0
        return np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("P", "L", "RGB") and "transparency" in img.info):
        return np.asarray(img.convert("RGBA"))  # a tRNS colour key is alpha too
    if img.mode == "L":
        return np.asarray(img)
    if img.mode == "1":
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))  # RGB, CMYK, YCbCr, LAB, HSV, P without transparency


def _decode(img: Image.Image, what: str) -> np.ndarray:
    """``_pil_to_array`` for a caller's PIL image, which may be lazily opened and so fail only now."""
    try:
        return _pil_to_array(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what} could not be decoded (truncated or corrupt?): {exc}") from None


def to_rgb(image, what: str = "image") -> tuple[np.ndarray, np.ndarray | None]:
    """Normalise an image to ``(rgb, alpha)``: ``rgb`` uint8 ``HxWx3``; ``alpha`` uint8 ``HxW`` or ``None``."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, what)
    if isinstance(image, Image.Image):
        _check_pixels(image.size, what)
        arr = _decode(image, what)
    elif isinstance(image, np.ndarray):
        arr = image
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise ImageError(f"{what} array must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
        _check_pixels((arr.shape[1], arr.shape[0]), what)
        if arr.dtype != np.uint8:
            arr = np.round(_array_to_unit(arr, what) * 255).astype(np.uint8)
    else:
        raise ImageError(f"{what} must be a PIL.Image, a NumPy array or a path, got {type(image).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2)), None
    if arr.shape[2] == 4:
        return np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3])
    return np.ascontiguousarray(arr), None


def to_mask(mask, size: tuple[int, int], threshold: float = 0.5, resize: bool = False,
            what: str = "mask") -> np.ndarray:
    """Normalise a mask to a boolean ``HxW`` array (True = hole) for an image of ``size`` = (width, height).

    A pixel is a hole when its value is at least ``threshold`` of the full range (white = hole), except in a 0/1
    mask (a bool or 0/1 integer array, or a grey image whose values are all 0 or 1), where 1 = hole.

    A size mismatch raises ``ImageError`` unless ``resize=True`` (nearest-neighbour resize to the image).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if isinstance(mask, (str, os.PathLike)):
        mask = read_image(mask, what)
    if isinstance(mask, Image.Image):
        _check_pixels(mask.size, what)
        if mask.mode in ("L", "I", "I;16", "I;16L", "I;16B") and mask.getextrema() == (0, 1):
            unit = np.asarray(mask, dtype=np.float32)  # a 0/1 mask saved as an image, read like a 0/1 array
        else:
            unit = _decode(mask, what).astype(np.float32) / 255.0
    elif isinstance(mask, np.ndarray):
        if mask.ndim not in (2, 3) or (mask.ndim == 3 and mask.shape[2] not in (1, 3, 4)):
            raise ImageError(f"{what} array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {mask.shape}")
        _check_pixels((mask.shape[1], mask.shape[0]), what)
        if mask.dtype != bool and np.issubdtype(mask.dtype, np.integer) and mask.size and mask.max() <= 1 \
                and mask.min() >= 0:
            unit = mask.astype(np.float32)  # a 0/1 mask
        else:
            unit = _array_to_unit(mask, what)
    else:
        raise ImageError(f"{what} must be a PIL.Image, a NumPy array or a path, got {type(mask).__name__}")
    if unit.ndim == 3:
        unit = unit[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) if unit.shape[2] >= 3 else unit[..., 0]
    h, w = unit.shape
    if (w, h) != tuple(size):
        if not resize:
            raise ImageError(f"{what} is {w}x{h} but the image is {size[0]}x{size[1]}; "
                             "give a mask of the image's size (or resize it: --resize-mask / resize=True)")
        import cv2

        unit = cv2.resize(unit, tuple(size), interpolation=cv2.INTER_NEAREST)
    return unit >= threshold - 1e-6


def rgb_icc_profile(image) -> bytes | None:
    """The ICC profile of a PIL image whose RGB values facefill keeps as they are (an RGB-space profile on an RGB,
    RGBA or palette image), to attach to the result so that it looks like the input in colour-managed viewers."""
    if not isinstance(image, Image.Image) or image.mode not in ("RGB", "RGBA", "P", "PA"):
        return None
    icc = image.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and icc[16:20] == b"RGB " else None


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None, icc_profile: bytes | None = None) -> Image.Image:
    """uint8 ``HxWx3`` (+ optional ``HxW`` alpha) -> PIL ``RGB`` / ``RGBA`` (carrying ``icc_profile`` if given)."""
    img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA") if alpha is not None else Image.fromarray(rgb, "RGB")
    if icc_profile:
        img.info["icc_profile"] = icc_profile
    return img


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write atomically: to a temporary file beside ``path``, then rename, so a failure leaves nothing behind
    (and an existing ``path`` untouched). The format follows the suffix; JPEG drops alpha (flattened on white)
    and stores other modes it cannot hold (P, I;16, F, ...) as RGB or L; WebP is written lossless, so the pixels
    outside the hole stay exact in the file too, colour under full transparency included (JPEG, lossy by
    nature, is written at quality 95)."""
    if not isinstance(image, Image.Image):
        raise ImageError(f"save_image takes a PIL.Image, got {type(image).__name__}; use to_pil() for arrays")
    path = Path(path)
    suffix = path.suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise ImageError(f"cannot tell the image format from {path.name!r}; use .png, .jpg, .webp, ...")
    Image.init()
    if fmt not in Image.SAVE:
        raise ImageError(f"cannot write {path.name!r}: Pillow reads {fmt} files but cannot write them; "
                         "use .png, .jpg, .webp, ...")
    if not path.parent.is_dir():
        raise ImageError(f"output folder {path.parent} does not exist")
    options = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True, "exact": True}}.get(fmt, {})
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]  # JPEG and WebP write it only when asked
    if fmt == "JPEG" and image.mode not in ("1", "L", "RGB", "CMYK", "YCbCr"):
        image = _for_jpeg(image)
    if path.is_dir():
        raise ImageError(f"cannot write {path}: it is a folder")
    try:
        with atomic_write(path, suffix=suffix) as tmp:
            image.save(tmp, format=fmt, **options)
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. "Cannot save RGBA images as PCX"
        raise ImageError(f"cannot write {path}: {exc}; use .png") from None
    return path


def _for_jpeg(image: Image.Image) -> Image.Image:
    """A mode JPEG can store: alpha flattened on white, 16-bit / float scaled to 8 bits, palettes expanded."""
    arr = _pil_to_array(image)
    if arr.ndim == 3 and arr.shape[2] == 4:
        a = arr[..., 3:].astype(np.float32) / 255.0
        arr = np.round(arr[..., :3] * a + 255.0 * (1.0 - a)).astype(np.uint8)
    return Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
