"""The differentiable HOG against scikit-image, and the HOG-guided two-stage face inpainter."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import shared_folder
from facefill import config
from facefill.data.hog import hog_blocks, hog_cells, hog_descriptor, hog_map, hog_visualise
from facefill.registry import create_model
from facefill.train import TrainConfig, train

skimage_feature = pytest.importorskip("skimage.feature", reason="scikit-image is the reference HOG")
PARAMS = dict(orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2))


def _compare(rgb: np.ndarray, norm: str) -> float:
    """Max |ours - skimage| on one uint8 RGB image, in float64, hard votes (scikit-image's binning)."""
    ref = skimage_feature.hog(rgb, block_norm=norm, channel_axis=-1, **PARAMS)
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].double()
    ours = hog_descriptor(x, norm=norm, vote="hard")[0].numpy()
    assert ours.shape == ref.shape
    return float(np.abs(ours - ref).max())


@pytest.mark.parametrize("norm", ["L2-Hys", "L2"])
def test_matches_skimage_on_the_astronaut(norm):
    from facefill.demo import demo_image

    rgb = np.asarray(demo_image().convert("RGB"))[100:356, 150:406]
    assert _compare(rgb, norm) < 1e-5


def test_matches_skimage_on_celeba_faces():
    files = sorted(shared_folder("celeba256", "test").glob("*.jpg"))[:4]
    if not files:
        pytest.skip("no .jpg faces in ../shared/data/celeba256/test")
    for path in files:
        assert _compare(np.asarray(Image.open(path).convert("RGB")), "L2-Hys") < 1e-5, path.name


def test_grey_float32_and_odd_sizes_match_skimage():
    rng = np.random.default_rng(0)
    grey = rng.uniform(0, 1, (70, 45)).astype(np.float32)     # remainders are dropped, as in scikit-image
    ref = skimage_feature.hog(grey, block_norm="L2-Hys", **PARAMS)
    ours = hog_descriptor(torch.from_numpy(grey)[None, None], vote="hard")[0].numpy()
    assert ours.shape == ref.shape and np.abs(ours - ref).max() < 1e-5


