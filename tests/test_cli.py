"""The command line end to end, with the tiny model's weights folder standing in for shipped weights."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facefill.cli import app

runner = CliRunner()


def _pair(folder, name="face", size=(80, 60)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{name}.png")
    m = np.zeros((size[1], size[0]), np.uint8)
    m[10:30, 20:50] = 255
    Image.fromarray(m).save(folder / f"{name}_mask.png")
    return folder / f"{name}.png", folder / f"{name}_mask.png"


def test_help_is_fast_and_lazy():
    code = "import sys, facefill.cli; assert 'torch' not in sys.modules, 'torch imported at CLI start'"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "inpaint" in result.output and "demo" in result.output


def test_models_lists_registry():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "[ready    ]" in lines["deepfill_v2"] and "[ready    ]" in lines["telea"]  # shipped / needs no weights
    assert "[untrained]" in lines["deepfill_v2_tiny"]


def test_inpaint_file_round_trip(tmp_path, tiny_weights):
    image, mask = _pair(tmp_path)
    out = tmp_path / "out.png"
    result = runner.invoke(app, ["inpaint", str(image), "--mask", str(mask), "-o", str(out),
                                 "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    a, b, m = np.asarray(Image.open(image)), np.asarray(Image.open(out)), np.asarray(Image.open(mask)) > 0
    assert a.shape == b.shape and np.array_equal(a[~m], b[~m]) and not np.array_equal(a[m], b[m])
    args = ["inpaint", str(image), "--mask", str(mask), "--model", str(tiny_weights), "-o"]
    assert runner.invoke(app, args + [str(tmp_path / "bf16.png"), "--amp", "bf16"]).exit_code == 0
    c = np.asarray(Image.open(tmp_path / "bf16.png"))
    assert np.array_equal(a[~m], c[~m]) and np.abs(c.astype(int) - b)[m].mean() < 3
    bad = runner.invoke(app, args + [str(tmp_path / "x.png"), "--amp", "fp16"])
    assert bad.exit_code == 2 and "amp must be one of" in bad.output and not (tmp_path / "x.png").exists()


def test_inpaint_folder(tmp_path, tiny_weights):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for name in ("a", "b"):
        img, m = _pair(tmp_path / "tmp", name)
        images.mkdir(exist_ok=True)
        masks.mkdir(exist_ok=True)
        img.rename(images / f"{name}.png")
        m.rename(masks / f"{name}.png")
    result = runner.invoke(app, ["inpaint", str(images), "--mask", str(masks), "-o", str(tmp_path / "out"),
                                 "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("problem", ["size", "truncated", "not_image", "missing", "bad_output"])
def test_inpaint_bad_input_fails_cleanly(tmp_path, tiny_weights, problem):
    image, mask = _pair(tmp_path)
    out = tmp_path / "out.png"
    if problem == "size":
        Image.new("L", (10, 10), 255).save(mask)
    elif problem == "truncated":
        data = image.read_bytes()
        image.write_bytes(data[: len(data) // 2])
    elif problem == "not_image":
        mask.write_text("this is not an image")
    elif problem == "missing":
        image = tmp_path / "nope.png"
    elif problem == "bad_output":
        out = tmp_path / "no_such_dir" / "out.png"
    result = runner.invoke(app, ["inpaint", str(image), "--mask", str(mask), "-o", str(out),
                                 "--model", str(tiny_weights)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.png")]  # no temp file left
    if problem == "size":
        assert "--resize-mask" in result.output
        ok = runner.invoke(app, ["inpaint", str(image), "--mask", str(mask), "-o", str(out),
                                 "--model", str(tiny_weights), "--resize-mask"])
        assert ok.exit_code == 0 and out.exists()


def test_edit_offers_and_takes_resize_mask(tmp_path, tiny_weights):
    image, mask = _pair(tmp_path)
    small = np.zeros((30, 40), np.uint8)
    small[5:15, 10:25] = 255
    Image.fromarray(small).save(mask)
    out = tmp_path / "out.png"
    args = ["edit", str(image), "--mask", str(mask), "-o", str(out), "--model", str(tiny_weights), "--align", "off"]
    bad = runner.invoke(app, args)
    assert bad.exit_code == 2 and "--resize-mask" in bad.output and not out.exists()
    ok = runner.invoke(app, args + ["--resize-mask"])
    assert ok.exit_code == 0, ok.output
    assert Image.open(out).size == (80, 60)


def test_inpaint_and_demo_with_an_output_that_cannot_be_made(tmp_path, tiny_weights):
    image, mask = _pair(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    image.rename(tmp_path / "images" / "a.png")
    mask.rename(tmp_path / "masks" / "a.png")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    result = runner.invoke(app, ["inpaint", str(tmp_path / "images"), "--mask", str(tmp_path / "masks"),
                                 "-o", str(a_file), "--model", "telea"])
    assert result.exit_code == 2 and "error:" in result.output and "cannot create" in result.output
    result = runner.invoke(app, ["demo", "-o", str(a_file), "--model", "telea"])
    assert result.exit_code == 2 and "cannot create" in result.output


def test_demo_writes_all_pictures_or_none(tmp_path):
    out = tmp_path / "demo"
    (out / "side_by_side.png").mkdir(parents=True)  # the last of the four cannot be written
    result = runner.invoke(app, ["demo", "-o", str(out), "--model", "telea"])
    assert result.exit_code == 2 and "error:" in result.output and "side_by_side.png" in result.output
    assert [p.name for p in out.iterdir()] == ["side_by_side.png"]


def test_unknown_model_is_a_clear_error(tmp_path):
    image, mask = _pair(tmp_path)
    result = runner.invoke(app, ["inpaint", str(image), "--mask", str(mask), "-o", str(tmp_path / "o.png"),
                                 "--model", "nope"])
    assert result.exit_code == 2 and "unknown model 'nope'" in result.output


def test_demo_writes_side_by_side(tmp_path, tiny_weights):
    result = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo"), "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    side = Image.open(tmp_path / "demo" / "side_by_side.png")
    assert side.size == (512 * 3, 512)
    inp, res = np.asarray(Image.open(tmp_path / "demo" / "input.png")), np.asarray(Image.open(tmp_path / "demo" / "result.png"))
    hole = np.asarray(Image.open(tmp_path / "demo" / "mask.png")) > 127
    assert np.array_equal(inp[~hole], res[~hole]) and hole.mean() > 0.005


def test_masks_command(tmp_path):
    result = runner.invoke(app, ["masks", "-o", str(tmp_path / "m"), "-n", "3", "--size", "64"])
    assert result.exit_code == 0 and "hole ratio" in result.output
    assert len(list((tmp_path / "m").glob("mask_*.png"))) == 3 and (tmp_path / "m" / "sheet.png").exists()
    result = runner.invoke(app, ["masks", "-o", str(tmp_path / "e"), "-n", "1", "--size", "64", "--evaluation"])
    assert result.exit_code == 0 and len(list((tmp_path / "e").glob("*pct_000.png"))) == 5


def test_train_and_export_via_cli(tmp_path, face_folder):
    run = tmp_path / "run"
    args = ["train", "--model", "deepfill_v2_tiny", "--data", str(face_folder), "--out", str(run), "--steps", "2",
            "--set", "batch_size=2", "--set", "amp=off"]
    assert runner.invoke(app, args).exit_code == 0
    resumed = runner.invoke(app, args[:-6] + ["--steps", "3", "--set", "batch_size=2", "--resume"])
    assert resumed.exit_code == 0 and "step 3" in resumed.output
    bad = runner.invoke(app, args + ["--set", "nonsense=1"])
    assert bad.exit_code == 2 and "unknown config keys" in bad.output
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- weights:deepfill_v2_tiny:start -->\nold\n<!-- weights:deepfill_v2_tiny:end -->\n")
    exported = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "w"), "--readme", str(readme)])
    assert exported.exit_code == 0 and (tmp_path / "w" / "model.safetensors").exists()
    # the resume left amp at its default ("auto" instead of "off"): the README says when the recipe changed
    assert "for **3 steps**" in readme.read_text() and "from step 2: amp=auto" in readme.read_text()


def test_guidance_cache_command(tmp_path, face_folder):
    args = ["guidance-cache", "--set", "model=scfegan_tiny", "--set", f"data={face_folder}", "--device", "cpu",
            "--limit", "2"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "guidance_cache" in refused.output
    done = runner.invoke(app, args + ["--set", f"guidance_cache={tmp_path / 'g'}"])
    assert done.exit_code == 0 and "computed 2 of 2" in done.output, done.output
    assert len(list((tmp_path / "g").glob("*.color.png"))) == 2
    unguided = runner.invoke(app, args[:1] + ["--set", "model=deepfill_v2_tiny", "--set", f"data={face_folder}",
                                              "--set", f"guidance_cache={tmp_path / 'g'}"])
    assert unguided.exit_code == 2 and "nothing to precompute" in unguided.output


def test_inpaint_folder_refuses_outputs_that_collide(tmp_path, tiny_weights):
    """Folder mode writes OUTPUT/<stem>.png: a.jpg and a.png would silently overwrite each other's result, and an
    output folder holding the inputs would overwrite them; both are refused before anything is written."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    img, m = _pair(tmp_path / "tmp", "a")
    images.mkdir()
    masks.mkdir()
    Image.open(img).save(images / "a.png")
    Image.open(img).save(images / "a.jpg")
    Image.open(m).save(masks / "a.png")
    args = ["inpaint", str(images), "--mask", str(masks), "--model", str(tiny_weights), "-o"]
    result = runner.invoke(app, args + [str(tmp_path / "out")])
    assert result.exit_code == 2 and "would both be written" in result.output, result.output
    assert not (tmp_path / "out").exists()
    (images / "a.jpg").unlink()
    before = (images / "a.png").read_bytes()
    result = runner.invoke(app, args + [str(images)])
    assert result.exit_code == 2 and "would overwrite an input" in result.output, result.output
    assert (images / "a.png").read_bytes() == before


