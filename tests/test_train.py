"""The training loop: a few steps, exact resume after an interruption, export, config handling."""
from __future__ import annotations

from conftest import assert_same_training_state

import json
from pathlib import Path

import pytest
import torch

import facefill
from facefill import config
from facefill.pretrained import load_pretrained
from facefill.train import TrainConfig, export, lr_factor, train


def _cfg(face_folder, out, steps, **kw):
    base = dict(model="deepfill_v2_tiny", data=str(face_folder), out=str(out), batch_size=2, steps=steps,
                gan_warmup=1, ema_decay=0.9, log_every=1, sample_every=2, ckpt_every=100, amp="off")
    return config.build(TrainConfig, overrides={**base, **kw})


def test_train_resume_is_exact(face_folder, tmp_path):
    straight = train(_cfg(face_folder, tmp_path / "a", 4), progress=False)
    train(_cfg(face_folder, tmp_path / "b", 2), progress=False)
    with open(tmp_path / "b" / "log.jsonl", "a") as f:  # what a run killed after its last checkpoint leaves
        f.write(json.dumps({"step": 3, "l1": 9.0}) + "\n" + '{"step": 4, "l1"')
    resumed = train(_cfg(face_folder, tmp_path / "b", 4), resume=True, progress=False)
    assert straight["step"] == resumed["step"] == 4
    a, b = assert_same_training_state(tmp_path / "a", tmp_path / "b")
    assert a["opt_g"]["state"][0]["step"] == b["opt_g"]["state"][0]["step"]
    logs = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2, 3, 4] and all("d_loss" in r for r in logs)
    resumed_logs = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed_logs] == [1, 2, 3, 4] and all(r["l1"] != 9.0 for r in resumed_logs)
    assert (tmp_path / "a" / "samples" / "0000004.png").is_file()
    assert json.loads((tmp_path / "a" / "config.json").read_text())["steps"] == 4


def test_resume_is_exact_for_a_model_drawing_from_torchs_rng(face_folder, tmp_path):
    """WGAN-GP (DeepFill v1) draws its interpolation weights from torch's RNG. Starting the DataLoader drew its base
    seed from that RNG right after a resume restored it, so the resumed run's draws were off the uninterrupted
    run's. On the CPU, where those draws come from the generator the checkpoint restores."""
    kw = dict(model="deepfill_v1_tiny", gan_weight=0.001, device="cpu")
    train(_cfg(face_folder, tmp_path / "a", 4, **kw), progress=False)
    train(_cfg(face_folder, tmp_path / "b", 2, **kw), progress=False)
    train(_cfg(face_folder, tmp_path / "b", 4, **kw), resume=True, progress=False)
    assert_same_training_state(tmp_path / "a", tmp_path / "b")


def test_resume_reads_the_checkpoint_on_the_cpu(face_folder, tmp_path, monkeypatch):
    """torch.set_rng_state takes only a CPU ByteTensor: a checkpoint mapped onto the training device (cuda) made
    every GPU resume fail, the first segment from a restored compact state included. With no GPU here, a load
    mapped onto the training device puts the RNG state on the meta device, as cuda would put it off the CPU."""
    train(_cfg(face_folder, tmp_path / "c", 1), progress=False)
    real_load = torch.load

    def load(*args, map_location=None, **kw):
        ckpt = real_load(*args, map_location=map_location, **kw)
        if map_location != "cpu":
            ckpt["rng"] = {k: v.to("meta") for k, v in ckpt["rng"].items()}
        return ckpt

    monkeypatch.setattr(torch, "load", load)
    assert train(_cfg(face_folder, tmp_path / "c", 2), resume=True, progress=False)["step"] == 2


def test_a_non_finite_loss_stops_training_with_a_clear_error(face_folder, tmp_path, monkeypatch):
    from facefill.models.deepfill_v2 import DeepFillV2

    def nan_loss(self, disc, batch, out, gan_weight):
        return out["output"].float().mean() * float("nan"), {}

    monkeypatch.setattr(DeepFillV2, "generator_loss", nan_loss)
    with pytest.raises(FloatingPointError, match=r"generator loss is not finite \(nan\) at step 1"):
        train(_cfg(face_folder, tmp_path / "n", 3), progress=False)


