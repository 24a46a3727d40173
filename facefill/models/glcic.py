"""GLCIC (Iizuka, Simo-Serra & Ishikawa, "Globally and Locally Consistent Image Completion", SIGGRAPH'17).

Completion network (sec. 3.1, table 1): input the image with the hole blanked + the mask; conv 5x5 (64), two
stride-2 stages (128, 256), dilated 3x3 convolutions at rates 2, 4, 8, 16 (256), 4x4 stride-1/2 deconvolutions
(128, 64), output conv 3x3 -> sigmoid; batch normalisation + ReLU after every layer but the last. The sigmoid's
[0, 1] is mapped to facefill's [-1, 1], i.e. the output is tanh(z/2).
Context discriminators (sec. 3.2, table 2): global (six 5x5 stride-2 convolutions on the whole image, FC 1024)
and local (five on a ``resolution/2`` patch centred on the hole, FC 1024); their outputs are concatenated into one
FC -> sigmoid giving the probability that the image is real, trained with binary cross-entropy (here on logits).
Losses (sec. 3.3): weighted MSE on the hole ||M_c (.) (C(x, M_c) - x)||^2 (eq. 2) and the GAN loss with
alpha = 0.0004 (eq. 4). Training (sec. 3.3, alg. 1) runs in three phases: the completion network with MSE alone
for T_C steps, the discriminators alone for T_D steps, then both jointly; the loop's ``gan_start = T_C``,
``d_only_steps = T_D``, ``gan_weight = alpha``, ``gan_warmup = 1`` give exactly that (configs/glcic_gpu256.json:
T_C = 90k, T_D = 10k, 500k in all, as the paper's Places2 run). The paper used ADADELTA; facefill's loop uses Adam.
The paper blanks the hole with the training set's mean pixel; in [-1, 1] that is ~0, so the hole is zeroed.
"""
from __future__ import annotations

import torch
from torch import nn

from ..inpainter import NetworkInpainter
from ..layers.local_patch import centred_patches, hole_boxes
from ..losses import bce_d_loss, bce_g_loss
from ..registry import register_model


def _conv(in_ch: int, out_ch: int, k: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, k, stride, dilation * (k - 1) // 2, dilation),
                         nn.BatchNorm2d(out_ch), nn.ReLU())


def _deconv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1), nn.BatchNorm2d(out_ch), nn.ReLU())