@pytest.mark.parametrize("command", ["inpaint", "edit"])
@pytest.mark.parametrize("threshold", ["0", "1.5", "-1"])
def test_bad_threshold_is_a_clear_error(tmp_path, command, threshold):
    image, mask = _pair(tmp_path)
    out = tmp_path / "out.png"
    result = runner.invoke(app, [command, str(image), "--mask", str(mask), "-o", str(out), "--model", "telea",
                                 "--threshold", threshold])
    assert result.exit_code == 2 and "--threshold must be in (0, 1]" in result.output, result.output
    assert not out.exists()


def test_export_and_device_errors_are_clean(tmp_path, tiny_weights):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    broken = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "w")])
    assert broken.exit_code == 2 and "not a facefill training checkpoint" in broken.output
    assert not (tmp_path / "w").exists()
    img, mask = _pair(tmp_path / "in")
    args = ["inpaint", str(img), "-m", str(mask), "-o", str(tmp_path / "out.png"), "--model", str(tiny_weights)]
    bad_device = runner.invoke(app, args + ["--device", "gpu"])
    assert bad_device.exit_code == 2 and "not a torch device" in bad_device.output
    (tiny_weights / "model.safetensors").write_bytes(b"garbage")
    corrupt = runner.invoke(app, args)
    assert corrupt.exit_code == 2 and "cannot be read as safetensors" in corrupt.output
