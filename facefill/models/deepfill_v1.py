"""DeepFill v1 (Yu et al., "Generative Image Inpainting with Contextual Attention", CVPR'18).

Generator (sec. 3.1, fig. 2), layer for layer as the authors' ``build_inpaint_net`` (``cnum = 32``): every
convolution has mirror (reflect) padding and an ELU, no batch normalisation, outputs are clipped to [-1, 1].
  Stage 1 (coarse): encoder (two stride-2 downsamplings) -> dilated convolutions (rates 2, 4, 8, 16) -> decoder
  (nearest x2 upsampling + convolution).
  Stage 2 (refine): the coarse result pasted into the hole feeds two parallel encoders, one with dilated
  convolutions, one with the contextual-attention layer (sec. 4, ``facefill.layers.ContextualAttention``); their
  features are concatenated and decoded.
Losses (sec. 3.2, and the authors' ``build_graph_with_losses``):
  reconstruction: 1.2 x spatially discounted L1 on the hole (L1_LOSS_ALPHA; weight gamma**l, l = distance to the
  nearest known pixel, gamma = 0.99) + 1.2 x L1 on the known region (AE_LOSS_ALPHA), on both stages (stage 1
  weighted 1.2 inside each: COARSE_L1_ALPHA);
  adversarial: WGAN-GP with a global critic (whole image) and a local critic (the hole's bounding box resized to
  ``resolution/2``), each four 5x5 stride-2 convolutions + a linear score; the gradient penalty (lambda = 10) is
  restricted to hole pixels.
Recipe (configs/deepfill_v1_gpu256.json): Adam lr 1e-4, betas (0.5, 0.9), gan_weight 0.001 (GAN_LOSS_ALPHA), and
n_critic = 5 as the authors' SecondaryTrainer (5 critic steps per generator step).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..inpainter import NetworkInpainter
from ..layers import ContextualAttention, flow_to_color
from ..layers.init import RELU_GAIN, init_conv_
from ..layers.local_patch import box_patches, hole_boxes
from ..losses import (discounted_l1, gradient_penalty, random_interpolates, spatial_discount, wgan_d_loss,
                      wgan_g_loss)
from ..registry import register_model


class Conv(nn.Module):
    """The authors' ``gen_conv``: mirror padding, convolution, ELU (``activation=False`` for the RGB output)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 activation: str | None = "elu"):
        super().__init__()
        self.pad = dilation * (kernel_size - 1) // 2
        self.conv = init_conv_(nn.Conv2d(in_ch, out_ch, kernel_size, stride, 0, dilation),
                               RELU_GAIN if activation else 1.0)  # see facefill.layers.init
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.pad(x, [self.pad] * 4, mode="reflect"))
        if self.activation == "elu":
            return F.elu(x)
        return F.relu(x) if self.activation == "relu" else x


