"""Every registered trainable model, at its tiny size: shapes, range, NaN, gradients, save/load, determinism;
and every shipped model through the public API."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from facefill.layers import ContextualAttention
from facefill.pretrained import WeightsError, load_pretrained, save_pretrained
from facefill.registry import WEIGHTS_DIR, create_model, list_models, model_names

TINY = [n for n in model_names() if n.endswith("_tiny")]


def _inputs(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    res = model.resolution
    image = torch.rand(batch, 3, res, res, generator=g) * 2 - 1
    mask = torch.zeros(batch, 1, res, res)
    mask[:, :, res // 4: res // 2, res // 3: 3 * res // 4] = 1
    return image, mask


def test_registry_lists_and_rejects_unknown():
    names = [m.name for m in list_models()]
    assert "deepfill_v2" in names and "deepfill_v2_tiny" in names
    with pytest.raises(KeyError, match="available: .*deepfill_v2"):
        create_model("no_such_model")


@pytest.mark.parametrize("name", TINY)
def test_forward_shape_range_no_nan(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    image, mask = _inputs(model)
    out = model(image, mask)
    assert out["output"].shape == image.shape
    assert torch.isfinite(out["output"]).all()
    assert out["output"].abs().max() <= 1.0


@pytest.mark.parametrize("name", TINY)
def test_output_ignores_hole_pixels(name):
    """The model must not see what is under the hole (it is zeroed at the input)."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    image, mask = _inputs(model)
    other = torch.where(mask.bool(), -image, image)
    with torch.no_grad():
        assert torch.allclose(model(image, mask)["output"], model(other, mask)["output"])


@pytest.mark.parametrize("name", ["deepfill_v1", "deepfill_v2", "glcic", "hogface", "scfegan"])
def test_freshly_built_full_model_sees_its_input(name):
    """At initialisation the output must depend on the known pixels (facefill.layers.init): with PyTorch's default
    initialisation DeepFill's ~20 unnormalised convolutions let ~1e-8 of the input through."""
    torch.manual_seed(0)
    model = create_model(name, resolution=128).train()  # batch statistics for the models with batch norm
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 128, 128)
    mask[:, :, 40:88, 40:88] = 1
    with torch.no_grad():
        change = (model(image, mask)["output"] - model(image.flip(0), mask)["output"]).abs().mean()
    assert change > 1e-2, f"{name}: the output barely depends on the input at initialisation ({change:.2e})"


@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name)
    disc = model.build_discriminator()
    image, mask = _inputs(model)
    batch = {"image": image, "mask": mask}
    out = model(image, mask)
    out["composite"] = out["output"] * mask + image * (1 - mask)
    loss, logs = model.generator_loss(disc, batch, out, gan_weight=1.0)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"
    assert {"l1", "g_adv"} <= set(logs)
    d_loss, d_logs = model.discriminator_loss(disc, batch, out)
    d_loss.backward()
    assert all(p.grad is not None for p in disc.parameters())
    assert d_loss.item() > 0


@pytest.mark.parametrize("name", TINY)
def test_save_load_round_trip_identical(name, tmp_path):
    torch.manual_seed(1)
    model = create_model(name).eval()
    folder = save_pretrained(model, tmp_path / name, dtype=torch.float32)
    loaded = load_pretrained(folder)
    image, mask = _inputs(model)
    with torch.no_grad():
        assert torch.equal(model(image, mask)["output"], loaded(image, mask)["output"])


def test_same_seed_same_model():
    torch.manual_seed(3)
    a = create_model("deepfill_v2_tiny")
    torch.manual_seed(3)
    b = create_model("deepfill_v2_tiny")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_strict_loading_fails_clearly(tmp_path):
    folder = save_pretrained(create_model("deepfill_v2_tiny"), tmp_path / "w")
    config = (folder / "config.json").read_text().replace('"cnum": 8', '"cnum": 16')
    (folder / "config.json").write_text(config)
    with pytest.raises(WeightsError, match="do not fit deepfill_v2_tiny"):
        load_pretrained(folder)
    with pytest.raises(WeightsError, match="no config.json"):
        from facefill.pretrained import read_config

        read_config(tmp_path)


def test_paper_width_parameter_count():
    """cnum=48 must give the authors' ~4.1M-parameter generator (gen_conv splits channels into feature/gate)."""
    n = sum(p.numel() for p in create_model("deepfill_v2", cnum=48).parameters())
    assert 3.9e6 < n < 4.2e6, n


