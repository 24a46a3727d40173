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