def test_lr_schedule_warmup_then_milestones(face_folder, tmp_path):
    cfg = TrainConfig(lr_warmup=4, lr_milestones=[6, 8], lr_gamma=0.5)
    assert [lr_factor(cfg, s) for s in range(10)] == [0.25, 0.5, 0.75, 1, 1, 1, 0.5, 0.5, 0.25, 0.25]
    assert lr_factor(cfg, 101, warmup_start=100) == 0.5 * 0.25  # warm-up counts from where a run started
    assert lr_factor(TrainConfig(), 10 ** 6) == 1.0
    # a network that began at step 7 (the critic at gan_start) skips the milestone at 6 it was not there for
    assert [lr_factor(cfg, s, since=7) for s in range(7, 10)] == [1, 0.5, 0.5]
    train(_cfg(face_folder, tmp_path / "lr", 4, lr_g=1e-3, lr_d=1e-2, lr_milestones="[2]", lr_gamma=0.1,
               gan_start=3), progress=False)
    ckpt = torch.load(tmp_path / "lr" / "checkpoint.pt", weights_only=False)
    assert ckpt["opt_g"]["param_groups"][0]["lr"] == pytest.approx(1e-4)  # steps 2 and 3 ran decayed
    assert ckpt["opt_d"]["param_groups"][0]["lr"] == pytest.approx(1e-2)  # the critic began after the milestone
    logs = [json.loads(line) for line in (tmp_path / "lr" / "log.jsonl").read_text().splitlines()]
    assert [r["lr_g"] for r in logs] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])  # the log records each step's rates
    assert logs[-1]["lr_d"] == pytest.approx(1e-2)


def test_refuses_to_overwrite_without_resume(face_folder, tmp_path):
    train(_cfg(face_folder, tmp_path / "r", 1), progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(_cfg(face_folder, tmp_path / "r", 2), progress=False)


def test_training_reduces_l1(face_folder, tmp_path):
    """Reconstruction-only training must lower the L1 error on a fixed batch of these easy images."""
    from facefill.data.faces import FaceFolder
    from facefill.registry import create_model

    train(_cfg(face_folder, tmp_path / "l", 40, gan_weight=0.0, lr_g=2e-3), progress=False)
    items = [FaceFolder(face_folder, resolution=64)[(i, 100 + i)] for i in range(6)]
    image, mask = torch.stack([i["image"] for i in items]), torch.stack([i["mask"] for i in items])
    torch.manual_seed(0)  # the loop seeds with cfg.seed = 0 before building the model
    before = create_model("deepfill_v2_tiny").eval()
    after = create_model("deepfill_v2_tiny").eval()
    after.load_state_dict(torch.load(tmp_path / "l" / "checkpoint.pt", weights_only=False)["generator"])
    with torch.no_grad():
        err = [(m(image, mask)["output"] - image).abs().mean().item() for m in (before, after)]
    assert err[1] < 0.85 * err[0], err


def test_export_then_load(face_folder, tmp_path):
    train(_cfg(face_folder, tmp_path / "e", 2), progress=False)
    folder = export(tmp_path / "e", tmp_path / "weights")
    meta = json.loads((folder / "config.json").read_text())
    assert meta["model"] == "deepfill_v2_tiny" and meta["training"]["steps"] == 2
    assert meta["frame"] == 96  # the data's image size (conftest's faces)
    # data scaled down before training (scripts/pack_device_faces.py) names the faces' native side instead
    ckpt = torch.load(tmp_path / "e" / "checkpoint.pt", weights_only=False)
    ckpt["config"]["frame"] = 256
    torch.save(ckpt, tmp_path / "e" / "checkpoint.pt")
    assert json.loads((export(tmp_path / "e", tmp_path / "w2") / "config.json").read_text())["frame"] == 256
    model = load_pretrained(folder)
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    # neither the data folder nor a frame: export refuses rather than ship weights without their window scale
    ckpt["config"].update(frame=0, data=str(tmp_path / "gone"))
    torch.save(ckpt, tmp_path / "e" / "checkpoint.pt")
    with pytest.raises(ValueError, match="side of the training faces"):
        export(tmp_path / "e", tmp_path / "w3")
    assert not (tmp_path / "w3").exists()


def test_load_a_training_run_directly(face_folder, tmp_path):
    """A run folder or its checkpoint loads as the EMA generator that export would ship (same frame, same
    weights up to fp16), so runs can be evaluated and used before exporting."""
    from facefill.pretrained import WeightsError

    train(_cfg(face_folder, tmp_path / "run", 2), progress=False)
    shipped = load_pretrained(export(tmp_path / "run", tmp_path / "weights"))
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    for source in (tmp_path / "run", tmp_path / "run" / "checkpoint.pt", str(tmp_path / "run")):
        model = facefill.load(source)
        assert model.frame == shipped.frame == 96 and not model.training
        for k, v in model.state_dict().items():
            assert torch.equal(v, ckpt["ema"][k])  # the EMA, in full precision
            assert torch.allclose(v, shipped.state_dict()[k], atol=1e-3, rtol=1e-3)
    assert any(not torch.equal(v, ckpt["generator"][k]) for k, v in ckpt["ema"].items())  # EMA, not the raw one
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="broken.pt"):
        facefill.load(tmp_path / "broken.pt")


