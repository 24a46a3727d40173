"""Two-stage HOG-guided face inpainting: a face-shape predictor, then an inpainting network guided by it.

The structure is EdgeConnect's (Nazeri et al., "EdgeConnect: Generative Image Inpainting with Adversarial Edge
Learning", ICCVW'19) with the edge map replaced by a histogram-of-oriented-gradients map of the face
(Dalal & Triggs, CVPR'05; ``facefill.data.hog``), which describes the face's shape at cell level rather than
pixel-exact edges.
  Stage 1 (face-shape predictor): masked image + mask -> encoder (7x7 conv, two 4x4 stride-2 convolutions) ->
  8 residual blocks with dilation 2 -> two 4x4 transposed convolutions -> 7x7 conv; instance norm + ReLU as
  EdgeConnect's generator. Its full-resolution output is averaged over each HOG cell and squashed by a sigmoid:
  the predicted HOG map of the whole face, ``(B, 9, H/8, W/8)``. Loss: L1 to the HOG map of the true image +
  adversarial, 1 : 1, both on the maps x ``HOG_SCALE`` (5: L2-Hys's cap 0.2 -> 1, the range of EdgeConnect's edges).
  Stage 2 (inpainting): masked image + mask + the predicted HOG map (nearest-upsampled to H x W) -> the same
  encoder / residual / decoder network -> tanh. Losses (EdgeConnect's weights): L1 (1, normalised by the hole
  fraction as EdgeConnect), adversarial (0.1), perceptual (0.1) and style (250) on VGG19 relu1_1..relu4_1
  (``facefill.layers.vgg``; summed over layers; style on the hole region, as EdgeConnect). EdgeConnect feeds [0, 1]
  RGB to torchvision's VGG19 *without* ImageNet standardisation, i.e. at ~0.226x the standardised input scale of
  ``shared_vgg``'s features; the perceptual term is multiplied by 0.226 and the style (Gram) term by 0.226**2 to
  match the scale its weights were tuned at (first order: EdgeConnect's input also lacks the mean subtraction).
  Discriminators: 70x70-PatchGAN-style with spectral norm (EdgeConnect's), standard (BCE) GAN loss; one on images,
  one on HOG maps conditioned on the true face as EdgeConnect's edge critic is on the true greyscale image (real
  and predicted maps alike are judged beside the ground truth's grey levels, here folded into the map's cells by
  ``pixel_unshuffle``): it asks whether a map is *this* face's shape, not merely a face's.
HOG: 9 orientations, 8x8-pixel cells, 2x2-cell blocks, L2-Hys, bilinear orientation votes (differentiable in the
angle as well as the magnitude), on the colour image; ``hog_map`` averages each cell's normalised block copies.
Joint training in the one loop: both stages train together from step 0 on the sum of their losses; stage 2 is fed
the *predicted* HOG map, detached, as EdgeConnect's joint phase: the predictor learns only from its own
objective, and the inpainter learns to use the maps it will get at inference (no teacher forcing).
``gan_weight`` scales both adversarial terms: the loop's ``gan_weight = 1`` gives the paper's 1 and 0.1
(configs/hogface_gpu256.json).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..data.hog import hog_map, hog_visualise
from ..inpainter import NetworkInpainter
from ..layers.vgg import perceptual_loss, shared_vgg, style_loss
from ..losses import bce_d_loss, bce_g_loss
from ..registry import register_model

HOG_CELL = 8
HOG_BINS = 9
VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
EDGECONNECT_VGG_SCALE = 0.226  # unstandardised [0, 1] input vs torchvision's (x - mean) / std, std ~ 0.226
# The unit of stage 1's losses: L2-Hys caps a normalised value at 0.2, so faces' HOG maps average ~0.12, an eighth of
# the {0, 1} edge maps of EdgeConnect, whose weights (L1 : adversarial = 1 : 1) this stage takes. Both terms see the
# maps x5 (the cap -> 1): behind spectral norm (each layer 1-Lipschitz) the raw maps gave the critic logits of ~0.01,
# at chance (BCE 1.386) after 3,300 steps; and with the critic scaled alone, the L1's pull was 5x weaker than the
# adversarial one at the paper's balance (the predictor's L1 rose from 0.039 to 0.069 in 150 steps).
HOG_SCALE = 5.0


class ResBlock(nn.Module):
    """EdgeConnect's residual block: reflect-pad, 3x3 conv (dilation 2), IN, ReLU, 3x3 conv, IN; plus the input."""

    def __init__(self, ch: int, dilation: int = 2):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(dilation), nn.Conv2d(ch, ch, 3, dilation=dilation), nn.InstanceNorm2d(ch), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _generator(in_ch: int, out_ch: int, c: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReflectionPad2d(3), nn.Conv2d(in_ch, c, 7), nn.InstanceNorm2d(c), nn.ReLU(),
        nn.Conv2d(c, 2 * c, 4, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(),
        nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.InstanceNorm2d(4 * c), nn.ReLU(),
        *[ResBlock(4 * c) for _ in range(blocks)],
        nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(),
        nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.InstanceNorm2d(c), nn.ReLU(),
        nn.ReflectionPad2d(3), nn.Conv2d(c, out_ch, 7),
    )


def _patch_discriminator(in_ch: int, c: int, downsamplings: int, k_last: int) -> nn.Sequential:
    layers, prev = [], in_ch
    for i in range(downsamplings):
        layers += [spectral_norm(nn.Conv2d(prev, c * 2 ** i, 4, 2, 1)), nn.LeakyReLU(0.2)]
        prev = c * 2 ** i
    layers += [spectral_norm(nn.Conv2d(prev, 2 * prev, k_last, 1, 1)), nn.LeakyReLU(0.2),
               spectral_norm(nn.Conv2d(2 * prev, 1, k_last, 1, 1)), nn.Flatten()]
    return nn.Sequential(*layers)


# EdgeConnect's edge critic sees skimage's rgb2gray of the true image; its ITU-R 709 luma weights
GREY_WEIGHTS = (0.2125, 0.7154, 0.0721)


def grey_cells(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [-1, 1] -> its grey levels in [0, 1] folded into the HOG cells, ``(B, 64, H/8, W/8)``
    (``pixel_unshuffle``: each cell's 8x8 pixels as channels), the HOG critic's condition."""
    weights = image.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
    return F.pixel_unshuffle(((image + 1) / 2 * weights).sum(1, keepdim=True), HOG_CELL)


class HogFaceDiscriminators(nn.Module):
    """``forward(hog, face, image)`` -> ``(hog_logits, image_logits)``, each ``(B, N)`` patch logits. The HOG one
    sees the ``(B, 9, H/8, W/8)`` map times ``HOG_SCALE`` beside ``grey_cells(face)``, the true face it is judged
    against (two downsamplings, 3x3 heads, since the map is small); the image one sees ``image`` and is
    EdgeConnect's (three downsamplings, 4x4 heads). One call, so a DDP wrapper sees a single forward."""

    def __init__(self, cnum: int = 64):
        super().__init__()
        self.hog = _patch_discriminator(HOG_BINS + HOG_CELL ** 2, cnum, 2, 3)
        self.image = _patch_discriminator(3, cnum, 3, 4)

    def forward(self, hog: torch.Tensor, face: torch.Tensor, image: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.hog(torch.cat([hog * HOG_SCALE, grey_cells(face).to(hog.dtype)], 1)), self.image(image)


class HogFace(NetworkInpainter):
    """HOG-guided two-stage face inpainting.

    ``forward(image, mask)``:
      - ``image``: ``(B, 3, H, W)`` float in [-1, 1]; pixels under the hole are ignored (zeroed here).
      - ``mask``: ``(B, 1, H, W)``, 1 = hole, 0 = known. H and W must be multiples of ``pad_multiple`` (8).
    Returns ``{"output": (B,3,H,W) raw inpainted image in [-1, 1], "hog": predicted HOG map (B,9,H/8,W/8) in
    [0, 1]}``. ``output`` is not composited: callers paste it into the hole.
    """

    pad_multiple = 8

    def __init__(self, cnum: int = 64, resolution: int = 256, blocks: int = 8, disc_cnum: int = 64,
                 hog_adv_weight: float = 1.0, adv_weight: float = 0.1, perceptual_weight: float = 0.1,
                 style_weight: float = 250.0):
        super().__init__()
        self.config = dict(cnum=cnum, resolution=resolution, blocks=blocks, disc_cnum=disc_cnum,
                           hog_adv_weight=hog_adv_weight, adv_weight=adv_weight,
                           perceptual_weight=perceptual_weight, style_weight=style_weight)
        self.resolution = resolution
        self.inputs = ("image", "mask")
        self.shape_net = _generator(4, HOG_BINS, cnum, blocks)
        self.inpaint_net = _generator(4 + HOG_BINS, 3, cnum, blocks)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict:
        mask = mask.to(image.dtype)
        known = torch.cat([image * (1 - mask), mask], 1)
        hog = torch.sigmoid(F.avg_pool2d(self.shape_net(known), HOG_CELL))
        guide = F.interpolate(hog.detach(), scale_factor=HOG_CELL, mode="nearest")
        output = torch.tanh(self.inpaint_net(torch.cat([known, guide], 1)))
        return {"output": output, "hog": hog}

    @torch.no_grad()
    def hog_picture(self, image, mask, threshold: float = 0.5, resize_mask: bool = False) -> np.ndarray:
        """The face shape that stage 1 predicts, as an ``HxWx3`` uint8 picture of the image's size: its HOG map
        drawn as scikit-image draws one (per 8x8 cell, a line along each orientation's edge direction, as bright
        as the bin; ``hog_visualise``), white on black, with the hole tinted red. ``image`` and ``mask`` as for
        ``inpaint``; the whole image is resized to the model's resolution (no face alignment or crops)."""
        import cv2

        rgb, hole, out = self.forward_whole_image(image, mask, threshold, resize_mask)
        lines = hog_visualise(out["hog"], HOG_CELL)[0, 0].cpu().numpy()
        size = (rgb.shape[1], rgb.shape[0])
        lines = cv2.resize(lines, size, interpolation=cv2.INTER_AREA if lines.shape[0] > size[1] else
                           cv2.INTER_LINEAR)
        picture = np.repeat(lines[..., None], 3, axis=2) * 255
        picture[hole, 0] = np.maximum(picture[hole, 0], 90)  # the predicted part: lines on dark red
        return picture.clip(0, 255).round().astype(np.uint8)

    @staticmethod
    def true_hog(image: torch.Tensor) -> torch.Tensor:
        """The training target: the HOG map of the whole (unmasked) face, in fp32, no gradient."""
        with torch.no_grad(), torch.autocast(image.device.type, enabled=False):
            return hog_map((image.float() + 1) / 2, HOG_BINS, HOG_CELL, 2, "L2-Hys", "bilinear")

    # --- training hooks used by facefill.train -------------------------------------------------------
    def build_discriminator(self) -> nn.Module:
        return HogFaceDiscriminators(self.config["disc_cnum"])

    def discriminator_loss(self, disc: nn.Module, batch: dict, out: dict) -> tuple[torch.Tensor, dict]:
        real = batch["image"]
        hogs = torch.cat([self.true_hog(real), out["hog"].detach().float()])
        images = torch.cat([real, out["output"].detach().to(real.dtype)])
        hog_score, image_score = disc(hogs.to(real.dtype), torch.cat([real, real]), images)
        d_hog = bce_d_loss(*hog_score.chunk(2))
        d_image = bce_d_loss(*image_score.chunk(2))
        loss = d_hog + d_image
        return loss, {"d_loss": loss.detach(), "d_hog": d_hog.detach(), "d_image": d_image.detach()}

    def generator_loss(self, disc: nn.Module | None, batch: dict, out: dict, gan_weight: float
                       ) -> tuple[torch.Tensor, dict]:
        cfg = self.config
        target, mask = batch["image"], batch["mask"].float()
        output = out["output"]
        hog_l1 = HOG_SCALE * (out["hog"].float() - self.true_hog(target)).abs().mean()
        l1 = (output.float() - target.float()).abs().mean() / mask.mean().clamp_min(1e-3)
        loss = hog_l1 + l1
        logs = {"l1": l1.detach(), "hog_l1": hog_l1.detach()}
        if cfg["perceptual_weight"] or cfg["style_weight"]:  # both 0 (a reconstruction warm-up) skips VGG
            features = shared_vgg(VGG_LAYERS, output.device)  # at torchvision's standardised-input scale
            # EdgeConnect sums over layers; perceptual_loss / style_loss average
            n = len(VGG_LAYERS)
            k = EDGECONNECT_VGG_SCALE  # L1 of features scales by k, of Gram matrices by k**2
            perceptual = n * k * perceptual_loss(features(output), features(target))
            style = n * k ** 2 * style_loss(features(output * mask), features(target * mask))
            loss = loss + cfg["perceptual_weight"] * perceptual + cfg["style_weight"] * style
            logs.update(perceptual=perceptual.detach(), style=style.detach())
        if disc is not None and gan_weight > 0:
            hog_score, image_score = disc(out["hog"].to(output.dtype), target, output)
            adv_hog, adv_image = bce_g_loss(hog_score), bce_g_loss(image_score)
            adv = cfg["hog_adv_weight"] * adv_hog + cfg["adv_weight"] * adv_image
            loss = loss + gan_weight * adv
            logs.update(g_adv=adv.detach(), g_adv_hog=adv_hog.detach(), g_adv_image=adv_image.detach())
        return loss, logs


@register_model
def hogface(**kw) -> HogFace:
    """HOG-guided two-stage face inpainting: face-shape (HOG) predictor + guided inpainter (EdgeConnect-style)."""
    return HogFace(**{"cnum": 64, "resolution": 256, **kw})


@register_model
def hogface_tiny(**kw) -> HogFace:
    """HOG-guided face inpainting at test size (cnum 8, 64 px) for fast CPU tests; never trained."""
    return HogFace(**{"cnum": 8, "resolution": 64, "disc_cnum": 4, **kw})
