"""SC-FEGAN: the tiny model, its losses on known inputs, user guidance, the `edit` CLI, two training steps."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from facefill import config
from facefill.cli import app
from facefill.guidance import to_color, to_sketch
from facefill.imageio import ImageError
from facefill.models.scfegan import gradient_penalty, perceptual_sum, pixel_loss, style_sum, tv_loss
from facefill.pretrained import load_pretrained, save_pretrained
from facefill.registry import create_model

runner = CliRunner()


def _batch(model, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    res = model.resolution
    image = torch.rand(b, 3, res, res, generator=g) * 2 - 1
    mask = torch.zeros(b, 1, res, res)
    mask[..., res // 4: res // 2, res // 3: 3 * res // 4] = 1
    sketch = (torch.rand(b, 1, res, res, generator=g) > 0.9).float()
    color = torch.rand(b, 3, res, res, generator=g)
    return {"image": image, "mask": mask, "sketch": sketch, "color": color}


# --- model -----------------------------------------------------------------------------------------------
def test_tiny_declares_inputs_and_uses_guidance():
    torch.manual_seed(0)
    model = create_model("scfegan_tiny").eval()
    assert model.inputs == ("image", "mask", "sketch", "color") and model.pad_multiple == 8
    b = _batch(model)
    with torch.no_grad():
        plain = model(b["image"], b["mask"])["output"]
        guided = model(b["image"], b["mask"], sketch=b["sketch"], color=b["color"])["output"]
        # guidance outside the hole is ignored (the model sees it inside the hole only)
        outside = model(b["image"], b["mask"], sketch=b["sketch"] * (1 - b["mask"]),
                        color=b["color"] * (1 - b["mask"]))["output"]
    assert guided.shape == plain.shape and not torch.allclose(guided, plain)
    assert torch.allclose(outside, plain)


def test_noise_is_seeded_at_inference():
    torch.manual_seed(0)
    model = create_model("scfegan_tiny").eval()
    b = _batch(model)
    with torch.no_grad():
        a1 = model(b["image"], b["mask"])["output"]
        a2 = model(b["image"], b["mask"])["output"]
        g1 = model(b["image"], b["mask"], generator=torch.Generator().manual_seed(7))["output"]
        g2 = model(b["image"], b["mask"], generator=torch.Generator().manual_seed(7))["output"]
        g3 = model(b["image"], b["mask"], generator=torch.Generator().manual_seed(8))["output"]
    assert torch.equal(a1, a2) and torch.equal(g1, g2) and not torch.equal(g1, g3)


def test_rejects_bad_config_and_size():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth"):
        create_model("scfegan_tiny", resolution=60)
    with pytest.raises(ValueError, match="d_loss"):
        create_model("scfegan_tiny", d_loss="wgan")
    model = create_model("scfegan_tiny")
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 3, 60, 60), torch.zeros(1, 1, 60, 60))


def test_paper_width_is_the_authors_unet():
    """cnum=64: encoder widths 64..512 as in the authors' model.py; 6 levels at 256 px (4x4 bottleneck)."""
    model = create_model("scfegan", cnum=64)
    assert [m.feature.out_channels for m in model.encoder] == [64, 128, 256, 512, 512, 512]
    assert model.encoder[0].feature.in_channels == 9 and model.encoder[0].feature.kernel_size == (7, 7)
    assert model.pad_multiple == 64