def test_config_rejects_unknown_and_converts_types(tmp_path):
    with pytest.raises(ValueError, match="unknown config keys"):
        config.build(TrainConfig, overrides=["no_such_key=1"])
    with pytest.raises(ValueError, match="key=value"):
        config.build(TrainConfig, overrides=["steps"])
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"steps": 5, "model_args": {"resolution": 32}}))
    cfg = config.build(TrainConfig, path, ["lr_g=3e-4", "steps=7"])
    assert cfg.steps == 7 and cfg.lr_g == 3e-4 and cfg.model_args == {"resolution": 32}


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_parse_and_build_their_model(path):
    cfg = config.build(TrainConfig, path)
    model = facefill.create_model(cfg.model, **cfg.model_args)
    assert model.resolution == cfg.model_args.get("resolution", model.resolution)
    assert cfg.init_from == f"training/{cfg.model}", "a shipped config continues the committed training state"
    # ... so its generator must have the committed state's shapes (the paper-width GPU configs of glcic, hogface
    # and scfegan would have failed in load_state_dict on the lent machine, not here)
    from safetensors import safe_open

    root = Path(__file__).resolve().parents[1]
    committed = {}
    for state in sorted((root / cfg.init_from).glob("state-*.safetensors")):
        with safe_open(str(state), "pt") as f:
            for key in (k for k in f.keys() if k.startswith("generator.")):
                # a large tensor is stored flat in pieces NAME#IofN (save_state): its name counts, not its shape
                name, pieces, _ = key[len("generator."):].partition("#")
                committed[name] = None if pieces else tuple(f.get_slice(key).get_shape())
    if committed:
        own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert own.keys() == committed.keys(), f"{path.name} builds other layers than its committed state holds"
        wrong = [k for k in own if committed[k] is not None and own[k] != committed[k]]
        assert not wrong, f"{path.name} builds {wrong[0]} as {own[wrong[0]]}, the state holds {committed[wrong[0]]}"


