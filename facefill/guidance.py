"""User guidance for sketch- and colour-guided models (SC-FEGAN, DeepFill v2 with ``sketch=True``): the one gate
that turns drawings into arrays. ``Inpainter.inpaint`` calls ``convert`` for every model, so the Python API, the
CLI and the web API read drawings the same way.

``to_sketch(sketch, size)`` -> float32 ``HxW`` in [0, 1], 1 = line. A sketch is a line drawing of the image's size,
given as a PIL image, a path, or an ``HxW`` / ``HxWx3`` / ``HxWx4`` array (uint8, or float in [0, 1]):
  - with transparency (an alpha channel that is not fully opaque) the lines are the opaque pixels (strength =
    alpha), whatever their colour;
  - otherwise the polarity is detected from the majority (the median grey level is the background): dark lines
    on white paper and white lines on black both work.
``to_color(color, size)`` -> float32 ``HxWx3`` RGB in [0, 1], 0 = unpainted. Colour strokes are an RGBA image whose
alpha marks the painted pixels, or an RGB image (or a fully opaque RGBA one) where black (0, 0, 0) means unpainted.
Painted black (RGBA) is lifted to 1/255 so it still counts as painted.

Both must have the image's size (draw them on a canvas of the image); anything else is rejected with an
``ImageError`` saying so, unless ``resize=True`` (``Inpainter.inpaint(..., resize_mask=True)``, the web API's
``resize_mask=true``): then a drawing of another size is resized to the image's size before it is read (area
average when shrinking, nearest neighbour when enlarging, so strokes stay crisp), colour and alpha alike.
"""
from __future__ import annotations

import cv2
import numpy as np

from .imageio import ImageError, to_rgb


def _read(drawing, what: str, size: tuple[int, int], resize: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    rgb, alpha = to_rgb(drawing, what)
    got = (rgb.shape[1], rgb.shape[0])
    if got == tuple(size):
        return rgb, alpha
    if not resize:
        raise ImageError(f"the {what} is {got[0]}x{got[1]} but the image is {size[0]}x{size[1]}: draw the {what} "
                         "on a canvas of the image's size (or resize it: --resize-mask / resize_mask=True)")
    shrink = got[0] * got[1] > size[0] * size[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_NEAREST
    rgb = cv2.resize(rgb, tuple(size), interpolation=interpolation)
    if alpha is not None:
        alpha = cv2.resize(alpha, tuple(size), interpolation=interpolation)
    return rgb, alpha


def to_sketch(sketch, size: tuple[int, int], resize: bool = False) -> np.ndarray:
    """A line drawing -> float32 ``HxW`` in [0, 1], 1 = line (see the module docstring for accepted forms)."""
    rgb, alpha = _read(sketch, "sketch", size, resize)
    if alpha is not None and alpha.min() < 255:
        return alpha.astype(np.float32) / 255
    grey = rgb.astype(np.float32).mean(axis=2) / 255
    return 1 - grey if np.median(grey) > 0.5 else grey  # the majority is the paper


def to_color(color, size: tuple[int, int], resize: bool = False) -> np.ndarray:
    """Colour strokes -> float32 ``HxWx3`` RGB in [0, 1], 0 = unpainted (see the module docstring)."""
    if isinstance(color, np.ndarray) and color.ndim == 2:
        raise ImageError(f"colour strokes must be RGB (HxWx3) or RGBA (HxWx4), got a grey HxW array {color.shape}")
    if hasattr(color, "mode") and color.mode in ("1", "L", "I", "I;16", "F"):
        raise ImageError(f"colour strokes must be an RGB or RGBA image, got mode {color.mode!r}: paint in colour, "
                         "on a transparent layer (RGBA) or on black (RGB)")
    rgb, alpha = _read(color, "colour strokes", size, resize)
    out = rgb.astype(np.float32) / 255
    if alpha is not None and alpha.min() < 255:  # a fully opaque RGBA canvas is read like RGB: black = unpainted
        painted = alpha >= 128
        out[painted & (out.max(axis=2) == 0)] = 1 / 255  # painted black must not read as unpainted
        return np.where(painted[..., None], out, 0).astype(np.float32)
    return out


def convert(inputs: tuple[str, ...], size: tuple[int, int], guidance: dict, resize: bool = False) -> dict:
    """User guidance -> model arrays for the names a model takes; ``None`` values are dropped (zeros).
    ``size`` is the image's ``(width, height)``; ``resize``: resize drawings of another size instead of raising."""
    converters = {"sketch": to_sketch, "color": to_color}
    out = {}
    for name, value in guidance.items():
        if value is None:
            continue
        if name not in converters or name not in inputs:
            raise TypeError(f"unknown guidance {name!r}; this model takes {[k for k in inputs if k in converters]}")
        out[name] = converters[name](value, size, resize)
    return out
