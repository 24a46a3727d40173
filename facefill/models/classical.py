"""Classical (untrained) inpainting baselines, for comparison with the networks.

- ``telea``: fast-marching inpainting (Telea, "An Image Inpainting Technique Based on the Fast Marching Method",
  J. Graphics Tools 2004), via ``cv2.inpaint(..., cv2.INPAINT_TELEA)``.
- ``navier_stokes``: fluid-dynamics inpainting (Bertalmio, Bertozzi, Sapiro, "Navier-Stokes, Fluid Dynamics, and
  Image and Video Inpainting", CVPR 2001), via ``cv2.inpaint(..., cv2.INPAINT_NS)``.
- ``biharmonic``: the hole is the solution of the biharmonic equation (Delta^2 u = 0) with the known pixels as
  boundary values (Damelin & Hoang, "On Surface Completion and Image Inpainting by Biharmonic Functions", 2018),
  via ``skimage.restoration.inpaint_biharmonic``.

Radius of the OpenCV methods: 3 px, the value of OpenCV's own tutorial. On 30 CelebA-256 *training* images with
evaluation-style masks (10-60% holes) radius 1 / 3 / 5 / 9 gave whole-image PSNR 20.88 / 20.99 / 21.06 / 21.17 dB
(Telea) at 0.4 / 0.8 / 2.3 / 5.6 s for the 30 images: larger radii buy ~0.1 dB per doubling at ~2.5x the time,
so 3 is kept. ``create_model("telea", radius=5)`` picks another.

None of these has weights: ``facefill.load("telea")`` returns the model directly.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..inpainter import Inpainter
from ..windows import crop_boxes, inside
from ..registry import register_model


class OpenCVInpainter(Inpainter):
    """``cv2.inpaint`` with ``method`` ``"telea"`` or ``"navier_stokes"`` and a neighbourhood ``radius`` (px).

    Fast at any size (the fill marches inward from the hole border); blurry across large holes.
    """

    METHODS = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}

    def __init__(self, method: str = "telea", radius: float = 3.0):
        if method not in self.METHODS:
            raise ValueError(f"unknown OpenCV inpainting method {method!r}; choose one of {sorted(self.METHODS)}")
        if not radius > 0:
            raise ValueError(f"radius must be positive (pixels), got {radius}")
        self.method = method
        self.radius = float(radius)
        self.config = {"method": method, "radius": self.radius}

    def inpaint_array(self, rgb: np.ndarray, hole: np.ndarray, **guidance) -> np.ndarray:
        # cv2.inpaint treats the channels independently, so RGB order needs no conversion
        return cv2.inpaint(np.ascontiguousarray(rgb), hole.astype(np.uint8), self.radius, self.METHODS[self.method])


class BiharmonicInpainter(Inpainter):
    """Biharmonic inpainting (scikit-image), solved once for all three channels.

    Cost: a sparse direct solve with one unknown per hole pixel, so time grows faster than the hole area. Measured
    on a busy 2-core CPU: 256 px, 15% hole ~0.2 s, 56% hole ~1 s; 1024 px, 16% hole ~9 s, 34% hole ~24 s.
    Images larger than ``crop_above`` px are solved one crop around each group of nearby holes at a time (the
    biharmonic stencil reaches only 2 px, so a crop with a margin gives the same fill as the whole image), which
    bounds memory for small holes in big photos; it does not make one big hole cheaper.
    """

    def __init__(self, crop_above: int = 512, crop_size: int = 256, margin: float = 0.25):
        self.crop_above = int(crop_above)
        self.crop_size = int(crop_size)
        self.margin = float(margin)
        self.config = {"crop_above": self.crop_above, "crop_size": self.crop_size, "margin": self.margin}

    def inpaint_array(self, rgb: np.ndarray, hole: np.ndarray, **guidance) -> np.ndarray:
        h, w = hole.shape
        if max(h, w) <= self.crop_above:
            return _biharmonic(rgb, hole)
        out = rgb.copy()
        remaining = hole.copy()
        for box, group in crop_boxes(hole, self.crop_size, self.margin):
            ys, xs = inside(box, hole.shape)
            # holes of other groups inside this crop stay unknown (solved, not pasted); filled ones are context
            filled = _biharmonic(out[ys, xs], remaining[ys, xs])
            out[ys, xs][group] = filled[group]  # group: the hole of this window (box inside the image)
            remaining[ys, xs] &= ~group
        return out


def _biharmonic(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    if hole.all():  # no boundary values: the equation has no unique solution
        return np.full_like(rgb, 128)
    image = rgb.astype(np.float32) / 255.0
    # split_into_regions: one small system per connected hole instead of one over the whole image
    out = inpaint_biharmonic(image, hole, channel_axis=-1, split_into_regions=True)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


CLASSICAL_MODELS = ("telea", "navier_stokes", "biharmonic")  # the registered names below


@register_model
def telea(**kw) -> OpenCVInpainter:
    """Telea fast-marching inpainting (OpenCV, radius 3); classical baseline, no weights."""
    return OpenCVInpainter("telea", **kw)


@register_model
def navier_stokes(**kw) -> OpenCVInpainter:
    """Navier-Stokes inpainting (Bertalmio et al. 2001, OpenCV, radius 3); classical baseline, no weights."""
    return OpenCVInpainter("navier_stokes", **kw)


@register_model
def biharmonic(**kw) -> BiharmonicInpainter:
    """Biharmonic inpainting (scikit-image); classical baseline, no weights, slow on big holes in big images."""
    return BiharmonicInpainter(**kw)


for _fn in (telea, navier_stokes, biharmonic):
    _fn.trainable = False  # list_models: nothing to train, always usable
