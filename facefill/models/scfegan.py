"""SC-FEGAN (Jo & Park, "SC-FEGAN: Face Editing Generative Adversarial Network with User's Sketch and Color",
arXiv 1902.06838, 2019): a face is edited by erasing a region and drawing a sketch and colour strokes into it.

Generator (sec. 3.2, fig. 3; widths and kernels from the authors' ``model.py``): a U-Net of gated convolutions.
Input 9 channels ``[image * (1 - M), sketch, color, M, noise]`` (their order). Encoder: ``depth`` stride-2 gated
convolutions (kernels 7, 5, 5, 3, 3, ...; widths c, 2c, 4c, 8c, 8c, ...); local response normalisation after every
gated convolution but the first and last, not after the transposed ones (``tf.nn.lrn(bias=5e-5)``:
x / sqrt(5e-5 + sum of x^2 over 11 channels)); leaky ReLU (0.2); then four dilated gated convolutions (rates 2,
4, 8, 16); decoder: a gated 5x5 transposed convolution per level, concatenated with the encoder feature of that
scale (the last level with the input itself), then a 3x3 gated convolution; tanh output. The paper's 512 px
model has ``depth=7`` (4x4 bottleneck); at 256 px we use ``depth=6`` for the same bottleneck. A gated layer is
``phi(LRN(W_f * I)) * sigmoid(W_g * I)`` with its own gate weights (the authors' ``gate_deconv`` reuses the
feature map for the gate; we do not).

Discriminator: SN-PatchGAN (``facefill.layers.SNPatchDiscriminator``) on ``[image, M, sketch, color]``.

Losses (sec. 3.3), ``M`` = 1 in the hole, ``I_comp = I_gen * M + I_gt * (1 - M)``, ``||.||_1 / N`` = mean:
  L_pixel   = ||(1-M) * (I_gen - I_gt)||_1 / N + alpha * ||M * (I_gen - I_gt)||_1 / N          alpha = 1.5
  L_percept = sum_q ||T_q(I_gen) - T_q(I_gt)||_1 / N_q + sum_q ||T_q(I_comp) - T_q(I_gt)||_1 / N_q
  L_style(I) = sum_q ||G_q(I) - G_q(I_gt)||_1 / C_q^2,   G_q(x) = T_q(x) T_q(x)^T / (C_q H_q W_q)
  L_tv      = ||I_comp[:, :, :, 1:] - I_comp[:, :, :, :-1]||_1 / N + (same along rows)
  L_G_SN    = -E[D(I_comp)]
  L_G = L_pixel + sigma L_percept + beta L_G_SN + gamma (L_style(I_gen) + L_style(I_comp)) + nu L_tv
        + eps E[D(I_gt)^2]                                     sigma=0.05, beta=0.001, gamma=120, nu=0.1, eps=0.001
  L_D = E[relu(1 - D(I_gt))] + E[relu(1 + D(I_comp))] + theta L_GP                              theta = 10
  L_GP = E[(||grad_U D(U) * M||_2 - 1)^2],  U = t I_gt + (1 - t) I_comp,  t ~ U(0, 1) per sample
T_q are pool1, pool2, pool3 of VGG; the project ships VGG19 weights only (``facefill.layers.vgg``), so T_q are
VGG19's pool1-3 (max-pools of relu1_2, relu2_2, relu3_4) instead of VGG16's, at torchvision's input scale
(``facefill.layers.vgg.shared_vgg``).
``E[D(I_gt)^2]`` (ProGAN's drift term) has no gradient with respect to the generator, so where the paper writes
it into L_G it would do nothing; it is added to L_D, where it keeps D(I_gt) from drifting, and logged. The
printed L_D has no relu (a linear, WGAN-like loss); ``d_loss="hinge"`` (default) is SN-PatchGAN's hinge,
``d_loss="linear"`` the printed form. The training loop multiplies L_G_SN by its ramped ``gan_weight`` on top of
``beta`` (train with ``gan_weight=1`` for the paper's balance).

Noise: a per-pixel N(0, 1) map inside the hole. In training it comes from the global torch RNG (seeded and
checkpointed by ``facefill.train``); at inference (``eval()``) from a ``torch.Generator`` seeded with
``noise_seed`` unless ``generator=`` or ``noise=`` is given, so the same input gives the same output.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from ..inpainter import NetworkInpainter
from ..layers import SNPatchDiscriminator
from ..layers.vgg import gram, shared_vgg
from ..registry import register_model

_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)


def _lrn(x: torch.Tensor) -> torch.Tensor:
    # tf.nn.lrn(depth_radius=5, bias=5e-5, alpha=1, beta=0.5); torch divides alpha by the window size
    return F.local_response_norm(x, size=11, alpha=11.0, beta=0.5, k=5e-5)


class _GatedConv(nn.Module):
    """``leaky_relu(LRN(W_f * x)) * sigmoid(W_g * x)``; ``activation=False``: no activation (output layer)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 lrn: bool = True, activation: bool = True):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.feature = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation)
        self.gate = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation)
        self.lrn, self.activation = lrn, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.feature(x)
        if self.lrn:
            f = _lrn(f)
        if self.activation:
            f = F.leaky_relu(f, 0.2)
        return f * torch.sigmoid(self.gate(x))


