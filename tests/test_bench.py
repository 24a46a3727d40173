"""The speed benchmark at tiny sizes (numbers are not checked, only that they are sane and consistent), the LaMa
speed reference (size, forward, refusal to load) and the ``facefill bench`` command end to end."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import facefill
from facefill.cli import app
from facefill.evaluation import bench
from facefill.pretrained import WeightsError
from facefill.registry import create_model

LINUX_PROC = Path("/proc/self/status").is_file()


@pytest.fixture(scope="module")
def records():
    return bench.benchmark(["deepfill_v2_tiny", "telea", "lama_reference"], size=64, batches=(1, 2), repeats=1,
                           warmup=0, threads=1)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_records_are_sane(records):
    keys = {"model", "device", "path", "batch", "size", "resolution", "params", "weights", "precision",
            "ms_per_image", "images_per_s", "peak_mem_mb", "windows", "vs_reference"}
    assert all(set(r) == keys for r in records)
    got = {(r["model"], r["path"], r["batch"]) for r in records}
    aligned = {("deepfill_v2_tiny", "inpaint+align", 1), ("lama_reference", "inpaint+align", 1)}
    assert got == {("deepfill_v2_tiny", "forward", 1), ("deepfill_v2_tiny", "forward", 2),
                   ("deepfill_v2_tiny", "inpaint", 1), ("telea", "inpaint", 1), ("telea", "inpaint", 2),
                   ("lama_reference", "forward", 1), ("lama_reference", "forward", 2),
                   ("lama_reference", "inpaint", 1)} | (aligned if bench.dlib_missing() is None else set())
    for r in records:
        assert r["device"] == "cpu" and r["size"] == 64
        assert r["ms_per_image"] > 0 and r["images_per_s"] == pytest.approx(1000 / r["ms_per_image"])
        if LINUX_PROC:
            assert r["peak_mem_mb"] is not None and r["peak_mem_mb"] >= 0
    tiny = next(r for r in records if r["model"] == "deepfill_v2_tiny")
    assert tiny["params"] == _params(create_model("deepfill_v2_tiny")) and tiny["resolution"] == 64
    assert tiny["weights"] == "untrained"
    telea = next(r for r in records if r["model"] == "telea")
    assert telea["params"] == 0 and telea["resolution"] is None and telea["weights"] == "none"
    assert telea["precision"] == "-" and tiny["precision"] in ("fp32", "bf16")
    meta = records.meta
    assert meta["threads"] == 1 and meta["machine"]["torch_threads"] == 1  # set for the run (restored after)
    assert meta["machine"]["torch"] == torch.__version__ and meta["machine"]["cpu"]
    assert 0.1 <= meta["hole_ratio"] <= 0.35


def test_ratios_against_lama_are_measured(records):
    ref = {(r["path"], r["batch"]): r["ms_per_image"] for r in records if r["model"] == "lama_reference"}
    for r in records:
        key = (r["path"], r["batch"])
        if key in ref:
            assert r["vs_reference"] == pytest.approx(ref[key] / r["ms_per_image"])
        else:  # telea's batch-2 sequential run has no LaMa counterpart (LaMa's inpaint path is batch 1)
            assert r["vs_reference"] is None
    text = bench.report(records)
    assert "reference" in text and ("x faster" in text or "x slower" in text)
    assert "Untrained (random) weights for deepfill_v2_tiny, lama_reference" in text
    assert "torch " + torch.__version__ in text


def test_ratio_needs_the_same_setting():
    common = {"device": "cpu", "path": "forward", "size": 64}
    rec = [{"model": "lama_reference", "batch": 1, "ms_per_image": 30.0, **common},
           {"model": "a", "batch": 1, "ms_per_image": 10.0, **common},
           {"model": "b", "batch": 8, "ms_per_image": 10.0, **common}]
    bench.add_ratios(rec)
    assert rec[1]["vs_reference"] == pytest.approx(3.0) and rec[2]["vs_reference"] is None


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="batch"):
        bench.benchmark(["telea"], size=64, batches=(0,))
    with pytest.raises(KeyError, match="unknown model"):
        bench.benchmark(["nope"], size=64, batches=(1,))
    with pytest.raises(ValueError, match="amp must be one of"):
        bench.benchmark(["telea"], size=64, batches=(1,), amp="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            bench.benchmark(["telea"], size=64, devices=("cuda",))


@pytest.mark.skipif(not LINUX_PROC, reason="peak RSS is read from /proc (Linux)")
@pytest.mark.parametrize("method", ["hwm", "sampler"])
def test_peak_memory_sees_an_allocation(monkeypatch, method):
    if method == "sampler":
        monkeypatch.setattr(bench, "_CLEAR_REFS", Path("/nonexistent/clear_refs"))
    with bench.PeakMemory("cpu") as mem:
        block = np.ones(100 * 2**20 // 8)  # 100 MiB, touched
        time.sleep(0.05)
        del block
    assert ("VmHWM" if method == "hwm" else "sampled") in mem.method
    assert 90 <= mem.mb <= 200


# --- the LaMa speed reference -------------------------------------------------------------------------------

def test_lama_reference_is_big_lama_sized_and_runs():
    torch.manual_seed(0)
    model = create_model("lama_reference", random_weights=True).eval()
    # Big-LaMa's generator: ~51M parameters (Suvorov et al., WACV'22); ours at the published config
    assert 50.5e6 < _params(model) < 51.5e6
    assert _params(model) == 50_975_875
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 16:40, 8:48] = 1
    with torch.no_grad():
        out = model(image, mask)["output"]
        other = model(torch.where(mask.bool(), -image, image), mask)["output"]
    assert out.shape == image.shape and torch.isfinite(out).all() and out.abs().max() <= 1
    assert torch.allclose(out, other)  # hole pixels are not seen


def test_lama_reference_runs_under_bf16_autocast():
    # what `facefill bench` does where amp="auto" picks bf16 (a bf16 CPU, a GPU): torch has no bf16 FFT
    torch.manual_seed(0)
    model = create_model("lama_reference", random_weights=True, ngf=8, n_blocks=2).eval()
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 8:20, 4:24] = 1
    with torch.no_grad():
        reference = model(image, mask)["output"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(image, mask)["output"]
    assert out.shape == image.shape and torch.isfinite(out).all()
    assert (out.float() - reference).abs().max() < 0.1  # bf16 rounding, not another network


def test_lama_reference_is_not_an_inpainting_model():
    with pytest.raises(WeightsError, match="speed reference only"):
        facefill.load("lama_reference")
    with pytest.raises(ValueError, match="random_weights=True"):
        create_model("lama_reference")
    info = {i.name: i for i in facefill.list_models()}["lama_reference"]
    assert not info.has_weights and "speed reference" in info.description


# --- the command line ---------------------------------------------------------------------------------------

def test_bench_command_end_to_end(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\ntail\n")
    out_json = tmp_path / "bench.json"
    args = ["bench", "--model", "deepfill_v2_tiny", "--model", "telea", "--size", "64", "--batch", "1,2",
            "--repeats", "1", "--warmup", "0", "--threads", "1", "--device", "cpu", "--json", str(out_json),
            "--readme", str(readme)]
    monkeypatch.setattr(sys, "argv", ["facefill"] + args)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| deepfill_v2_tiny | forward | cpu | 2 | 64 | 64 |" in result.output and "Machine:" in result.output
    assert "| untrained | fp32 |" in result.output or "| untrained | bf16 |" in result.output
    data = json.loads(out_json.read_text())
    assert len(data["records"]) == 5 + (bench.dlib_missing() is None) and data["meta"]["size"] == 64
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- bench:end -->\n\ntail\n")
    assert "Generated by `facefill bench --model deepfill_v2_tiny" in text and "| telea | inpaint |" in text


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "telea", "--batch", "1,x"], "--batch"),
    (["--model", "telea", "--amp", "half"], "amp must be one of"),
    (["--model", "telea", "--readme", "NOBLOCK"], "no <!-- bench:start -->"),
])
def test_bench_command_errors(tmp_path, args, message):
    noblock = tmp_path / "README.md"
    noblock.write_text("# no block here\n")
    args = [str(noblock) if a == "NOBLOCK" else a for a in args]
    base = ["bench", "--size", "32", "--batch", "1", "--repeats", "1", "--warmup", "0"]
    result = CliRunner().invoke(app, base + args)  # a second --batch overrides the first
    assert result.exit_code == 2, result.output
    assert message in result.output