class UpConv(Conv):
    """The authors' ``gen_deconv``: nearest-neighbour x2 upsampling, then a 3x3 ``Conv``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))


def _decoder(in_ch: int, c: int) -> list[nn.Module]:
    return [Conv(in_ch, 4 * c), Conv(4 * c, 4 * c), UpConv(4 * c, 2 * c), Conv(2 * c, 2 * c),
            UpConv(2 * c, c), Conv(c, c // 2), Conv(c // 2, 3, activation=None)]


def _dilated(c: int) -> list[nn.Module]:
    return [Conv(4 * c, 4 * c, 3, dilation=r) for r in (2, 4, 8, 16)]


class WGANCritics(nn.Module):
    """Global and local WGAN critics (the authors' ``build_wgan_{global,local}_discriminator``).

    ``forward(whole, local)``: ``whole`` ``(B, 3, R, R)``, ``local`` ``(B, 3, R/2, R/2)`` -> ``(global_score,
    local_score)``, each ``(B, 1)``. Both are called in one forward so a DDP wrapper sees a single call."""

    def __init__(self, resolution: int, cnum: int = 64):
        super().__init__()

        def body(widths):
            layers, prev = [], 3
            for w in widths:
                layers += [nn.Conv2d(prev, w, 5, 2, 2), nn.LeakyReLU(0.2)]
                prev = w
            return nn.Sequential(*layers, nn.Flatten())

        self.global_body = body((cnum, 2 * cnum, 4 * cnum, 4 * cnum))
        self.local_body = body((cnum, 2 * cnum, 4 * cnum, 8 * cnum))
        self.global_fc = nn.Linear(4 * cnum * (resolution // 16) ** 2, 1)
        self.local_fc = nn.Linear(8 * cnum * (resolution // 32) ** 2, 1)

    def forward(self, whole: torch.Tensor, local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        whole, local = self.global_body(whole), self.local_body(local)
        # the linear scores in fp32, also under bf16 autocast: a WGAN critic's output has no fixed offset (the loss
        # only sees differences), and at an offset of a few hundred bf16's 8-bit mantissa rounds every score to the
        # same value, so the logged Wasserstein estimate E[D(fake)] - E[D(real)] would be rounding noise
        with torch.autocast(whole.device.type, enabled=False):
            return self.global_fc(whole.float()), self.local_fc(local.float())


class DeepFillV1(NetworkInpainter):
    """DeepFill v1 generator.

    ``forward(image, mask)``:
      - ``image``: ``(B, 3, H, W)`` float in [-1, 1]; pixels under the hole are ignored (zeroed here).
      - ``mask``: ``(B, 1, H, W)``, 1 = hole, 0 = known. H and W must be multiples of ``pad_multiple`` (8) and at
        least 128 (the rate-16 dilation's mirror padding at 1/4 scale needs 32 pixels there).
    Returns ``{"output": (B,3,H,W) refined raw output in [-1, 1], "coarse": stage-1 output, "flow": contextual
    attention offsets (B,2,H/8,W/8)}``. ``output`` is not composited: callers paste it into the hole.
    """

    pad_multiple = 8

    def __init__(self, cnum: int = 32, resolution: int = 256, disc_cnum: int = 64, gamma: float = 0.99,
                 gp_lambda: float = 10.0):
        super().__init__()
        if resolution % 32 or resolution < 128:
            raise ValueError(f"resolution must be a multiple of 32 and >= 128, got {resolution}")
        self.config = dict(cnum=cnum, resolution=resolution, disc_cnum=disc_cnum, gamma=gamma, gp_lambda=gp_lambda)
        self.resolution = resolution
        self.inputs = ("image", "mask")
        c = cnum
        self.coarse = nn.Sequential(
            Conv(5, c, 5), Conv(c, 2 * c, 3, 2), Conv(2 * c, 2 * c), Conv(2 * c, 4 * c, 3, 2),
            Conv(4 * c, 4 * c), Conv(4 * c, 4 * c), *_dilated(c), *_decoder(4 * c, c),
        )
        self.conv_branch = nn.Sequential(
            Conv(5, c, 5), Conv(c, c, 3, 2), Conv(c, 2 * c), Conv(2 * c, 2 * c, 3, 2),
            Conv(2 * c, 4 * c), Conv(4 * c, 4 * c), *_dilated(c),
        )
        self.attention_encoder = nn.Sequential(
            Conv(5, c, 5), Conv(c, c, 3, 2), Conv(c, 2 * c), Conv(2 * c, 4 * c, 3, 2), Conv(4 * c, 4 * c),
            Conv(4 * c, 4 * c, activation="relu"),
        )
        self.attention = ContextualAttention(ksize=3, stride=1, rate=2)
        self.attention_decoder = nn.Sequential(Conv(4 * c, 4 * c), Conv(4 * c, 4 * c))
        self.refine_decoder = nn.Sequential(*_decoder(8 * c, c))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict:
        mask = mask.to(image.dtype)
        known = image * (1 - mask)
        ones = torch.ones_like(mask)
        coarse = self.coarse(torch.cat([known, ones, mask], 1)).clamp(-1, 1)

        x = torch.cat([coarse * mask + known, ones, mask], 1)
        hallucinated = self.conv_branch(x)
        features = self.attention_encoder(x)
        mask_s = F.interpolate(mask, size=features.shape[-2:], mode="nearest")
        attended, flow = self.attention(features, features, mask_s)
        attended = self.attention_decoder(attended)
        output = self.refine_decoder(torch.cat([hallucinated, attended], 1)).clamp(-1, 1)
        return {"output": output, "coarse": coarse, "flow": flow}

    @torch.no_grad()
    def attention_map(self, image, mask, threshold: float = 0.5, resize_mask: bool = False) -> np.ndarray:
        """Colour-coded contextual-attention offsets (hue = direction, saturation = distance; white = no offset)
        as an ``HxWx3`` uint8 array of the image's size. ``image`` and ``mask`` as for ``inpaint``; the whole
        image is resized to the model's resolution (no face alignment or crops), so it shows where the network
        copies from at that scale."""
        import cv2

        rgb, _, out = self.forward_whole_image(image, mask, threshold, resize_mask)
        flow = out["flow"][0].cpu().numpy()
        color = flow_to_color(flow)
        return cv2.resize(color, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)

    # --- training hooks used by facefill.train -------------------------------------------------------
    def build_discriminator(self) -> nn.Module:
        return WGANCritics(self.resolution, self.config["disc_cnum"])

    def discriminator_loss(self, disc: nn.Module, batch: dict, out: dict) -> tuple[torch.Tensor, dict]:
        real, fake, mask = batch["image"], out["composite"].detach(), batch["mask"].to(batch["image"].dtype)
        boxes, size = hole_boxes(mask), self.resolution // 2
        real_l, fake_l, mask_l = (box_patches(t, boxes, size) for t in (real, fake, mask))
        interp, interp_l = random_interpolates(real, fake), random_interpolates(real_l, fake_l)
        # one critic call on (real, fake, interpolates) so that a DDP wrapper sees a single forward
        score_g, score_l = disc(torch.cat([real, fake.to(real.dtype), interp]),
                                torch.cat([real_l, fake_l.to(real.dtype), interp_l]))
        (rg, fg, ig), (rl, fl, il) = score_g.chunk(3), score_l.chunk(3)
        wgan = wgan_d_loss(rg, fg) + wgan_d_loss(rl, fl)
        gp = gradient_penalty(ig, interp, mask) + gradient_penalty(il, interp_l, mask_l)
        loss = wgan + self.config["gp_lambda"] * gp
        return loss, {"d_loss": loss.detach(), "d_wgan": wgan.detach(), "gp": gp.detach()}

    def generator_loss(self, disc: nn.Module | None, batch: dict, out: dict, gan_weight: float
                       ) -> tuple[torch.Tensor, dict]:
        target, mask = batch["image"], batch["mask"].float()
        weights = spatial_discount(mask, self.config["gamma"])
        known = (1 - mask).mean().clamp_min(1e-6)

        def ae(pred):  # L1 on the known region, normalised by its area (the authors' ae_loss)
            return ((pred.float() - target.float()).abs() * (1 - mask)).mean() / known

        l1 = 1.2 * discounted_l1(out["coarse"], target, weights) + discounted_l1(out["output"], target, weights)
        ae_loss = 1.2 * ae(out["coarse"]) + ae(out["output"])
        loss = 1.2 * l1 + 1.2 * ae_loss  # L1_LOSS_ALPHA, AE_LOSS_ALPHA of the authors' inpaint.yml
        logs = {"l1": l1.detach(), "ae": ae_loss.detach()}
        if disc is not None and gan_weight > 0:
            composite = out["composite"]
            score_g, score_l = disc(composite, box_patches(composite, hole_boxes(mask), self.resolution // 2))
            adv = wgan_g_loss(score_g) + wgan_g_loss(score_l)
            loss = loss + gan_weight * adv
            logs["g_adv"] = adv.detach()
        return loss, logs


@register_model
def deepfill_v1(**kw) -> DeepFillV1:
    """DeepFill v1: coarse-to-fine with contextual attention, WGAN-GP global+local critics (Yu et al., CVPR'18)."""
    return DeepFillV1(**{"cnum": 32, "resolution": 256, **kw})


@register_model
def deepfill_v1_tiny(**kw) -> DeepFillV1:
    """DeepFill v1 at test size (cnum 4, 128 px: its smallest) for fast CPU tests; never trained."""
    return DeepFillV1(**{"cnum": 4, "resolution": 128, "disc_cnum": 4, **kw})
