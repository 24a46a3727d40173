"""Classical baselines: registered and usable without weights, fill smooth images closely, keep known pixels."""
from __future__ import annotations

import numpy as np
import pytest

import facefill
from facefill.inpainter import Inpainter
from facefill.registry import create_model

CLASSICAL = ["telea", "navier_stokes", "biharmonic"]


def _gradient(h=96, w=96):
    """A smooth colour ramp: every classical method should continue it into a hole."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([40 + 150 * xx / w, 60 + 120 * yy / h, 200 - 80 * (xx + yy) / (h + w)], -1)
    return np.rint(img).astype(np.uint8)


def _hole(h=96, w=96):
    hole = np.zeros((h, w), bool)
    hole[h // 3: h // 3 + 20, w // 3: w // 3 + 24] = True
    return hole


def test_listed_as_usable():
    infos = {i.name: i for i in facefill.list_models()}
    for name in CLASSICAL:
        assert infos[name].has_weights, f"{name} needs no weights and must be listed as usable"
        assert infos[name].description


@pytest.mark.parametrize("name", CLASSICAL)
def test_fills_gradient_and_keeps_known_pixels(name):
    image, hole = _gradient(), _hole()
    model = facefill.load(name)
    assert isinstance(model, Inpainter) and model.name == name
    out = np.asarray(model.inpaint(image, hole))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], image[~hole])
    err = np.abs(out[hole].astype(int) - image[hole].astype(int))
    # Telea and Navier-Stokes march inward from the border: ~3 and ~1 levels off on a ramp; biharmonic ~0.3
    tolerance = {"telea": 5, "navier_stokes": 3, "biharmonic": 1}[name]
    assert err.mean() < tolerance, f"{name}: mean fill error {err.mean():.2f} levels"


def test_radius_override():
    model = create_model("telea", radius=5)
    assert model.radius == 5 and model.config["radius"] == 5
    with pytest.raises(ValueError, match="radius"):
        create_model("navier_stokes", radius=0)


def test_biharmonic_crops_on_large_images():
    """Above crop_above px the fill is solved per crop around each hole: same result as the whole-image solve."""
    h, w = 300, 420
    image = _gradient(h, w)
    image = np.clip(image.astype(int) + np.random.default_rng(0).integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[20:40, 30:60] = True  # near a corner
    hole[150:190, 200:230] = True
    hole[280:300, 380:420] = True  # touching the border
    whole = create_model("biharmonic").inpaint_array(image, hole)
    cropped = create_model("biharmonic", crop_above=128, crop_size=64).inpaint_array(image, hole)
    assert np.array_equal(cropped[~hole], image[~hole])
    assert np.abs(cropped.astype(int) - whole.astype(int))[hole].max() <= 1


def test_biharmonic_whole_image_hole_gives_gray():
    image = _gradient(16, 16)
    with pytest.warns(UserWarning, match="whole image"):
        out = np.asarray(facefill.load("biharmonic").inpaint(image, np.ones((16, 16), bool)))
    assert (out == 128).all()
