"""DeepFill v1: spatially discounted L1, WGAN-GP helpers, training through the loop (n_critic), attention map."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from facefill import config
from facefill.losses import (discounted_l1, gradient_penalty, random_interpolates, spatial_discount, wgan_d_loss,
                             wgan_g_loss)
from facefill.registry import create_model
from facefill.train import TrainConfig, train


def test_spatial_discount_on_a_box_matches_the_distance_to_its_edge():
    gamma = 0.99
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:18, 6:20] = 1  # 10 x 14 box
    w = spatial_discount(mask, gamma)[0, 0]
    assert (w[mask[0, 0] == 0] == 0).all()                       # known pixels weigh nothing
    assert w[8, 10].item() == pytest.approx(gamma)               # next to the border: distance 1
    i, j = torch.meshgrid(torch.arange(10), torch.arange(14), indexing="ij")
    distance = torch.minimum(torch.minimum(i + 1, 10 - i), torch.minimum(j + 1, 14 - j)).float()
    assert torch.allclose(w[8:18, 6:20], gamma ** distance, atol=1e-5)
    assert w[12, 12] < w[10, 12] < w[8, 12]                      # deeper pixels weigh less


def test_spatial_discount_free_form_and_full_masks():
    mask = torch.zeros(2, 1, 24, 24)
    yy, xx = torch.meshgrid(torch.arange(24), torch.arange(24), indexing="ij")
    mask[0, 0] = (((yy - 12) ** 2 + (xx - 12) ** 2) < 49).float()  # a disc of radius 7
    mask[1] = 1                                                    # no context at all
    w = spatial_discount(mask, 0.9)
    hole = mask > 0
    assert (w[hole] > 0).all() and (w[hole] <= 0.9 + 1e-6).all() and (w[~hole] == 0).all()
    assert w[0, 0, 12, 12] == w[0, 0, hole[0, 0]].min()          # the disc's centre is deepest
    assert w[1, 0, 0, 0].item() == pytest.approx(0.9) and w[1, 0, 12, 12] < w[1, 0, 6, 12]


def test_discounted_l1_is_the_mean_weight_for_a_unit_error():
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    w = spatial_discount(mask)
    loss = discounted_l1(torch.ones(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), w)
    assert loss.item() == pytest.approx(w[mask > 0].mean().item(), rel=1e-6)


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = <v, x> has gradient v everywhere: the penalty is (||v|| - 1)^2, or (||v * m|| - 1)^2 on a mask."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 3, 8, 8, generator=g)
    real, fake = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    x = random_interpolates(real, fake, generator=g)
    assert x.requires_grad and ((x - fake).abs() <= (real - fake).abs() + 1e-6).all()
    score = (x * v).sum((1, 2, 3))
    assert gradient_penalty(score, x).item() == pytest.approx((v.norm().item() - 1) ** 2, rel=1e-5)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    score = (x * v).sum((1, 2, 3))
    expected = ((v * mask).norm().item() - 1) ** 2
    assert gradient_penalty(score, x, mask).item() == pytest.approx(expected, rel=1e-5)
    assert gradient_penalty((x * v / v.norm()).sum((1, 2, 3)), x).item() == pytest.approx(0, abs=1e-6)


def test_wgan_losses():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert wgan_d_loss(real, fake).item() == pytest.approx(0 - 3)
    assert wgan_g_loss(fake).item() == 0


def test_architecture_and_losses_at_paper_width():
    model = create_model("deepfill_v1")
    assert model.config["cnum"] == 32 and model.config["gamma"] == 0.99 and model.config["gp_lambda"] == 10
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.padding == (0, 0) for c in convs)                # padding is mirror padding, done before
    assert [c.dilation[0] for c in model.coarse.modules() if isinstance(c, torch.nn.Conv2d)
            and c.dilation[0] > 1] == [2, 4, 8, 16]
    with pytest.raises(ValueError, match="multiple of 32"):
        create_model("deepfill_v1", resolution=96)


def _tiny_with_critics():
    """deepfill_v1_tiny, its critics, and a batch of two 128 px images with one box hole each."""
    torch.manual_seed(0)
    model = create_model("deepfill_v1_tiny")
    disc = model.build_discriminator()
    image = torch.rand(2, 3, 128, 128) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[0, :, 20:60, 30:90] = 1
    mask[1, :, 70:100, 10:40] = 1
    return model, disc, image, mask


def test_critic_loss_and_generator_loss_pieces():
    model, disc, image, mask = _tiny_with_critics()
    out = model(image, mask)
    assert out["flow"].shape == (2, 2, 16, 16) and out["coarse"].abs().max() <= 1
    out["composite"] = out["output"] * mask + image * (1 - mask)
    loss, logs = model.discriminator_loss(disc, {"image": image, "mask": mask}, out)
    assert set(logs) == {"d_loss", "d_wgan", "gp"}
    assert loss.item() == pytest.approx(logs["d_wgan"].item() + 10 * logs["gp"].item(), rel=1e-5)
    # a perfect reconstruction has zero reconstruction loss
    perfect = {"output": image, "coarse": image, "composite": image}
    g_loss, g_logs = model.generator_loss(None, {"image": image, "mask": mask}, perfect, 0.0)
    assert g_loss.item() == pytest.approx(0, abs=1e-6)
    # the authors' weights: 1.2 x discounted L1 (hole) + 1.2 x L1 (known region), both stages
    g_loss, g_logs = model.generator_loss(None, {"image": image, "mask": mask}, out, 0.0)
    assert g_logs["l1"] > 0 and g_logs["ae"] > 0
    assert g_loss.item() == pytest.approx(1.2 * (g_logs["l1"] + g_logs["ae"]).item(), rel=1e-5)


def test_critic_scores_stay_fp32_under_bf16_autocast():
    """WGAN scores have no fixed offset (the losses see differences only): at an offset of 300, scores rounded to
    bf16 (spacing 2 there) all came out equal and the Wasserstein estimate d_wgan read 0."""
    model, disc, image, mask = _tiny_with_critics()
    with torch.no_grad():
        out = model(image, mask)
    out["composite"] = out["output"] * mask + image * (1 - mask)
    wgan = {}
    for offset in (0.0, 300.0):
        with torch.no_grad():
            disc.global_fc.bias.fill_(offset)
            disc.local_fc.bias.fill_(offset)
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            score_g, score_l = disc(image, image[:, :, :64, :64])
            _, logs = model.discriminator_loss(disc, {"image": image, "mask": mask}, out)
        assert score_g.dtype == score_l.dtype == torch.float32
        wgan[offset] = logs["d_wgan"].item()
    assert wgan[0.0] != 0 and wgan[300.0] == pytest.approx(wgan[0.0], abs=1e-4)


def _cfg(face_folder, out, steps, **kw):
    base = dict(model="deepfill_v1_tiny", data=str(face_folder), out=str(out), batch_size=2, steps=steps,
                gan_start=0, gan_warmup=1, gan_weight=0.001, ema_decay=0.9, log_every=1, sample_every=100,
                ckpt_every=100, amp="off")
    return config.build(TrainConfig, overrides={**base, **kw})


def test_trains_with_n_critic(face_folder, tmp_path):
    """n_critic = 2: the critic steps every step, the generator every second step; a critic-only step's log line
    carries the generator's terms from its latest step."""
    summary = train(_cfg(face_folder, tmp_path / "r", 3, n_critic=2), progress=False)
    assert summary["step"] == 3
    logs = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert "gp" in logs[0] and "l1" not in logs[0]
    assert "gp" in logs[1] and "l1" in logs[1] and "g_adv" in logs[1]
    assert logs[2]["l1"] == logs[1]["l1"] and logs[2]["gp"] != logs[1]["gp"]
    assert all(np.isfinite(v) for r in logs for v in r.values())


def test_attention_map_and_cli(tmp_path):
    from typer.testing import CliRunner

    from conftest import picture_case
    from facefill.cli import app

    model, image, hole, args = picture_case(tmp_path, "deepfill_v1_tiny")
    colors = model.attention_map(image, hole)
    assert colors.shape == (90, 100, 3) and colors.dtype == np.uint8
    assert (colors[:15] == 255).all()                        # known cells far from the hole match themselves
    assert (colors[hole] != 255).any(axis=-1).mean() > 0.5         # hole cells point elsewhere

    args += ["--attention-map", str(tmp_path / "att.png")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "att.png").size == (100, 90)
