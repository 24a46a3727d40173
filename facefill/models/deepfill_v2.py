"""DeepFill v2 (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV'19).

Generator (sec. 3.3, fig. 3): every convolution is a gated convolution (eq. 1).
  Stage 1 (coarse): encoder (two stride-2 downsamplings) -> dilated convolutions (rates 2, 4, 8, 16) -> decoder.
  Stage 2 (refine): the coarse result pasted into the hole feeds two parallel encoders, one with dilated
  convolutions, one with contextual attention (Yu et al., CVPR'18); their features are concatenated and decoded.
Discriminator: SN-PatchGAN (sec. 3.2) on (image, mask[, sketch]), hinge loss (eq. 2-3).
Reconstruction: pixel-wise L1 on both stages' raw outputs, weights 1 : 1 as in the authors' code.

Optional, not in the paper (off by default): perceptual and style losses on VGG19 relu1_1..relu4_1 of the composite
(features at torchvision's input scale, summed over layers, as EdgeConnect and the partial-convolution paper),
weighted by ``perceptual_weight`` and ``style_weight``. At small compute, the adversarial loss alone teaches the
generator a periodic checkerboard texture in large holes; the style (Gram) term is the partial-convolution paper's
remedy for such artefacts.

Layer widths follow the authors' TensorFlow release: ``cnum`` is their base width (48 in the paper), and as in
their ``gen_conv`` a layer declared with ``n`` channels has ``n/2`` feature and ``n/2`` gate channels, so the
generator has ~4.1M parameters at ``cnum=48``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..inpainter import NetworkInpainter
from ..layers import ContextualAttention, GatedConv2d, GatedUpConv2d, SNPatchDiscriminator
from ..layers.vgg import perceptual_loss, shared_vgg, style_loss
from ..losses import hinge_d_loss, hinge_g_loss
from ..registry import register_model

VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def _coarse_net(in_ch: int, c: int) -> nn.Sequential:
    return nn.Sequential(
        GatedConv2d(in_ch, c, 5), GatedConv2d(c, 2 * c, 3, 2), GatedConv2d(2 * c, 2 * c, 3),
        GatedConv2d(2 * c, 4 * c, 3, 2), GatedConv2d(4 * c, 4 * c, 3), GatedConv2d(4 * c, 4 * c, 3),
        *[GatedConv2d(4 * c, 4 * c, 3, dilation=r) for r in (2, 4, 8, 16)],
        GatedConv2d(4 * c, 4 * c, 3), GatedConv2d(4 * c, 4 * c, 3),
        GatedUpConv2d(4 * c, 2 * c), GatedConv2d(2 * c, 2 * c, 3),
        GatedUpConv2d(2 * c, c), GatedConv2d(c, c // 2, 3), GatedConv2d(c // 2, 3, 3, activation=None),
    )


class DeepFillV2(NetworkInpainter):
    """DeepFill v2 generator.

    ``forward(image, mask, sketch=None)``:
      - ``image``: ``(B, 3, H, W)`` float in [-1, 1]; pixels under the hole are ignored (zeroed here).
      - ``mask``: ``(B, 1, H, W)``, 1 = hole, 0 = known.
      - ``sketch``: ``(B, 1, H, W)`` in [0, 1] (1 = line), only when built with ``sketch=True`` (``None`` = no
        lines; see ``facefill.guidance`` for user drawings given to ``inpaint``).
      H and W must be multiples of ``pad_multiple`` (8).
    Returns ``{"output": (B,3,H,W) refined raw output in [-1, 1], "coarse": stage-1 output, "flow": attention
    offsets (B,2,H/8,W/8)}``. ``output`` is not composited: callers paste it into the hole.
    """

    pad_multiple = 8

    def __init__(self, cnum: int = 48, resolution: int = 256, sketch: bool = False, disc_cnum: int = 64,
                 perceptual_weight: float = 0.0, style_weight: float = 0.0):
        super().__init__()
        self.config = dict(cnum=cnum, resolution=resolution, sketch=sketch, disc_cnum=disc_cnum,
                           perceptual_weight=perceptual_weight, style_weight=style_weight)
        self.resolution = resolution
        self.inputs = ("image", "mask", "sketch") if sketch else ("image", "mask")
        c = cnum // 2  # feature channels of a layer the authors declare with cnum outputs
        in_ch = 3 + 2 + (1 if sketch else 0)  # masked RGB, ones, mask[, sketch]
        self.coarse = _coarse_net(in_ch, c)
        self.conv_branch = nn.Sequential(
            GatedConv2d(3, c, 5), GatedConv2d(c, c, 3, 2), GatedConv2d(c, 2 * c, 3),
            GatedConv2d(2 * c, 2 * c, 3, 2), GatedConv2d(2 * c, 4 * c, 3), GatedConv2d(4 * c, 4 * c, 3),
            *[GatedConv2d(4 * c, 4 * c, 3, dilation=r) for r in (2, 4, 8, 16)],
        )
        self.attention_encoder = nn.Sequential(
            GatedConv2d(3, c, 5), GatedConv2d(c, c, 3, 2), GatedConv2d(c, 2 * c, 3),
            GatedConv2d(2 * c, 4 * c, 3, 2), GatedConv2d(4 * c, 4 * c, 3),
            GatedConv2d(4 * c, 4 * c, 3, activation="relu"),
        )
        self.attention = ContextualAttention(ksize=3, stride=1, rate=2)
        self.attention_decoder = nn.Sequential(GatedConv2d(4 * c, 4 * c, 3), GatedConv2d(4 * c, 4 * c, 3))
        self.refine_decoder = nn.Sequential(
            GatedConv2d(8 * c, 4 * c, 3), GatedConv2d(4 * c, 4 * c, 3),
            GatedUpConv2d(4 * c, 2 * c), GatedConv2d(2 * c, 2 * c, 3),
            GatedUpConv2d(2 * c, c), GatedConv2d(c, c // 2, 3), GatedConv2d(c // 2, 3, 3, activation=None),
        )

    def forward(self, image: torch.Tensor, mask: torch.Tensor, sketch: torch.Tensor | None = None) -> dict:
        mask = mask.to(image.dtype)
        known = image * (1 - mask)
        ones = torch.ones_like(mask)
        if self.config["sketch"] and sketch is None:
            sketch = torch.zeros_like(mask)
        x = [known, ones, mask] + ([sketch.to(image.dtype)] if self.config["sketch"] else [])
        coarse = torch.tanh(self.coarse(torch.cat(x, 1)))

        x = coarse * mask + known
        hallucinated = self.conv_branch(x)
        features = self.attention_encoder(x)
        mask_s = F.interpolate(mask, size=features.shape[-2:], mode="nearest")
        attended, flow = self.attention(features, features, mask_s)
        attended = self.attention_decoder(attended)
        output = torch.tanh(self.refine_decoder(torch.cat([hallucinated, attended], 1)))
        return {"output": output, "coarse": coarse, "flow": flow}

    # --- training hooks used by facefill.train -------------------------------------------------------
    def build_discriminator(self) -> nn.Module:
        return SNPatchDiscriminator(in_ch=4 + (1 if self.config["sketch"] else 0), cnum=self.config["disc_cnum"])

    def _disc_input(self, image: torch.Tensor, batch: dict) -> torch.Tensor:
        extra = [batch["sketch"]] if self.config["sketch"] else []
        return torch.cat([image, batch["mask"].to(image.dtype)] + extra, 1)

    def discriminator_loss(self, disc: nn.Module, batch: dict, out: dict) -> tuple[torch.Tensor, dict]:
        fake = out["composite"].detach()
        pair = torch.cat([self._disc_input(batch["image"], batch), self._disc_input(fake, batch)], 0)
        real_score, fake_score = disc(pair).chunk(2)
        loss = hinge_d_loss(real_score, fake_score)
        return loss, {"d_loss": loss.detach()}

    def generator_loss(self, disc: nn.Module | None, batch: dict, out: dict, gan_weight: float
                       ) -> tuple[torch.Tensor, dict]:
        target = batch["image"]
        l1 = (out["coarse"] - target).abs().mean() + (out["output"] - target).abs().mean()
        logs = {"l1": l1.detach()}
        loss = l1
        if self.config["perceptual_weight"] or self.config["style_weight"]:
            vgg = shared_vgg(VGG_LAYERS, target.device)
            fake = vgg(out["composite"])
            with torch.no_grad():
                real = vgg(target)
            perceptual = len(VGG_LAYERS) * perceptual_loss(fake, real)  # summed over layers
            style = len(VGG_LAYERS) * style_loss(fake, real)
            loss = loss + self.config["perceptual_weight"] * perceptual + self.config["style_weight"] * style
            logs.update(perceptual=perceptual.detach(), style=style.detach())
        if disc is not None and gan_weight > 0:
            adv = hinge_g_loss(disc(self._disc_input(out["composite"], batch)))
            loss = loss + gan_weight * adv
            logs["g_adv"] = adv.detach()
        return loss, logs


@register_model
def deepfill_v2(**kw) -> DeepFillV2:
    """DeepFill v2: gated convolutions, contextual attention, SN-PatchGAN (Yu et al., ICCV'19)."""
    return DeepFillV2(**{"cnum": 48, "resolution": 256, **kw})


@register_model
def deepfill_v2_tiny(**kw) -> DeepFillV2:
    """DeepFill v2 at test size (cnum 8, 64 px) for fast CPU tests; never trained."""
    return DeepFillV2(**{"cnum": 8, "resolution": 64, "disc_cnum": 4, **kw})