class _GatedDeconv(nn.Module):
    """x2 upsampling by a gated 5x5 transposed convolution (the authors' ``gate_deconv``), leaky ReLU feature."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.feature = nn.ConvTranspose2d(in_ch, out_ch, 5, 2, padding=2, output_padding=1)
        self.gate = nn.ConvTranspose2d(in_ch, out_ch, 5, 2, padding=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.feature(x), 0.2) * torch.sigmoid(self.gate(x))


class SCFEGAN(NetworkInpainter):
    """SC-FEGAN generator.

    ``forward(image, mask, sketch=None, color=None, noise=None, generator=None)``:
      - ``image``: ``(B, 3, H, W)`` float in [-1, 1]; pixels under the hole are ignored (zeroed here).
      - ``mask``: ``(B, 1, H, W)``, 1 = hole, 0 = known.
      - ``sketch``: ``(B, 1, H, W)`` in [0, 1], 1 = line; ``color``: ``(B, 3, H, W)`` RGB in [0, 1], 0 = no
        colour (see ``facefill.guidance`` for user drawings). Both only count inside the hole; ``None`` = zeros.
      - ``noise``: ``(B, 1, H, W)``; by default N(0, 1) from ``generator`` (see the module docstring).
      H and W must be multiples of ``pad_multiple`` (``2 ** depth``).
    Returns ``{"output": (B, 3, H, W) raw output in [-1, 1]}``, not composited: callers paste it into the hole.

    ``inpaint(image, mask, sketch=None, color=None, ...)`` (``Inpainter.inpaint``) takes the user's drawings:
    ``sketch``, a line drawing (transparent layer, or either polarity on an opaque background), and ``color``,
    colour strokes (RGBA, or RGB with black = unpainted), both of the image's size (or any size with
    ``resize_mask=True``); see ``facefill.guidance``. Without them the hole is inpainted from its context alone.
    """

    def __init__(self, cnum: int = 64, depth: int = 6, resolution: int = 256, disc_cnum: int = 64,
                 noise_seed: int = 0, alpha: float = 1.5, sigma: float = 0.05, beta: float = 0.001,
                 gamma: float = 120.0, nu: float = 0.1, epsilon: float = 0.001, theta: float = 10.0,
                 d_loss: str = "hinge"):
        super().__init__()
        if not 1 <= depth <= len(_KERNELS):
            raise ValueError(f"depth must be in 1..{len(_KERNELS)}, got {depth}")
        if d_loss not in ("hinge", "linear"):
            raise ValueError(f"d_loss must be 'hinge' or 'linear', got {d_loss!r}")
        if resolution % 2 ** depth:
            raise ValueError(f"resolution {resolution} must be a multiple of 2**depth = {2 ** depth}")
        self.config = dict(cnum=cnum, depth=depth, resolution=resolution, disc_cnum=disc_cnum, noise_seed=noise_seed,
                           alpha=alpha, sigma=sigma, beta=beta, gamma=gamma, nu=nu, epsilon=epsilon, theta=theta,
                           d_loss=d_loss)
        self.resolution = resolution
        self.pad_multiple = 2 ** depth
        self.inputs = ("image", "mask", "sketch", "color")
        widths = [cnum * min(2 ** i, 8) for i in range(depth)]
        in_ch = 9
        self.encoder = nn.ModuleList()
        prev = in_ch
        for i, (w, k) in enumerate(zip(widths, _KERNELS)):
            self.encoder.append(_GatedConv(prev, w, k, 2, lrn=i > 0))
            prev = w
        self.dilated = nn.Sequential(*[_GatedConv(prev, prev, 3, dilation=r) for r in (2, 4, 8, 16)])
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for i in range(depth - 1, 0, -1):  # up to the scale of encoder output i-1, concatenated with it
            self.up.append(_GatedDeconv(prev, widths[i - 1]))
            self.fuse.append(_GatedConv(2 * widths[i - 1], widths[i - 1], 3))
            prev = widths[i - 1]
        self.up.append(_GatedDeconv(prev, 3))
        self.fuse.append(_GatedConv(3 + in_ch, 3, 3, lrn=False, activation=False))

    def _noise(self, mask: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if generator is None and self.training:
            return torch.randn(mask.shape, device=mask.device, dtype=mask.dtype)
        if generator is None:
            generator = torch.Generator().manual_seed(self.config["noise_seed"])
        noise = torch.randn(mask.shape, generator=generator, device=generator.device)
        return noise.to(device=mask.device, dtype=mask.dtype)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, sketch: torch.Tensor | None = None,
                color: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict:
        mask = mask.to(image.dtype)
        b, _, h, w = image.shape
        if h % self.pad_multiple or w % self.pad_multiple:
            raise ValueError(f"H and W must be multiples of {self.pad_multiple}, got {h}x{w}")
        known = image * (1 - mask)
        sketch = image.new_zeros(b, 1, h, w) if sketch is None else sketch.to(image.dtype) * mask
        color = image.new_zeros(b, 3, h, w) if color is None else color.to(image.dtype) * mask
        noise = self._noise(mask, generator) if noise is None else noise.to(image.dtype)
        x = torch.cat([known, sketch, color, mask, noise * mask], 1)
        skips = [x]
        y = x
        for layer in self.encoder:
            y = layer(y)
            skips.append(y)
        y = self.dilated(y)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips[:-1])):
            y = fuse(torch.cat([skip, up(y)], 1))
        return {"output": torch.tanh(y)}

    # --- training hooks used by facefill.train -------------------------------------------------------
    def build_discriminator(self) -> nn.Module:
        return SNPatchDiscriminator(in_ch=3 + 1 + 1 + 3, cnum=self.config["disc_cnum"])

    @staticmethod
    def _guidance(batch: dict, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = like.shape
        sketch = batch.get("sketch")
        color = batch.get("color")
        sketch = like.new_zeros(b, 1, h, w) if sketch is None else sketch.to(like.dtype)
        color = like.new_zeros(b, 3, h, w) if color is None else color.to(like.dtype)
        return sketch, color

    def _disc_input(self, image: torch.Tensor, batch: dict) -> torch.Tensor:
        sketch, color = self._guidance(batch, image)
        mask = batch["mask"].to(image.dtype)
        return torch.cat([image, mask, sketch * mask, color * mask], 1)

    def discriminator_loss(self, disc: nn.Module, batch: dict, out: dict) -> tuple[torch.Tensor, dict]:
        cfg = self.config
        real, fake = batch["image"], out["composite"].detach()
        pair = torch.cat([self._disc_input(real, batch), self._disc_input(fake, batch)], 0)
        real_score, fake_score = disc(pair).float().chunk(2)
        if cfg["d_loss"] == "hinge":
            adv = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
        else:
            adv = (1 - real_score).mean() + (1 + fake_score).mean()
        gp = gradient_penalty(disc, lambda u: self._disc_input(u, batch), real, fake, batch["mask"])
        drift = real_score.pow(2).mean()
        loss = adv + cfg["theta"] * gp + cfg["epsilon"] * drift
        return loss, {"d_loss": loss.detach(), "d_adv": adv.detach(), "d_gp": gp.detach(), "d_drift": drift.detach()}

    def generator_loss(self, disc: nn.Module | None, batch: dict, out: dict, gan_weight: float
                       ) -> tuple[torch.Tensor, dict]:
        cfg = self.config
        gt, gen, comp, m = batch["image"], out["output"], out["composite"], batch["mask"].to(out["output"].dtype)
        pixel = pixel_loss(gen, gt, m, cfg["alpha"])
        tv = tv_loss(comp)
        loss = pixel + cfg["nu"] * tv
        logs = {"l1": pixel.detach(), "tv": tv.detach()}
        if cfg["sigma"] or cfg["gamma"]:  # sigma = gamma = 0 (a reconstruction warm-up) skips VGG altogether
            feats = vgg_pools(torch.cat([gen, comp, gt], 0))
            f_gen = {k: v.chunk(3)[0] for k, v in feats.items()}
            f_comp = {k: v.chunk(3)[1] for k, v in feats.items()}
            f_gt = {k: v.chunk(3)[2].detach() for k, v in feats.items()}
            percept = perceptual_sum(f_gen, f_gt) + perceptual_sum(f_comp, f_gt)
            style = style_sum(f_gen, f_gt) + style_sum(f_comp, f_gt)
            loss = loss + cfg["sigma"] * percept + cfg["gamma"] * style
            logs.update(percept=percept.detach(), style=style.detach())
        if disc is not None and gan_weight > 0:
            adv = -disc(self._disc_input(comp, batch)).float().mean()
            loss = loss + gan_weight * cfg["beta"] * adv
            logs["g_adv"] = adv.detach()
        return loss, logs


# --- losses (module functions so tests can check them on known inputs) --------------------------------
def pixel_loss(gen: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, alpha: float = 1.5) -> torch.Tensor:
    """L_pixel: mean |valid difference| + alpha * mean |hole difference| (both over all elements)."""
    diff = (gen.float() - gt.float()).abs()
    mask = mask.float()
    return (diff * (1 - mask)).mean() + alpha * (diff * mask).mean()


def vgg_pools(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """pool1-3 of the frozen VGG19 (max-pools of relu1_2, relu2_2, relu3_4) of RGB in [-1, 1], at torchvision's
    input scale."""
    feats = shared_vgg(("relu1_2", "relu2_2", "relu3_4"), x.device)(x)
    return {f"pool{i}": F.max_pool2d(feats[name], 2, 2)
            for i, name in enumerate(("relu1_2", "relu2_2", "relu3_4"), start=1)}


def perceptual_sum(a: dict, b: dict) -> torch.Tensor:
    """sum over layers of mean |a_q - b_q| (the paper's ||.||_1 / N_q)."""
    return sum(F.l1_loss(a[k].float(), b[k].float()) for k in a)


def style_sum(a: dict, b: dict) -> torch.Tensor:
    """sum over layers of ||G(a_q) - G(b_q)||_1 / C_q^2 (mean over the C x C Gram entries, and the batch)."""
    return sum(F.l1_loss(gram(a[k]), gram(b[k])) for k in a)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean |horizontal differences| + mean |vertical differences|."""
    x = x.float()
    return (x[..., :, 1:] - x[..., :, :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean()


def gradient_penalty(disc: nn.Module, make_input, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """L_GP = E[(||grad_U D(U) * M||_2 - 1)^2] on U between real and fake; ``make_input(U)`` adds the extra
    discriminator channels. The gradient is taken with respect to the image channels only.

    ``D(U)`` is the per-image score that the hinge loss uses, the mean of the P patch scores. Penalising the
    gradient of their sum instead (what ``tf.gradients`` of the patch map gives) asks each patch for a slope of
    about 1/P: with theta = 10 that flattened the critic (D(real) - D(fake) ~ 1e-4 after 840 steps at 128 px,
    P = 1024), and the adversarial term with it."""
    u = losses.random_interpolates(real.float(), fake.float(), generator)
    score = disc(make_input(u.to(real.dtype))).float().flatten(1).mean(1)
    return losses.gradient_penalty(score, u, mask)


@register_model
def scfegan(**kw) -> SCFEGAN:
    """SC-FEGAN: sketch- and colour-guided face editing, gated-conv U-Net, SN-PatchGAN (Jo & Park 2019)."""
    # the authors' cnum=64 is 89.6M parameters (179 MB in fp16); 24 keeps the shipped file at 25 MB
    return SCFEGAN(**{"cnum": 24, "depth": 6, "resolution": 256, **kw})


@register_model
def scfegan_tiny(**kw) -> SCFEGAN:
    """SC-FEGAN at test size (cnum 4, depth 3, 64 px) for fast CPU tests; never trained."""
    return SCFEGAN(**{"cnum": 4, "depth": 3, "resolution": 64, "disc_cnum": 4, **kw})