def test_contextual_attention_copies_from_background():
    """A hole whose features equal a known patch must be reconstructed from it, and never from hole patches."""
    torch.manual_seed(0)
    ca = ContextualAttention(rate=2, softmax_scale=50.0, fuse=False)
    b = torch.randn(1, 4, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 1
    f = b.clone()
    y, flow = ca(f, b, mask)
    assert y.shape == b.shape and flow.shape == (1, 2, 8, 8)
    # outside the hole every position matches itself: offsets zero where the 3x3 patch is hole-free
    assert (flow[0, :, 0, 0] == 0).all() and (flow[0, :, 7, 7] == 0).all()
    # inside the hole, the best match must point out of the hole
    cy, cx = 3, 3  # cell (3,3) at 1/2 scale covers pixels 6..7, inside the hole
    ty, tx = cy + int(flow[0, 0, cy, cx]), cx + int(flow[0, 1, cy, cx])
    assert not (1 <= ty <= 4 and 1 <= tx <= 4)  # target patch (3x3 cells around) holds no hole cell
    full = torch.ones_like(mask)
    y_full, _ = ca(f, b, full)
    assert torch.isfinite(y_full).all()


def test_contextual_attention_matches_in_fp32_under_bf16_autocast():
    """The GPU loop's bf16 autocast must not round the cosine scores (then scaled by 10) before the softmax."""
    torch.manual_seed(0)
    ca = ContextualAttention(rate=2, softmax_scale=10.0, fuse=True)
    b = torch.randn(2, 16, 32, 32)
    f = b + 0.3 * torch.randn_like(b)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 10:26] = 1
    y, flow = ca(f, b, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_amp, flow_amp = ca(f, b, mask)
    assert torch.equal(flow, flow_amp)
    assert (y_amp.float() - y).abs().max() < 1e-5


def test_fp16_weights_keep_values_beyond_its_range(tmp_path):
    """fp16 tops out at 65504: a tensor with a larger value is written in fp32, not as inf; the others in fp16."""
    from safetensors.torch import load_file

    model = create_model("deepfill_v2_tiny")
    key = next(k for k in model.state_dict() if k.endswith("weight"))
    with torch.no_grad():
        model.state_dict()[key].view(-1)[0] = 1e5
    with pytest.warns(UserWarning, match="beyond"):
        folder = save_pretrained(model, tmp_path / "w")
    stored = load_file(str(folder / "model.safetensors"))
    assert stored[key].dtype == torch.float32 and stored[key].view(-1)[0] == 1e5
    assert all(v.dtype == torch.float16 for k, v in stored.items() if k != key and v.is_floating_point())
    loaded = load_pretrained(folder)
    assert all(torch.isfinite(v).all() for v in loaded.state_dict().values())
    with torch.no_grad():
        model.state_dict()[key].view(-1)[0] = float("nan")
    with pytest.raises(WeightsError, match="non-finite"):
        save_pretrained(model, tmp_path / "nan")


def test_a_failed_save_leaves_the_previous_weights(tmp_path, monkeypatch):
    from facefill import pretrained

    folder = save_pretrained(create_model("deepfill_v2_tiny"), tmp_path / "w")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(TypeError):  # a config that cannot be written: nothing is replaced
        save_pretrained(create_model("deepfill_v2_tiny", cnum=16), folder, extra={"frame": object()})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pretrained, "save_file", disk_full)
    with pytest.raises(OSError):
        save_pretrained(create_model("deepfill_v2_tiny", cnum=16), folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no half-written files, no temp files
    load_pretrained(folder)


@pytest.mark.parametrize("case", ["no_safetensors", "corrupt", "cut_short", "not_json", "a_list", "unknown_model",
                                  "unknown_argument", "no_config", "empty_folder"])
def test_broken_weights_folders_fail_clearly(tmp_path, case):
    import json
    import re

    folder = save_pretrained(create_model("deepfill_v2_tiny"), tmp_path / "w")
    weights, config = folder / "model.safetensors", folder / "config.json"
    if case == "no_safetensors":
        weights.unlink()
    elif case == "corrupt":
        weights.write_bytes(b"garbage" * 10)
    elif case == "cut_short":
        weights.write_bytes(weights.read_bytes()[:5000])
    elif case == "not_json":
        config.write_text("{oops")
    elif case == "a_list":
        config.write_text("[1, 2]")
    elif case == "unknown_model":
        config.write_text(json.dumps({"model": "no_such_model", "config": {}}))
    elif case == "unknown_argument":
        config.write_text(json.dumps({"model": "deepfill_v2_tiny", "config": {"bogus": 1}}))
    elif case == "no_config":
        config.write_text(json.dumps({"model": "deepfill_v2_tiny"}))
    elif case == "empty_folder":
        weights.unlink()
        config.unlink()
    with pytest.raises(WeightsError, match=re.escape(str(folder))):
        load_pretrained(folder)


def test_an_unusable_device_is_a_clear_error(tmp_path):
    folder = save_pretrained(create_model("deepfill_v2_tiny"), tmp_path / "w")
    with pytest.raises(ValueError, match="not a torch device"):
        load_pretrained(folder, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            load_pretrained(folder, device="cuda")


def test_a_registered_name_is_the_model_even_beside_a_same_named_folder(tmp_path, monkeypatch):
    """`--model deepfill_v2` run where an output folder `deepfill_v2/` (or a run of that name) lies must load the
    shipped model; the folder is loaded only when given as a path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deepfill_v2").mkdir()
    (tmp_path / "deepfill_v2" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    model = load_pretrained("deepfill_v2")
    assert isinstance(model, torch.nn.Module) and model.name == "deepfill_v2"
    for as_path in ("./deepfill_v2", tmp_path / "deepfill_v2"):
        with pytest.raises(WeightsError, match="not a facefill training checkpoint"):
            load_pretrained(as_path)


SHIPPED = [m.name for m in list_models() if m.has_weights and (WEIGHTS_DIR / m.name).is_dir()]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_loads_and_inpaints(name):
    """The weights committed in facefill/weights load through the public API and fill only the hole."""
    import facefill
    from skimage import data

    image = data.astronaut()[:200, 100:300]
    mask = np.zeros(image.shape[:2], bool)
    mask[60:110, 70:140] = True
    out = np.asarray(facefill.load(name).inpaint(image, mask, align="off"))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])  # known pixels exact
    error = np.abs(out[mask].astype(int) - image[mask]).mean()
    grey = np.abs(128 - image[mask].astype(int)).mean()
    assert error < 0.8 * grey, f"{name} fills the hole no better than flat grey ({error:.1f} vs {grey:.1f})"