# --- losses on known inputs --------------------------------------------------------------------------------
def test_pixel_and_tv_losses_known_values():
    gt = torch.zeros(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1  # half the image is hole
    assert pixel_loss(gt + 1, gt, mask, alpha=1.5).item() == pytest.approx(0.5 + 1.5 * 0.5)
    ramp = torch.arange(8.0).mul(0.1).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    assert tv_loss(ramp).item() == pytest.approx(0.1)
    assert tv_loss(ramp.transpose(-1, -2)).item() == pytest.approx(0.1)


def test_style_and_perceptual_zero_for_equal_and_scale_as_expected():
    a = {"pool1": torch.rand(2, 4, 8, 8), "pool2": torch.rand(2, 8, 4, 4)}
    assert perceptual_sum(a, a).item() == 0 and style_sum(a, a).item() == 0
    b = {k: 2 * v for k, v in a.items()}
    # perceptual is linear in the difference; Gram matrices scale by 4 -> style difference = 3 x mean Gram
    assert perceptual_sum(b, a).item() == pytest.approx(sum(v.mean().item() for v in a.values()), rel=1e-5)
    from facefill.layers.vgg import gram

    expected = sum(3 * gram(v).mean().item() for v in a.values())
    assert style_sum(b, a).item() == pytest.approx(expected, rel=1e-5)


class _Linear(torch.nn.Module):
    """D(x) = c * sum of the image channels: grad wrt the image is c everywhere."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return (self.c * x[:, :3]).sum((1, 2, 3))[:, None]


def test_gradient_penalty_known_values():
    real, fake = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :2, :2] = 1  # 4 hole pixels x 3 channels: ||c * M||_2 = c * sqrt(12)
    add = lambda u: torch.cat([u, mask], 1)  # noqa: E731
    assert gradient_penalty(_Linear(1 / 12 ** 0.5), add, real, fake, mask).item() == pytest.approx(0, abs=1e-6)
    assert gradient_penalty(_Linear(0.0), add, real, fake, mask).item() == pytest.approx(1, abs=1e-5)  # sqrt eps
    assert gradient_penalty(_Linear(2 / 12 ** 0.5), add, real, fake, mask).item() == pytest.approx(1)


class _Patches(_Linear):
    """A patch critic: P patch scores, each c * sum of the image channels (their mean is _Linear's score)."""

    def forward(self, x):
        return super().forward(x).expand(-1, 4)[:, None, :, None]  # (B, 1, 4, 1): 4 patches


def test_gradient_penalty_of_a_patch_critic_is_on_its_mean_score():
    # the hinge loss averages the patch scores, so the penalty asks the mean for slope 1 (not the sum: slope 4x)
    real, fake = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :2, :2] = 1
    add = lambda u: torch.cat([u, mask], 1)  # noqa: E731
    assert gradient_penalty(_Patches(1 / 12 ** 0.5), add, real, fake, mask).item() == pytest.approx(0, abs=1e-6)
    assert gradient_penalty(_Patches(2 / 12 ** 0.5), add, real, fake, mask).item() == pytest.approx(1)


def test_discriminator_loss_known_value():
    """A discriminator that outputs 0: hinge 1 + 1, GP (0 - 1)^2 = 1 times theta 10, drift 0 -> 12."""
    model = create_model("scfegan_tiny")
    b = _batch(model)
    out = {"output": b["image"], "composite": b["image"]}
    loss, logs = model.discriminator_loss(_Linear(0.0), b, out)
    assert loss.item() == pytest.approx(12.0, abs=1e-4) and logs["d_gp"].item() == pytest.approx(1.0, abs=1e-5)
    lin = create_model("scfegan_tiny", d_loss="linear")
    assert lin.discriminator_loss(_Linear(0.0), b, out)[0].item() == pytest.approx(12.0, abs=1e-4)


def test_generator_loss_weights_and_gradients():
    torch.manual_seed(0)
    model = create_model("scfegan_tiny")
    disc = model.build_discriminator()
    b = _batch(model)
    out = model(b["image"], b["mask"], sketch=b["sketch"], color=b["color"])
    out["composite"] = out["output"] * b["mask"] + b["image"] * (1 - b["mask"])
    loss, logs = model.generator_loss(disc, b, out, gan_weight=1.0)
    c = model.config
    expected = logs["l1"] + c["sigma"] * logs["percept"] + c["gamma"] * logs["style"] + c["nu"] * logs["tv"] \
        + c["beta"] * logs["g_adv"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert not any(k.startswith("_vgg") for k in model.state_dict())  # VGG is not part of the weights


def test_reconstruction_warm_up_skips_vgg(monkeypatch):
    """sigma = gamma = 0: the loss is pixel + TV alone, and VGG is never run."""
    from facefill.models import scfegan

    torch.manual_seed(0)
    model = create_model("scfegan_tiny", sigma=0.0, gamma=0.0)
    b = _batch(model)
    out = model(b["image"], b["mask"], sketch=b["sketch"], color=b["color"])
    out["composite"] = out["output"] * b["mask"] + b["image"] * (1 - b["mask"])
    monkeypatch.setattr(scfegan, "vgg_pools", lambda x: pytest.fail("VGG ran in the warm-up"))
    loss, logs = model.generator_loss(None, b, out, gan_weight=0.0)
    assert set(logs) == {"l1", "tv"}
    assert loss.item() == pytest.approx((logs["l1"] + model.config["nu"] * logs["tv"]).item(), rel=1e-6)


# --- user guidance -------------------------------------------------------------------------------------------
def test_sketch_polarity_and_alpha():
    lines = np.zeros((16, 16), np.uint8)
    lines[8, 2:14] = 255
    white_on_black = to_sketch(lines, (16, 16))
    black_on_white = to_sketch(255 - lines, (16, 16))
    assert np.array_equal(white_on_black, black_on_white) and white_on_black[8, 5] == 1 and white_on_black[0, 0] == 0
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[8, 2:14] = (20, 20, 20, 255)  # dark strokes on a transparent layer
    assert np.array_equal(to_sketch(Image.fromarray(rgba, "RGBA"), (16, 16)), white_on_black)


def test_color_rgba_and_black_is_unpainted():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:4, 2:4] = (255, 0, 0, 255)
    rgba[5, 5] = (0, 0, 0, 255)  # painted black stays "painted"
    rgba[6, 6] = (0, 255, 0, 0)  # transparent: unpainted whatever its colour
    c = to_color(Image.fromarray(rgba, "RGBA"), (8, 8))
    assert c.shape == (8, 8, 3) and c.dtype == np.float32
    assert np.allclose(c[2, 2], [1, 0, 0]) and c[5, 5].min() > 0 and c[6, 6].max() == 0 and c[0, 0].max() == 0
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[1, 1] = (0, 0, 255)
    assert np.allclose(to_color(rgb, (8, 8))[1, 1], [0, 0, 1]) and to_color(rgb, (8, 8))[0, 0].max() == 0


def test_color_fully_opaque_rgba_reads_like_rgb():
    """Editors often export an opaque stroke layer as RGBA: black is then unpainted, as in RGB, not painted black."""
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[1, 1] = (255, 0, 0)
    opaque = Image.fromarray(rgb).convert("RGBA")
    assert np.array_equal(to_color(opaque, (8, 8)), to_color(rgb, (8, 8)))
    assert (to_color(opaque, (8, 8)).max(axis=2) > 0).sum() == 1


@pytest.mark.parametrize("bad, match", [
    ("sketch_size", "sketch is 8x8 but the image is 16x16"),
    ("color_size", "colour strokes is 8x8 but the image is 16x16"),
    ("color_grey", "must be an RGB or RGBA image"),
    ("color_array_grey", "must be RGB"),
])
def test_bad_guidance_rejected(bad, match):
    model = create_model("scfegan_tiny")
    image = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    kw = {"sketch_size": {"sketch": np.zeros((8, 8), np.uint8)},
          "color_size": {"color": np.zeros((8, 8, 3), np.uint8)},
          "color_grey": {"color": Image.new("L", (16, 16))},
          "color_array_grey": {"color": np.zeros((16, 16), np.uint8)}}[bad]
    with pytest.raises(ImageError, match=match):
        model.inpaint(image, mask, align="off", **kw)


def test_inpaint_with_and_without_guidance(portrait):
    torch.manual_seed(0)
    model = create_model("scfegan_tiny")
    image = portrait.convert("RGB").resize((96, 96))
    mask = np.zeros((96, 96), np.uint8)
    mask[30:60, 30:70] = 255
    sketch = np.full((96, 96), 255, np.uint8)
    sketch[45, 30:70] = 0
    color = np.zeros((96, 96, 4), np.uint8)
    color[35:55, 35:65] = (200, 120, 100, 255)
    plain = np.asarray(model.inpaint(image, mask, align="off"))
    guided = np.asarray(model.inpaint(image, mask, sketch=sketch, color=Image.fromarray(color, "RGBA"), align="off"))
    src = np.asarray(image)
    assert np.array_equal(guided[mask == 0], src[mask == 0]) and not np.array_equal(plain, guided)
    with pytest.raises(TypeError, match="does not take"):
        create_model("deepfill_v2_tiny").inpaint(image, mask, sketch=sketch, align="off")


# --- CLI -----------------------------------------------------------------------------------------------------
def test_cli_edit_round_trip(tmp_path):
    torch.manual_seed(0)
    weights = save_pretrained(create_model("scfegan_tiny"), tmp_path / "w")
    assert load_pretrained(weights).inputs == ("image", "mask", "sketch", "color")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 72, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    m = np.zeros((80, 72), np.uint8)
    m[20:50, 20:50] = 255
    Image.fromarray(m).save(tmp_path / "mask.png")
    sk = np.full((80, 72), 255, np.uint8)
    sk[30, 20:50] = 0
    Image.fromarray(sk).save(tmp_path / "sketch.png")
    col = np.zeros((80, 72, 4), np.uint8)
    col[25:45, 25:45] = (30, 200, 60, 255)
    Image.fromarray(col, "RGBA").save(tmp_path / "color.png")
    out = tmp_path / "out.png"
    args = ["edit", str(tmp_path / "img.png"), "--mask", str(tmp_path / "mask.png"), "-o", str(out),
            "--model", str(weights), "--align", "off"]
    guided = ["--sketch", str(tmp_path / "sketch.png"), "--color", str(tmp_path / "color.png")]
    result = runner.invoke(app, args + guided)
    assert result.exit_code == 0, result.output
    a, b = np.asarray(Image.open(tmp_path / "img.png")), np.asarray(Image.open(out))
    assert a.shape == b.shape and np.array_equal(a[m == 0], b[m == 0])
    assert runner.invoke(app, args).exit_code == 0  # no guidance: plain inpainting
    Image.fromarray(sk[:40]).save(tmp_path / "small.png")
    bad = runner.invoke(app, args + ["--sketch", str(tmp_path / "small.png")])
    assert bad.exit_code == 2 and "canvas of the image's size" in bad.output


def test_cli_edit_refuses_guidance_for_unguided_model(tmp_path, tiny_weights):
    Image.new("RGB", (64, 64)).save(tmp_path / "img.png")
    Image.new("L", (64, 64), 255).save(tmp_path / "mask.png")
    result = runner.invoke(app, ["edit", str(tmp_path / "img.png"), "--mask", str(tmp_path / "mask.png"),
                                 "-o", str(tmp_path / "o.png"), "--model", str(tiny_weights),
                                 "--sketch", str(tmp_path / "mask.png")])
    assert result.exit_code == 2 and "takes no --sketch" in result.output


# --- training ------------------------------------------------------------------------------------------------
def test_two_training_steps(face_folder, tmp_path):
    from facefill.train import TrainConfig, train

    cfg = config.build(TrainConfig, overrides=dict(
        model="scfegan_tiny", data=str(face_folder), out=str(tmp_path / "run"), batch_size=2, steps=2,
        gan_weight=1.0, gan_warmup=1, ema_decay=0.9, log_every=1, sample_every=2, ckpt_every=100, amp="off",
        masks="face", guidance_cache=str(tmp_path / "g")))
    summary = train(cfg, progress=False)
    assert summary["step"] == 2
    cached = {p.name.split(".")[0] for p in (tmp_path / "g").glob("*.color.png")}
    assert cached and cached <= {p.stem for p in face_folder.iterdir()}  # one entry per image, flips included
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"l1", "percept", "style", "tv", "g_adv", "d_loss", "d_gp"} <= set(logs[-1])
    assert all(np.isfinite(v) for r in logs for v in r.values())
    assert (tmp_path / "run" / "samples" / "0000002.png").is_file()
