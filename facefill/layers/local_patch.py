"""Local patches around the hole for the local discriminators of GLCIC (Iizuka et al., SIGGRAPH'17, sec. 3.2)
and DeepFill v1 (Yu et al., CVPR'18, sec. 3.2), for free-form masks."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hole_boxes(mask: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` bounding box (end-exclusive) of each sample's hole; the whole image for an empty mask.
    ``mask`` is ``(B, 1, H, W)``, 1 = hole."""
    holes = mask.detach()[:, 0] > 0.5
    rows, cols = holes.any(2).cpu(), holes.any(1).cpu()
    h, w = holes.shape[-2:]
    boxes = []
    for r, c in zip(rows, cols):
        if not r.any():
            boxes.append((0, h, 0, w))
            continue
        ys, xs = r.nonzero()[:, 0], c.nonzero()[:, 0]
        boxes.append((int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1))
    return boxes


def box_patches(x: torch.Tensor, boxes: list[tuple[int, int, int, int]], size: int) -> torch.Tensor:
    """Crop each sample's box and resize it (bilinear) to ``size x size``: DeepFill v1's local critic input."""
    crops = [F.interpolate(x[i:i + 1, :, y0:y1, x0:x1], size=(size, size), mode="bilinear", align_corners=False)
             for i, (y0, y1, x0, x1) in enumerate(boxes)]
    return torch.cat(crops, 0)


def centred_patches(x: torch.Tensor, boxes: list[tuple[int, int, int, int]], size: int) -> torch.Tensor:
    """A ``size x size`` window centred on each box, moved inside the image (no resizing): GLCIC's local
    discriminator sees the completed region at the image's own scale."""
    h, w = x.shape[-2:]
    crops = []
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        top = min(max((y0 + y1 - size) // 2, 0), h - size)
        left = min(max((x0 + x1 - size) // 2, 0), w - size)
        crops.append(x[i:i + 1, :, top:top + size, left:left + size])
    return torch.cat(crops, 0)