def test_bilinear_votes_stay_close_to_skimage_and_are_differentiable():
    from facefill.demo import demo_image

    rgb = np.asarray(demo_image().convert("RGB"))[100:228, 150:278]
    ref = skimage_feature.hog(rgb, block_norm="L2-Hys", channel_axis=-1, **PARAMS)
    x = (torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255).requires_grad_(True)
    ours = hog_descriptor(x)[0]
    assert np.corrcoef(ours.detach().numpy(), ref)[0, 1] > 0.9
    # each pixel's votes sum to its gradient magnitude, whichever binning
    cells_h, cells_b = hog_cells(x.detach(), vote="hard"), hog_cells(x.detach(), vote="bilinear")
    assert torch.allclose(cells_h.sum(1), cells_b.sum(1), atol=1e-5)
    hog_map(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    flat = torch.zeros(1, 3, 32, 32, requires_grad=True)      # no gradient anywhere: finite, ~zero map
    m = hog_map(flat)
    m.sum().backward()
    assert m.max() < 1e-6 and torch.isfinite(flat.grad).all()


def test_hog_map_layout():
    x = torch.rand(2, 3, 64, 48)
    m = hog_map(x)
    assert m.shape == (2, 9, 8, 6) and m.min() >= 0 and m.max() <= 1
    blocks = hog_blocks(hog_cells(x), 2, "L2")
    assert blocks.shape == (2, 7, 5, 2, 2, 9)
    assert torch.allclose(blocks.pow(2).sum((3, 4, 5)), torch.ones(2, 7, 5), atol=1e-4)
    assert hog_visualise(m).shape == (2, 1, 64, 48)
    with pytest.raises(ValueError, match="norm"):
        hog_blocks(hog_cells(x), 2, "L1")


def test_stages_and_losses():
    torch.manual_seed(0)
    model = create_model("hogface_tiny")
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    out = model(image, mask)
    assert out["hog"].shape == (2, 9, 8, 8) and out["output"].shape == image.shape
    # stage 2 reads the predicted HOG map: changing it changes the output
    guide = torch.cat([image * (1 - mask), mask, torch.zeros(2, 9, 64, 64)], 1)
    assert not torch.allclose(torch.tanh(model.inpaint_net(guide)), out["output"])
    # a perfect prediction of both stages has zero reconstruction, perceptual and style loss
    perfect = {"output": image, "hog": model.true_hog(image)}
    loss, logs = model.generator_loss(None, {"image": image, "mask": mask}, perfect, 0.0)
    assert loss.item() == pytest.approx(0, abs=1e-5)
    assert {"l1", "hog_l1", "perceptual", "style"} <= set(logs)
    assert model.config["style_weight"] == 250 and model.config["adv_weight"] == 0.1
    # EdgeConnect's weights were tuned on unstandardised [0, 1] VGG input: the terms are at that scale
    from facefill.layers.vgg import perceptual_loss, shared_vgg, style_loss
    from facefill.models.hogface import EDGECONNECT_VGG_SCALE as k, VGG_LAYERS

    guess = model(image, mask)
    _, logs = model.generator_loss(None, {"image": image, "mask": mask}, guess, 0.0)
    features = shared_vgg(VGG_LAYERS, "cpu")
    n = len(VGG_LAYERS)
    with torch.no_grad():
        raw_perceptual = n * perceptual_loss(features(guess["output"]), features(image))
        raw_style = n * style_loss(features(guess["output"] * mask), features(image * mask))
    assert logs["perceptual"].item() == pytest.approx(k * raw_perceptual.item(), rel=1e-4)
    assert logs["style"].item() == pytest.approx(k ** 2 * raw_style.item(), rel=1e-4)
    # stage 1's L1 is in the critic's unit (maps x HOG_SCALE), so the paper's 1 : 1 balance holds at edge-map scale
    from facefill.models.hogface import HOG_SCALE

    raw_hog_l1 = (guess["hog"] - model.true_hog(image)).abs().mean()
    assert HOG_SCALE == 5 and logs["hog_l1"].item() == pytest.approx(HOG_SCALE * raw_hog_l1.item(), rel=1e-5)


def test_hog_critic_sees_face_maps_at_the_image_critics_scale():
    """Behind spectral norm a critic's logits scale with its input: the HOG maps of a real face (mean ~0.12) reach
    the HOG critic at about the magnitude of the images that reach the image critic (unscaled, its logits were ~0.01
    and it stayed at chance)."""
    from facefill.demo import demo_image
    from facefill.models.hogface import HogFace

    rgb = np.asarray(demo_image().convert("RGB").resize((128, 128)), dtype=np.float32)
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None] / 127.5 - 1
    disc = create_model("hogface_tiny").build_discriminator()
    seen = {}
    for name in ("hog", "image"):
        getattr(disc, name)[0].register_forward_pre_hook(lambda m, args, name=name: seen.update({name: args[0]}))
    disc(HogFace.true_hog(image), image, image)
    hog_level, image_level = seen["hog"][:, :9].abs().mean().item(), seen["image"].abs().mean().item()
    assert 0.5 < hog_level / image_level < 2, (hog_level, image_level)
    grey_level = seen["hog"][:, 9:].abs().mean().item()  # the condition beside it, at the same scale
    assert 0.5 < grey_level / hog_level < 2, (grey_level, hog_level)


