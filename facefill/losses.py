"""Losses shared across models. Each returns a scalar tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """SN-PatchGAN discriminator hinge loss (DeepFill v2, eq. 3): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1 - real_score.float()).mean() + F.relu(1 + fake_score.float()).mean()


def hinge_g_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss (DeepFill v2, eq. 2): -E[D(G(z))]."""
    return -fake_score.float().mean()


def wgan_d_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss (Arjovsky et al. 2017): E[D(G(z))] - E[D(x)], to be minimised (add a gradient penalty)."""
    return fake_score.float().mean() - real_score.float().mean()


def wgan_g_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss: -E[D(G(z))]."""
    return -fake_score.float().mean()


def bce_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator loss on logits: -log D(x) - log(1 - D(G(z))), with D = sigmoid(logits)."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def bce_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss on logits: -log D(G(z))."""
    fake_logits = fake_logits.float()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def random_interpolates(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
                        ) -> torch.Tensor:
    """x_hat = t * real + (1 - t) * fake with one t ~ U(0, 1) per sample (WGAN-GP, Gulrajani et al. 2017, alg. 1).
    The result requires grad, ready for ``gradient_penalty``."""
    t = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator, device=real.device)
    return (t * real.detach() + (1 - t) * fake.detach()).to(real.dtype).requires_grad_(True)


def gradient_penalty(score: torch.Tensor, inputs: torch.Tensor, mask: torch.Tensor | None = None,
                     target: float = 1.0) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - target)^2] (Gulrajani et al. 2017, eq. 3), without lambda.

    ``score`` is the critic's output on ``inputs`` (which must require grad). ``mask`` (broadcastable to
    ``inputs``) restricts the norm to those pixels: DeepFill v1 (sec. 3.2) penalises only the gradients of hole
    pixels, as ``gradients_penalty(..., mask=mask)`` in the authors' code."""
    grad, = torch.autograd.grad(score.float().sum(), inputs, create_graph=True)
    grad = grad.float() ** 2
    if mask is not None:
        grad = grad * mask.float()
    slopes = torch.sqrt(grad.flatten(1).sum(1) + 1e-12)
    return ((slopes - target) ** 2).mean()


def spatial_discount(mask: torch.Tensor, gamma: float = 0.99) -> torch.Tensor:
    """DeepFill v1's spatially discounted weights (sec. 3.1): a hole pixel weighs ``gamma ** l``, ``l`` its
    Euclidean distance to the nearest known pixel (1 next to the hole border); known pixels weigh 0.

    ``mask`` ``(B, 1, H, W)``, 1 = hole. Computed on the fly (exact distance transform, OpenCV), so it fits any
    free-form mask; the authors' code precomputes it for an axis-aligned box, where ``l`` is the distance to the
    box edge. A sample with no known pixel at all is measured to the image border instead."""
    import cv2
    import numpy as np

    holes = (mask.detach() > 0.5).squeeze(1).cpu().numpy().astype(np.uint8)
    dist = np.zeros(holes.shape, np.float32)
    for i, hole in enumerate(holes):
        if not hole.any():
            continue
        if hole.all():
            padded = np.pad(hole, 1)
            dist[i] = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        else:
            dist[i] = cv2.distanceTransform(hole, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    weights = torch.from_numpy(np.where(holes > 0, np.float32(gamma) ** dist, 0).astype(np.float32))
    return weights.unsqueeze(1).to(mask.device)


def discounted_l1(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Hole L1 weighted by ``spatial_discount`` weights, normalised by the number of hole pixels (the authors'
    ``reduce_mean`` over a fully-hole local patch) and channels."""
    holes = (weights > 0).float().sum().clamp_min(1.0)
    return ((pred.float() - target.float()).abs() * weights).sum() / (holes * pred.shape[1])
