"""GLCIC: the three-phase schedule (T_C, T_D, joint), its losses, local patches, training through the loop."""
from __future__ import annotations

from conftest import assert_same_training_state

import json

import pytest
import torch

from facefill import config
from facefill.layers.local_patch import box_patches, centred_patches, hole_boxes
from facefill.losses import bce_d_loss, bce_g_loss
from facefill.registry import create_model
from facefill.train import TrainConfig, schedule, train


def test_schedule_phases():
    """MSE only for T_C steps, the discriminators only for T_D steps, then joint with alpha."""
    cfg = TrainConfig(gan_weight=0.0004, gan_start=3, d_only_steps=2, gan_warmup=1)
    phases = [schedule(cfg, s) for s in range(7)]
    assert phases[:3] == [(False, True, 0.0)] * 3
    assert phases[3:5] == [(True, False, 0.0)] * 2
    assert phases[5:] == [(True, True, 0.0004)] * 2


def test_schedule_defaults_and_n_critic():
    # the defaults keep the old loop: G every step, D from gan_start, linear ramp from gan_start
    cfg = TrainConfig(gan_weight=0.1, gan_start=2, gan_warmup=4)
    assert [schedule(cfg, s) for s in range(4)] == [(False, True, 0.0), (False, True, 0.0),
                                                    (True, True, 0.025), (True, True, 0.05)]
    assert schedule(TrainConfig(gan_weight=0.0), 10 ** 6) == (False, True, 0.0)
    cfg = TrainConfig(gan_weight=1.0, gan_start=0, gan_warmup=1, n_critic=3)
    assert [schedule(cfg, s)[1] for s in range(6)] == [False, False, True, False, False, True]
    with pytest.raises(ValueError, match="n_critic"):
        train(TrainConfig(n_critic=0))


def test_local_patches():
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 2:10, 50:62] = 1      # near a corner: the window moves inside the image
    box = hole_boxes(mask)
    assert box == [(2, 10, 50, 62), (0, 64, 0, 64)]  # an empty mask gives the whole image
    x = torch.arange(64.0).view(1, 1, 1, 64).expand(2, 1, 64, 64)
    patches = centred_patches(x, box, 32)
    assert patches.shape == (2, 1, 32, 32) and patches[0, 0, 0, 0] == 32 and patches[0, 0, 0, -1] == 63
    assert box_patches(x, box, 16).shape == (2, 1, 16, 16)


def test_bce_losses():
    big = torch.full((4, 1), 30.0)
    assert bce_d_loss(big, -big).item() == pytest.approx(0, abs=1e-6)
    assert bce_g_loss(-big).item() == pytest.approx(30, rel=1e-3)
    zero = torch.zeros(4, 1)
    assert bce_d_loss(zero, zero).item() == pytest.approx(2 * 0.6931472, rel=1e-6)


def test_hole_mse_and_architecture():
    torch.manual_seed(0)
    model = create_model("glcic_tiny")
    image = torch.zeros(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 10:30, 10:30] = 1
    out = {"output": image + 0.5 * mask - 0.25 * (1 - mask)}   # errors outside the hole do not count
    loss, logs = model.generator_loss(None, {"image": image, "mask": mask}, out, 0.0)
    assert loss.item() == pytest.approx(0.25) and logs["mse"].item() == pytest.approx(0.25)
    full = create_model("glcic")
    dilations = [m.dilation[0] for m in full.net.modules() if isinstance(m, torch.nn.Conv2d) and m.dilation[0] > 1]
    assert dilations == [2, 4, 8, 16]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in full.net.modules()) == 16


def test_generator_scores_fakes_in_the_discriminator_steps_batch():
    """The discriminators batch-normalise (train mode): the generator's adversarial loss must score the fakes
    beside the truths, as the discriminator step does, not alone (other batch statistics, another function)."""
    torch.manual_seed(0)
    model = create_model("glcic_tiny")
    disc = model.build_discriminator().train()
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    fake = torch.rand(2, 3, 64, 64) * 0.2   # far from the truths: batch statistics of fakes alone differ
    batch, out = {"image": image, "mask": mask}, {"output": fake, "composite": fake}
    _, logs = model.generator_loss(disc, batch, out, 1.0)
    both = torch.cat([image, fake])
    _, paired = disc(both, centred_patches(both, hole_boxes(torch.cat([mask, mask])), 32)).chunk(2)
    alone = disc(fake, centred_patches(fake, hole_boxes(mask), 32))
    assert logs["g_adv"].item() == pytest.approx(bce_g_loss(paired).item(), rel=1e-5)
    assert abs(bce_g_loss(alone).item() - logs["g_adv"].item()) > 1e-3


def _cfg(face_folder, out, steps, **kw):
    base = dict(model="glcic_tiny", data=str(face_folder), out=str(out), batch_size=2, steps=steps,
                gan_weight=0.0004, gan_start=1, d_only_steps=2, gan_warmup=1, ema_decay=0.9, log_every=1,
                sample_every=100, ckpt_every=100, amp="off")
    return config.build(TrainConfig, overrides={**base, **kw})


def test_three_phases_through_the_loop(face_folder, tmp_path):
    """Step 1: completion (MSE); steps 2-3: discriminators only, completion weights frozen; step 4: joint.
    Resuming inside the discriminator phase is exact."""
    train(_cfg(face_folder, tmp_path / "a", 1), progress=False)
    train(_cfg(face_folder, tmp_path / "b", 3), progress=False)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    params = [n for n, _ in create_model("glcic_tiny").named_parameters()]
    assert all(torch.equal(a["generator"][n], b["generator"][n]) for n in params)   # G frozen in phase 2
    assert not all(torch.equal(a["discriminator"][n], b["discriminator"][n]) for n in a["discriminator"])

    straight = train(_cfg(face_folder, tmp_path / "s", 4), progress=False)
    resumed = train(_cfg(face_folder, tmp_path / "b", 4), resume=True, progress=False)
    assert straight["step"] == resumed["step"] == 4
    assert_same_training_state(tmp_path / "s", tmp_path / "b")
    logs = [json.loads(line) for line in (tmp_path / "s" / "log.jsonl").read_text().splitlines()]
    assert ["mse" in r for r in logs] == [True, False, False, True]
    assert ["d_loss" in r for r in logs] == [False, True, True, True]
    assert logs[3]["gan_weight"] == pytest.approx(0.0004) and "g_adv" in logs[3]
