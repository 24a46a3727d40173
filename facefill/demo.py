"""The bundled demo: scikit-image's ``astronaut`` portrait (Eileen Collins, public domain, NASA) with a built-in
mask over the eyes and the mouth."""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def demo_image() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def demo_mask(size: tuple[int, int] = (512, 512)) -> Image.Image:
    """Two brush strokes (white = hole) on the 512x512 astronaut: one across both eyes, one over the mouth."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.polylines(mask, [np.array([(190, 103), (224, 99), (262, 103)], np.int32)], False, 255, thickness=18)
    cv2.polylines(mask, [np.array([(204, 147), (224, 152), (246, 146)], np.int32)], False, 255, thickness=16)
    return Image.fromarray(mask, "L")


def side_by_side(images: list[Image.Image], height: int = 512) -> Image.Image:
    """Images scaled to one height and laid out left to right (masks shown white on black)."""
    tiles = [im.convert("RGB").resize((round(im.width * height / im.height), height)) for im in images]
    out = Image.new("RGB", (sum(t.width for t in tiles), height), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width
    return out


def with_hole(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The input with its hole painted white, as users see it in an editor."""
    rgb = np.asarray(image.convert("RGB")).copy()
    rgb[np.asarray(mask.convert("L")) >= 128] = 255
    return Image.fromarray(rgb)
