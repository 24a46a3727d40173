"""The sketch/colour acceptance measurement (facefill.evaluation.guided) on tiny models and fakes whose answer is
known: a model that paints what it is given moves the colour all the way, one that ignores it does not."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facefill.evaluation import guided
from facefill.inpainter import Inpainter


class FakeGuided(Inpainter):
    """Fills the hole with mid grey, or with the painted colour where there is one (``obey=True``)."""

    inputs = ("image", "mask", "sketch", "color")

    def __init__(self, obey: bool):
        self.name, self.obey = "fake_guided", obey

    def inpaint_array(self, rgb, hole, sketch=None, color=None, **kw):
        out = np.full_like(rgb, 128)
        if self.obey and color is not None:
            painted = color.max(axis=2) > 0
            out[painted] = np.round(color[painted] * 255).astype(np.uint8)
        return out


def test_colour_control_measures_what_the_model_does(face_folder):
    obeys = guided.evaluate(FakeGuided(True), face_folder, limit=2, sketch_method="canny", progress=lambda s: None)
    ignores = guided.evaluate(FakeGuided(False), face_folder, limit=2, sketch_method="canny", progress=lambda s: None)
    assert obeys["color"]["moved"] == pytest.approx(1.0, abs=0.02) and obeys["color"]["closer"] == 1.0
    assert ignores["color"]["moved"] == pytest.approx(0.0, abs=1e-9) and ignores["color"]["closer"] == 0.0
    # the colour map of the truth is close to the truth: obeying it beats grey in the hole
    assert obeys["summary"]["sketch+color"]["l1_hole"] < obeys["summary"]["none"]["l1_hole"]
    assert obeys["summary"]["sketch+color"]["beats_none_l1"] == 1.0
    assert ignores["summary"]["sketch"]["beats_none_l1"] == 0.0  # same result: never strictly better
    assert len(obeys["cases"]) == 2 * len(guided.BUCKETS) * len(guided.CONDITIONS)
    assert obeys["meta"]["sketch_method"] == "canny"


def test_paint_target_is_far_from_the_true_colour():
    reddish = np.zeros((8, 8, 3), np.uint8)
    reddish[...] = (190, 40, 40)
    hole = np.ones((8, 8), bool)
    name, colour = guided.paint_target(reddish, hole)
    assert name != "red" and np.linalg.norm(guided.lab_mean(colour[None, None]) - guided.lab_mean(reddish)) > 50


def test_unguided_models_are_refused(face_folder):
    import facefill

    with pytest.raises(ValueError, match="takes no color, sketch"):
        guided.evaluate(facefill.load("telea"), face_folder, limit=1)


def test_truth_guidance_stays_in_the_hole(face_folder):
    from PIL import Image

    truth = np.asarray(Image.open(sorted(face_folder.iterdir())[0]).convert("RGB"))
    hole = np.zeros(truth.shape[:2], bool)
    hole[20:70, 10:60] = True
    sketch, color = guided.truth_guidance(truth, hole, "canny")
    assert sketch.mode == color.mode == "RGBA" and sketch.size == color.size == (96, 96)
    assert not np.asarray(sketch)[..., 3][~hole].any() and (np.asarray(color)[..., 3] == hole * 255).all()


def test_main_writes_report_gallery_and_readme_block(face_folder, tmp_path, capsys):
    from facefill.pretrained import save_pretrained
    from facefill.registry import create_model

    torch.manual_seed(0)
    weights = save_pretrained(create_model("scfegan_tiny"), tmp_path / "weights")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- guided:start -->\nold\n<!-- guided:end -->\ntail\n")
    out = tmp_path / "report"
    guided.main(["--model", str(weights), "--data", str(face_folder), "--limit", "2", "--sketch-method", "canny",
                 "-o", str(out), "--readme", str(readme)])
    assert (out / "gallery.png").is_file() and (out / "guided.json").is_file()
    text = readme.read_text()
    assert "old" not in text and "| sketch+color |" in text and "Colour control" in text and text.endswith("tail\n")
    from PIL import Image

    with Image.open(out / "gallery.png") as g:
        assert g.size == (160 * 8, 18 + 160 * 4)  # 3 test faces + the demo portrait