class ContextDiscriminators(nn.Module):
    """Global + local discriminators fused by one FC layer (table 2).

    ``forward(whole, local)``: ``whole`` ``(B, 3, R, R)``, ``local`` ``(B, 3, R/2, R/2)`` -> logits ``(B, 1)``."""

    def __init__(self, resolution: int, cnum: int = 64):
        super().__init__()

        def body(widths, side):
            layers, prev = [], 3
            for w in widths:
                layers.append(_conv(prev, w, 5, 2))
                prev = w
            return nn.Sequential(*layers, nn.Flatten(), nn.Linear(prev * side * side, 16 * cnum), nn.ReLU())

        c = cnum
        self.global_net = body((c, 2 * c, 4 * c, 8 * c, 8 * c, 8 * c), resolution // 64)
        self.local_net = body((c, 2 * c, 4 * c, 8 * c, 8 * c), resolution // 64)
        self.fc = nn.Linear(32 * cnum, 1)

    def forward(self, whole: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat([self.global_net(whole), self.local_net(local)], 1))


class GLCIC(NetworkInpainter):
    """GLCIC completion network.

    ``forward(image, mask)``:
      - ``image``: ``(B, 3, H, W)`` float in [-1, 1]; pixels under the hole are ignored (zeroed here).
      - ``mask``: ``(B, 1, H, W)``, 1 = hole, 0 = known. H and W must be multiples of ``pad_multiple`` (4).
    Returns ``{"output": (B,3,H,W) raw completion in [-1, 1]}`` (not composited: callers paste it into the hole).
    Training uses H = W = ``resolution`` (a multiple of 64, for the discriminators' FC layers).
    """

    pad_multiple = 4

    def __init__(self, cnum: int = 64, resolution: int = 256, disc_cnum: int = 64):
        super().__init__()
        if resolution % 64:
            raise ValueError(f"resolution must be a multiple of 64, got {resolution}")
        self.config = dict(cnum=cnum, resolution=resolution, disc_cnum=disc_cnum)
        self.resolution = resolution
        self.inputs = ("image", "mask")
        c = cnum
        self.net = nn.Sequential(
            _conv(4, c, 5), _conv(c, 2 * c, 3, 2), _conv(2 * c, 2 * c, 3), _conv(2 * c, 4 * c, 3, 2),
            _conv(4 * c, 4 * c, 3), _conv(4 * c, 4 * c, 3),
            *[_conv(4 * c, 4 * c, 3, dilation=r) for r in (2, 4, 8, 16)],
            _conv(4 * c, 4 * c, 3), _conv(4 * c, 4 * c, 3),
            _deconv(4 * c, 2 * c), _conv(2 * c, 2 * c, 3), _deconv(2 * c, c), _conv(c, c // 2, 3),
            nn.Conv2d(c // 2, 3, 3, 1, 1),
        )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict:
        mask = mask.to(image.dtype)
        z = self.net(torch.cat([image * (1 - mask), mask], 1))
        return {"output": torch.tanh(z / 2)}  # = 2 * sigmoid(z) - 1

    # --- training hooks used by facefill.train -------------------------------------------------------
    def build_discriminator(self) -> nn.Module:
        return ContextDiscriminators(self.resolution, self.config["disc_cnum"])

    def _local(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return centred_patches(image, hole_boxes(mask), self.resolution // 2)

    def _scores(self, disc: nn.Module, batch: dict, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real logits, fake logits)`` of the truths and ``fake`` scored in one batch. The discriminators
        batch-normalise, so both training steps score this way: fakes scored alone would meet other batch
        statistics, and the generator would follow a function the discriminators were never trained as."""
        both = torch.cat([batch["image"].to(fake.dtype), fake])
        mask = batch["mask"]
        return disc(both, self._local(both, torch.cat([mask, mask]))).chunk(2)

    def discriminator_loss(self, disc: nn.Module, batch: dict, out: dict) -> tuple[torch.Tensor, dict]:
        real_score, fake_score = self._scores(disc, batch, out["composite"].detach())
        loss = bce_d_loss(real_score, fake_score)
        return loss, {"d_loss": loss.detach()}

    def generator_loss(self, disc: nn.Module | None, batch: dict, out: dict, gan_weight: float
                       ) -> tuple[torch.Tensor, dict]:
        target, mask = batch["image"].float(), batch["mask"].float()
        # eq. 2 as a mean over hole pixels (the sum's scale would tie alpha to the hole size)
        mse = (((out["output"].float() - target) * mask) ** 2).sum() / (3 * mask.sum()).clamp_min(1.0)
        # "l1" is the loop's reconstruction key; here it holds the hole MSE
        logs = {"l1": mse.detach(), "mse": mse.detach()}
        loss = mse
        if disc is not None and gan_weight > 0:
            _, fake_score = self._scores(disc, batch, out["composite"])
            adv = bce_g_loss(fake_score)
            loss = loss + gan_weight * adv
            logs["g_adv"] = adv.detach()
        return loss, logs


@register_model
def glcic(**kw) -> GLCIC:
    """GLCIC: dilated completion network, global+local discriminators (Iizuka et al., SIGGRAPH'17)."""
    return GLCIC(**{"cnum": 64, "resolution": 256, **kw})


@register_model
def glcic_tiny(**kw) -> GLCIC:
    """GLCIC at test size (cnum 8, 64 px) for fast CPU tests; never trained."""
    return GLCIC(**{"cnum": 8, "resolution": 64, "disc_cnum": 4, **kw})