def test_hog_critic_judges_maps_beside_the_true_face():
    """As EdgeConnect's edge critic (conditioned on the true greyscale image), the HOG critic sees each map beside
    the ground truth's grey levels, folded into the map's cells: real and predicted maps are judged against the
    same true face, and the generator's adversarial term is too."""
    from facefill.models.hogface import grey_cells

    torch.manual_seed(0)
    model = create_model("hogface_tiny")
    disc = model.build_discriminator()
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    grey = grey_cells(image)
    assert grey.shape == (2, 64, 8, 8)
    # pixel (y, x) of cell (i, j) is channel 8 * (y % 8) + x % 8: the cell's own 8x8 grey levels
    weights = torch.tensor([0.2125, 0.7154, 0.0721]).view(1, 3, 1, 1)
    assert torch.allclose(grey[:, 8 * 3 + 5, 2, 1], ((image[:, :, 19, 13] + 1) / 2 * weights[..., 0, 0]).sum(1))
    seen = []
    disc.hog[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    out = model(image, mask)
    model.discriminator_loss(disc, {"image": image, "mask": mask}, out)
    model.generator_loss(disc, {"image": image, "mask": mask}, out, 1.0)
    d_input, g_input = seen
    assert torch.equal(d_input[:2, 9:], grey) and torch.equal(d_input[2:, 9:], grey)  # real and fake beside the truth
    assert torch.equal(g_input[:, 9:], grey)
    assert torch.allclose(d_input[2:, :9], out["hog"] * 5) and torch.allclose(g_input[:, :9], out["hog"] * 5)
    # the condition is used: another face under the same map changes the critic's verdict
    with torch.no_grad():
        hog = model.true_hog(image)
        a, _ = disc(hog, image, image)
        b, _ = disc(hog, image.flip(-1), image)
    assert not torch.allclose(a, b)


def test_reconstruction_warm_up_skips_vgg(monkeypatch):
    """perceptual = style = 0: the loss is the two L1 terms alone, and VGG is never built or run."""
    from facefill.models import hogface

    torch.manual_seed(0)
    model = create_model("hogface_tiny", perceptual_weight=0.0, style_weight=0.0)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    monkeypatch.setattr(hogface, "shared_vgg", lambda *a: pytest.fail("VGG ran in the warm-up"))
    loss, logs = model.generator_loss(None, {"image": image, "mask": mask}, model(image, mask), 0.0)
    assert set(logs) == {"l1", "hog_l1"}
    assert loss.item() == pytest.approx((logs["l1"] + logs["hog_l1"]).item(), rel=1e-6)


def test_trains_two_steps(face_folder, tmp_path):
    cfg = config.build(TrainConfig, overrides=dict(
        model="hogface_tiny", data=str(face_folder), out=str(tmp_path / "r"), batch_size=2, steps=2, gan_weight=1.0,
        gan_warmup=1, ema_decay=0.9, log_every=1, sample_every=2, ckpt_every=100, amp="off"))
    assert train(cfg, progress=False)["step"] == 2
    logs = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert all({"hog_l1", "l1", "style", "g_adv_hog", "d_hog", "d_image"} <= set(r) for r in logs)
    assert all(np.isfinite(v) for r in logs for v in r.values())


def test_hog_picture_and_cli(tmp_path):
    from typer.testing import CliRunner

    from conftest import picture_case
    from facefill.cli import app

    model, image, hole, base = picture_case(tmp_path, "hogface_tiny")
    picture = model.hog_picture(image, hole)
    assert picture.shape == (90, 100, 3) and picture.dtype == np.uint8
    assert (picture[hole, 0] >= 90).all() and (picture[~hole, 0] == picture[~hole, 1]).all()  # hole tinted red
    assert picture[..., 1].max() > 100 and picture[..., 1].std() > 5  # lines, not a flat picture

    result = CliRunner().invoke(app, base + ["--hog-map", str(tmp_path / "hog.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "hog.png").size == (100, 90) and (tmp_path / "o.png").is_file()
    # a model without a HOG stage says so, and writes nothing
    result = CliRunner().invoke(app, base + ["--model", "telea", "--hog-map", str(tmp_path / "no.png")])
    assert result.exit_code != 0 and "cannot draw --hog-map" in result.output and "hogface" in result.output
    assert not (tmp_path / "no.png").exists()
