"""Differentiable histograms of oriented gradients (Dalal & Triggs, CVPR'05) in PyTorch, laid out as
``skimage.feature.hog`` (scikit-image 0.19+) so the feature vectors can be compared one to one.

  gradients  : centred differences [-1, 0, 1] along rows and columns, zero on the image's first and last
               row/column; for colour input each pixel keeps the channel with the largest gradient magnitude;
  orientation: unsigned, atan2(g_row, g_col) in [0, 180) degrees;
  cells      : ``pixels_per_cell`` squares (a remainder at the right/bottom is dropped); each pixel votes its
               gradient magnitude into the orientation bins, the cell holds the mean vote per pixel;
               ``vote="hard"``: the bin the orientation falls in (scikit-image's choice);
               ``vote="bilinear"``: split linearly between the two nearest bin centres (Dalal & Triggs), so the
               histogram also varies smoothly with orientation — the default for training losses;
  blocks     : ``cells_per_block`` squares of cells with stride one cell, each normalised by "L2"
               (v / sqrt(|v|^2 + eps^2)) or "L2-Hys" (L2, clip at 0.2, L2 again), eps = 1e-5.
``hog_descriptor`` is the flattened (blocks_row, blocks_col, cell_row, cell_col, orientation) vector of
scikit-image; ``hog_map`` folds the normalised blocks back onto the cell grid (the mean of each cell's copies), a
``(B, orientations, H // ppc, W // ppc)`` image-like map for networks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NORMS = ("L2", "L2-Hys")


def _gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred differences, zero on the border rows/columns (scikit-image's ``_hog_channel_gradient``)."""
    g_row = torch.zeros_like(image)
    g_col = torch.zeros_like(image)
    g_row[..., 1:-1, :] = image[..., 2:, :] - image[..., :-2, :]
    g_col[..., 1:-1] = image[..., 2:] - image[..., :-2]
    return g_row, g_col


def hog_cells(image: torch.Tensor, orientations: int = 9, pixels_per_cell: int = 8, vote: str = "bilinear"
              ) -> torch.Tensor:
    """Cell orientation histograms ``(B, orientations, H // ppc, W // ppc)`` of ``image`` ``(B, C, H, W)``
    (any value range; C = 1 grey or C = 3 colour)."""
    if vote not in ("hard", "bilinear"):
        raise ValueError(f"vote must be 'hard' or 'bilinear', got {vote!r}")
    g_row, g_col = _gradients(image)
    # the smooth sqrt(. + tiny) keeps the gradient finite where the image is flat
    magnitude = torch.sqrt(g_row ** 2 + g_col ** 2 + torch.finfo(image.dtype).tiny)
    if image.shape[1] > 1:
        best = (g_row ** 2 + g_col ** 2).argmax(1, keepdim=True)
        g_row, g_col, magnitude = (t.gather(1, best) for t in (g_row, g_col, magnitude))
    # the angle only selects bins: no gradient through it for hard votes, a linear one for bilinear votes
    angle = torch.rad2deg(torch.atan2(g_row, g_col)) % 180
    width = 180.0 / orientations
    if vote == "hard":
        index = (angle.detach() / width).floor().long().clamp_(0, orientations - 1)
        votes = torch.zeros(image.shape[0], orientations, *image.shape[-2:], dtype=image.dtype, device=image.device)
        votes.scatter_(1, index, magnitude)
    else:
        pos = angle / width - 0.5                     # bin centres at (i + 0.5) * width
        low = pos.detach().floor()
        frac = pos - low
        low = low.long() % orientations
        high = (low + 1) % orientations
        votes = torch.zeros(image.shape[0], orientations, *image.shape[-2:], dtype=image.dtype, device=image.device)
        votes = votes.scatter_add(1, low, magnitude * (1 - frac)).scatter_add(1, high, magnitude * frac)
    return F.avg_pool2d(votes, pixels_per_cell, pixels_per_cell)


def hog_blocks(cells: torch.Tensor, cells_per_block: int = 2, norm: str = "L2-Hys", eps: float = 1e-5
               ) -> torch.Tensor:
    """Normalised blocks ``(B, blocks_row, blocks_col, cpb, cpb, orientations)`` from ``hog_cells``."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    b = cells_per_block
    blocks = cells.unfold(2, b, 1).unfold(3, b, 1)           # (B, O, Hb, Wb, b, b)
    blocks = blocks.permute(0, 2, 3, 4, 5, 1)                # (B, Hb, Wb, b, b, O)

    def l2(v):
        return v / torch.sqrt((v ** 2).sum((-3, -2, -1), keepdim=True) + eps ** 2)

    blocks = l2(blocks)
    if norm == "L2-Hys":
        blocks = l2(blocks.clamp(max=0.2))
    return blocks


def hog_descriptor(image: torch.Tensor, orientations: int = 9, pixels_per_cell: int = 8, cells_per_block: int = 2,
                   norm: str = "L2-Hys", vote: str = "bilinear") -> torch.Tensor:
    """``(B, D)`` feature vectors, in ``skimage.feature.hog(..., feature_vector=True)``'s order."""
    cells = hog_cells(image, orientations, pixels_per_cell, vote)
    return hog_blocks(cells, cells_per_block, norm).flatten(1)


def hog_map(image: torch.Tensor, orientations: int = 9, pixels_per_cell: int = 8, cells_per_block: int = 2,
            norm: str = "L2-Hys", vote: str = "bilinear") -> torch.Tensor:
    """``(B, orientations, H // ppc, W // ppc)``: each cell's block-normalised histogram, averaged over the
    blocks that contain it. ``image`` is ``(B, C, H, W)``; values of the map lie in [0, 1]."""
    cells = hog_cells(image, orientations, pixels_per_cell, vote)
    blocks = hog_blocks(cells, cells_per_block, norm)        # (B, Hb, Wb, b, b, O)
    b = cells_per_block
    hb, wb = blocks.shape[1:3]
    total = torch.zeros_like(cells)
    count = torch.zeros_like(cells[:1, :1])
    for r in range(b):
        for c in range(b):
            total[:, :, r:r + hb, c:c + wb] += blocks[:, :, :, r, c].permute(0, 3, 1, 2)
            count[:, :, r:r + hb, c:c + wb] += 1
    return total / count


def hog_visualise(hog: torch.Tensor, pixels_per_cell: int = 8) -> torch.Tensor:
    """Render a ``hog_map`` ``(B, O, h, w)`` as ``(B, 1, h * ppc, w * ppc)`` grey images in [0, 1]: per cell, a
    line through the centre perpendicular to each bin's gradient direction (along the edge), its brightness the
    bin's value (as scikit-image's ``visualize=True``)."""
    o = hog.shape[1]
    p = pixels_per_cell
    yy, xx = torch.meshgrid(torch.arange(p, dtype=hog.dtype), torch.arange(p, dtype=hog.dtype), indexing="ij")
    yy, xx = yy - (p - 1) / 2, xx - (p - 1) / 2
    kernels = []
    for i in range(o):
        theta = math.radians((i + 0.5) * 180.0 / o)
        # gradient direction (row, col) = (sin, cos); the edge runs perpendicular to it
        distance = (yy * math.sin(theta) + xx * math.cos(theta)).abs()
        kernels.append((distance < 0.75).to(hog.dtype))
    kernel = torch.stack(kernels).to(hog.device)             # (O, p, p)
    out = torch.einsum("bohw,opq->bhpwq", hog, kernel)
    b, h, _, w, _ = out.shape
    out = out.reshape(b, 1, h * p, w * p)
    return (out / out.amax((2, 3), keepdim=True).clamp_min(1e-6)).clamp(0, 1)