def test_compact_state_round_trip(face_folder, tmp_path, monkeypatch):
    """save_state -> restore_state -> resume continues from (fp16-rounded) weights and the same step."""
    from facefill import registry
    from facefill.train import restore_state, save_state

    train(_cfg(face_folder, tmp_path / "s", 3), progress=False)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "shipped")
    export(tmp_path / "s", tmp_path / "shipped" / "deepfill_v2_tiny")
    save_state(tmp_path / "s", tmp_path / "state")
    restore_state(tmp_path / "state", tmp_path / "r" / "checkpoint.pt")
    a = torch.load(tmp_path / "s" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert b["step"] == 3 and b["warmup_start"] == 3 and b["opt_g"] is None
    assert b["recipe_history"] == a["recipe_history"] and a["recipe_history"][0]["step"] == 0
    for key in ("generator", "discriminator", "ema"):
        for k, v in a[key].items():
            assert torch.allclose(v.float(), b[key][k].float(), rtol=2e-3, atol=1e-4), (key, k)
    summary = train(_cfg(face_folder, tmp_path / "r2", 5, init_from=str(tmp_path / "state"), lr_warmup=10),
                    resume=True, progress=False)
    assert summary["step"] == 5
    # a model's first run: no state committed yet, so it starts from scratch
    first = train(_cfg(face_folder, tmp_path / "r3", 1, init_from=str(tmp_path / "nothing")), resume=True,
                  progress=False)
    assert first["step"] == 1


def test_compact_state_ahead_of_the_shipped_weights_keeps_its_ema(face_folder, tmp_path, monkeypatch):
    """`facefill save-state`: a state saved after the shipped weights' step carries its own EMA, so a continued
    run does not restart the average from the older shipped weights."""
    from typer.testing import CliRunner

    from facefill import registry
    from facefill.cli import app
    from facefill.train import restore_state

    train(_cfg(face_folder, tmp_path / "s", 2), progress=False)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "shipped")
    export(tmp_path / "s", tmp_path / "shipped" / "deepfill_v2_tiny")  # the weights ship at step 2
    train(_cfg(face_folder, tmp_path / "s", 5), resume=True, progress=False)  # training goes on to step 5
    result = CliRunner().invoke(app, ["save-state", str(tmp_path / "s"), "-o", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    restore_state(tmp_path / "state", tmp_path / "r" / "checkpoint.pt")
    a = torch.load(tmp_path / "s" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert b["step"] == 5
    moved = [k for k in a["ema"] if a["ema"][k].is_floating_point()
             and not torch.allclose(a["ema"][k].float(), b["ema"][k].float(), rtol=2e-3, atol=1e-4)]
    assert not moved, moved[:3]
    missing = CliRunner().invoke(app, ["save-state", str(tmp_path / "nothing"), "-o", str(tmp_path / "s2")])
    assert missing.exit_code != 0 and "no checkpoint.pt" in missing.output


def test_compact_state_of_a_model_that_ships_no_weights(face_folder, tmp_path, monkeypatch):
    """A state saved before any weights ship continues with its EMA restarted from the raw generator."""
    from facefill import registry
    from facefill.train import restore_state, save_state

    train(_cfg(face_folder, tmp_path / "s", 3), progress=False)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "nothing_shipped")
    save_state(tmp_path / "s", tmp_path / "state")
    restore_state(tmp_path / "state", tmp_path / "r" / "checkpoint.pt")
    a = torch.load(tmp_path / "s" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert any(not torch.equal(a["ema"][k], a["generator"][k]) for k in a["ema"])  # the run's EMA lagged behind
    for k, v in b["ema"].items():
        assert torch.equal(v, b["generator"][k]), k
        assert torch.allclose(v.float(), a["generator"][k].float(), rtol=2e-3, atol=1e-4), k


def test_preloaded_data_gives_the_same_training(face_folder, tmp_path):
    """preload=True (images decoded once onto the device) trains on exactly the same batches."""
    a = train(_cfg(face_folder, tmp_path / "p0", 2), progress=False)
    b = train(_cfg(face_folder, tmp_path / "p1", 2, preload=True), progress=False)
    ca = torch.load(tmp_path / "p0" / "checkpoint.pt", weights_only=False)
    cb = torch.load(tmp_path / "p1" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 2
    assert all(torch.allclose(ca["generator"][k], cb["generator"][k], atol=1e-6) for k in ca["generator"])


def test_torchrun_ddp_two_processes(face_folder, tmp_path):
    """Multi-process training through torchrun (gloo on CPU) with no code change: both ranks step together."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "facefill", "train",
           "--model", "deepfill_v2_tiny", "--data", str(face_folder), "--out", str(tmp_path / "ddp"), "--steps", "2",
           "--set", "batch_size=2", "--set", "amp=off", "--set", "log_every=1"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, _rank_errors(done.stderr)
    assert done.stdout.count("stopped at step 2") == 1
    ckpt = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 2 and ckpt["images_seen"] == 2 * 2 * 2
    assert len(ckpt["rng_ranks"]) == 2 and all(set(r) >= {"torch"} for r in ckpt["rng_ranks"])


def _rank_errors(stderr: str) -> str:
    """What the ranks themselves printed (a C++ abort's message, a traceback), without progress bars; torchrun's
    own summary, which names only the exit signals, comes after it and alone fills a short tail."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and "it/s" not in line]
    return "\n".join(lines)[-6000:]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank processes through /proc")
def test_torchrun_sigterm_to_one_rank_stops_all_with_a_checkpoint(face_folder, tmp_path):
    """A SIGTERM that reaches one rank only (a scheduler, a user's kill) stops every rank at the same step and
    saves, instead of killing that rank and leaving the others hanging in a collective."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "facefill", "train",
           "--model", "deepfill_v2_tiny", "--data", str(face_folder), "--out", str(out), "--steps", "100000",
           "--set", "batch_size=2", "--set", "amp=off", "--set", "log_every=1", "--set", "ckpt_every=100000"]
    run = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not ((out / "log.jsonl").exists() and (out / "log.jsonl").read_text().count("\n") >= 2):
            assert run.poll() is None and time.time() < deadline, "training did not start"
            time.sleep(0.2)
        workers = [p for c in _children(run.pid) for p in [c, *_children(c)]]
        rank1 = [p for p in workers if b"\0RANK=1\0" in b"\0" + Path(f"/proc/{p}/environ").read_bytes()]
        assert len(rank1) == 1, workers
        os.kill(rank1[0], signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, _rank_errors(stderr)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert f"stopped at step {ckpt['step']}" in stdout and ckpt["images_seen"] == ckpt["step"] * 2 * 2


def test_sample_grid_layout(tmp_path):
    """One row per sample, five panels across, not transposed."""
    import numpy as np
    from PIL import Image

    from facefill.registry import create_model
    from facefill.train import sample_grid

    image = torch.zeros(2, 3, 64, 64)
    image[:, 0, :32] = 1  # the top half of each truth is red
    sample_grid(create_model("deepfill_v2_tiny"), {"image": image, "mask": torch.zeros(2, 1, 64, 64)},
                tmp_path / "g.png")
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (128, 320, 3)
    truth = grid[64:, 256:]  # second sample, fifth panel
    assert (truth[:32, :, 0] == 255).all() and (truth[32:, :, 0] == 128).all()


def test_recipe_history_records_changes_across_resumes(face_folder, tmp_path):
    """A resume with a different recipe appends its changes; export ships the history; unchanged resumes add none."""
    from facefill.train import update_history

    train(_cfg(face_folder, tmp_path / "h", 2), progress=False)
    train(_cfg(face_folder, tmp_path / "h", 3), resume=True, progress=False)  # steps only: not a recipe change
    summary = train(_cfg(face_folder, tmp_path / "h", 4, lr_g=5e-5, gan_start=3, batch_size=3), resume=True,
                    progress=False)
    assert summary["images_seen"] == 2 * 2 + 2 + 3  # counted across the batch-size change, not step x batch
    history = torch.load(tmp_path / "h" / "checkpoint.pt", weights_only=False)["recipe_history"]
    assert [h["step"] for h in history] == [0, 3]
    assert history[0]["changes"]["lr_g"] == _cfg(face_folder, tmp_path, 1).lr_g
    assert history[1]["changes"] == {"lr_g": 5e-5, "gan_start": 3, "batch_size": 3}
    meta = json.loads((export(tmp_path / "h", tmp_path / "w") / "config.json").read_text())
    assert meta["training"]["recipe_history"] == history and meta["training"]["recipe"]["lr_g"] == 5e-5
    assert meta["training"]["images_seen"] == 9
    # a second change at the same step merges into one entry; going back to an earlier value is a change
    merged = update_history(history, 3, {**history[0]["changes"], "lr_g": 1e-5, "gan_start": 3, "batch_size": 3})
    assert merged[-1] == {"step": 3, "changes": {"lr_g": 1e-5, "gan_start": 3, "batch_size": 3}} and len(merged) == 2
    back = update_history(history, 4, history[0]["changes"])
    first = history[0]["changes"]
    assert back[-1] == {"step": 4, "changes": {k: first[k] for k in ("lr_g", "gan_start", "batch_size")}}


def _fake_run(folder: Path, model: str = "glcic_tiny", seed: int = 3) -> dict:
    """A run folder whose checkpoint.pt holds a model's generator and discriminator (trained weights need not be)."""
    torch.manual_seed(seed)
    gen = facefill.create_model(model)
    disc = gen.build_discriminator()
    cfg = config.to_dict(TrainConfig(model=model, gan_weight=0.1, gan_start=0, seed=seed))
    ckpt = {"generator": gen.state_dict(), "discriminator": disc.state_dict(), "ema": gen.state_dict(),
            "opt_g": None, "opt_d": None, "step": 10, "config": cfg, "rng": {"torch": torch.get_rng_state()},
            "train_seconds": 5.0, "images_seen": 80, "hardware": ["test"], "recipe_history": []}
    folder.mkdir(parents=True)
    torch.save(ckpt, folder / "checkpoint.pt")
    return ckpt


def test_compact_state_shards_stay_within_the_limit(tmp_path, monkeypatch):
    """Every shard file (header included) stays within the limit, a tensor larger than a shard is split and
    joined again, values beyond fp16's range stay finite, and a state with a shard missing is refused."""
    from facefill import train as train_mod
    from facefill.train import restore_state, save_state

    ckpt = _fake_run(tmp_path / "run")
    key = next(k for k in ckpt["generator"] if k.endswith("running_var"))
    ckpt["generator"][key][0] = 1e6
    torch.save(ckpt, tmp_path / "run" / "checkpoint.pt")
    monkeypatch.setattr(train_mod, "STATE_SHARD_BYTES", 48 * 2**10)  # smaller than the largest tensor + header
    state = save_state(tmp_path / "run", tmp_path / "state")
    shards = sorted(state.glob("state-*.safetensors"))
    assert len(shards) > 3 and all(p.stat().st_size <= 48 * 2**10 for p in shards)
    restore_state(state, tmp_path / "r" / "checkpoint.pt")
    back = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert back["generator"][key][0] == 1e6
    for part in ("generator", "discriminator"):
        for k, v in ckpt[part].items():
            assert torch.allclose(v.float(), back[part][k].float(), rtol=1e-3, atol=1e-4), (part, k)
    shards[1].unlink()
    with pytest.raises(ValueError, match="incomplete"):
        restore_state(state, tmp_path / "r2" / "checkpoint.pt")
    monkeypatch.setattr(train_mod, "STATE_SHARD_BYTES", 12 * 2**20)  # fewer shards: the stale ones go
    assert [p.name for p in save_state(tmp_path / "run", state).glob("state-*")] == ["state-000.safetensors"]


def test_a_failed_state_export_keeps_the_previous_state(tmp_path, monkeypatch):
    import safetensors.torch

    from facefill import train as train_mod
    from facefill.train import save_state

    _fake_run(tmp_path / "run")
    monkeypatch.setattr(train_mod, "STATE_SHARD_BYTES", 64 * 2**10, raising=False)
    state = save_state(tmp_path / "run", tmp_path / "state")
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    real, calls = safetensors.torch.save_file, []

    def fails_on_the_last_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) == len(before):
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    _fake_run(tmp_path / "run2", seed=4)
    monkeypatch.setattr(safetensors.torch, "save_file", fails_on_the_last_shard)
    with pytest.raises(OSError):
        save_state(tmp_path / "run2", state)
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before


def test_resumed_adam_moments_are_fresh_aligned_tensors():
    """Tensors unpickled by torch.load may start at any offset; AVX-512 kernels then round their head differently
    and a resume drifted ~1e-6 off the uninterrupted run (test_train_resume_is_exact failed one run in two)."""
    from facefill.train import _fresh

    view = torch.arange(40, dtype=torch.float32)[1:]  # 4 bytes past an aligned start
    assert view.data_ptr() % 64 != 0
    fresh = _fresh(view)
    assert fresh.data_ptr() % 64 == 0 and torch.equal(fresh, view) and fresh.data_ptr() != view.data_ptr()
    assert _fresh(3) == 3
