"""What every model shares at inference: input conversion, the any-size crop strategy, pasting back only the hole.

``Inpainter.inpaint(image, mask, **guidance)`` is the public call for every model (neural or classical):
  - ``image``: PIL.Image or ``HxWx3`` / ``HxW`` / ``HxWx4`` array, any size and mode (see ``facefill.imageio``);
  - ``mask``: PIL.Image or ``HxW`` array of the image's size; white = hole: values >= ``threshold`` (default
    0.5) of the full range, or 1 in a 0/1 mask (bool / 0-1 integer array, grey image of only 0 and 1);
  - ``**guidance``: user drawings named after the model's ``inputs`` (``sketch``, ``color``), read by
    ``facefill.guidance`` into float arrays in [0, 1] (sketch ``HxW``, colour ``HxWx3``) for ``inpaint_array``;
  - returns a PIL.Image of the input's size; pixels outside the hole are exactly the input's (alpha kept).

Network models implement ``forward`` on tensors at their own resolution; ``NetworkInpainter.inpaint_array``
first fills the holes that touch a face in that face's aligned training frame (``align="auto"``, the default; see
``facefill.align``), then crops a square around each remaining hole (with context margin), scales it to the model's
resolution (padding, never distorting, when the image is small), runs the model and pastes the result back into
that hole only (the generic strategy; all of it with ``align="off"``). Classical models work at native resolution
and ignore ``align``.
"""
from __future__ import annotations

import os
import warnings
from functools import partial

import cv2
import numpy as np
import torch
from torch import nn

from . import imageio
from .align import ALIGN_MODES, note, plan
from .guidance import convert as convert_guidance
from .precision import autocast
from .windows import crop_boxes, inside, paste, resample_known, take



class Inpainter:
    """Base of every facefill model. Subclasses set ``inputs`` and implement ``inpaint_array``."""

    name: str = ""
    inputs: tuple[str, ...] = ("image", "mask")
    aligns_faces: bool = False  # True: inpaint_array takes ``align`` (models trained on aligned face crops)

    def inpaint(self, image, mask, *, threshold: float = 0.5, resize_mask: bool = False, align: str = "auto",
                **guidance):
        """Fill the hole of ``image`` marked by ``mask``; see the module docstring for the contract.

        ``guidance``: drawings for models whose ``inputs`` name them (``None`` = not given): ``sketch``, a line
        drawing (transparent layer, or either polarity on an opaque background) and ``color``, colour strokes
        (RGBA, or RGB with black = unpainted); see ``facefill.guidance``. A name the model does not take is a
        ``TypeError``.
        ``resize_mask``: resize a mask and drawings of another size to the image's size (nearest neighbour for the
        mask; area average when shrinking, nearest neighbour when enlarging for drawings) instead of raising
        ``ImageError``.
        ``align``: ``"auto"`` inpaints holes that touch a face in the face's aligned frame when dlib finds one,
        ``"face"`` requires it (``facefill.align.FaceNotFoundError`` otherwise), ``"off"`` uses generic crops."""
        unknown = {k for k, v in guidance.items() if v is not None} - set(self.inputs)
        if unknown:
            raise TypeError(f"model {self.name!r} does not take {sorted(unknown)}; it takes {list(self.inputs)}")
        if align not in ALIGN_MODES:
            raise ValueError(f"align must be one of {', '.join(ALIGN_MODES)}; got {align!r}")
        if align != "off" and not self.aligns_faces:
            note("align=%s ignored: %s inpaints at the image's native resolution", align, self.name)
        if isinstance(image, (str, os.PathLike)):
            image = imageio.read_image(image)
        icc = imageio.rgb_icc_profile(image)  # kept: the same RGB values mean the same colours only with it
        rgb, alpha = imageio.to_rgb(image)
        size = (rgb.shape[1], rgb.shape[0])
        hole = imageio.to_mask(mask, size, threshold=threshold, resize=resize_mask)
        drawings = convert_guidance(self.inputs, size, guidance, resize=resize_mask)
        if not hole.any():
            warnings.warn("the mask is empty: nothing to inpaint, returning the input unchanged", stacklevel=2)
            return imageio.to_pil(rgb, alpha, icc)
        if hole.all():
            warnings.warn("the mask covers the whole image: there is no context, the result is a guess",
                          stacklevel=2)
        extra = {"align": align} if self.aligns_faces else {}
        filled = self.inpaint_array(rgb, hole, **extra, **drawings)
        out = np.where(hole[..., None], filled, rgb)
        return imageio.to_pil(out, alpha, icc)

    def inpaint_array(self, rgb: np.ndarray, hole: np.ndarray, **guidance) -> np.ndarray:
        """``rgb`` uint8 ``HxWx3``, ``hole`` bool ``HxW`` -> uint8 ``HxWx3`` (only hole pixels are used)."""
        raise NotImplementedError


class NetworkInpainter(nn.Module, Inpainter):
    """Base of the trainable models: ``forward`` on tensors, the crop strategy for any image size.

    Subclasses set ``resolution`` (the square size they were trained at), ``pad_multiple`` and ``config``
    (their constructor arguments, saved as ``config.json``), and return ``{"output": (B,3,H,W)}`` from
    ``forward(image, mask, **guidance)``.

    ``frame`` is a property of trained weights (``config.json``'s ``frame``, set by ``load_pretrained``): the side,
    in native pixels, of the training crops before they were scaled to ``resolution`` (256 for celeba256 crops
    trained at 128). Generic windows are at least that large, so the model sees faces at the scale it learned;
    ``None`` means ``resolution``.

    ``amp`` (``"auto"``, ``"bf16"``, ``"off"``; see ``facefill.precision``) sets the network's precision at
    inference: ``auto`` runs it under bf16 autocast on CUDA and on CPUs with native bf16 (about twice as fast
    there), in fp32 elsewhere. Known pixels stay exact either way (they are pasted back from the input).
    """

    resolution: int = 256
    amp: str = "auto"
    frame: int | None = None
    pad_multiple: int = 8
    aligns_faces = True
    config: dict

    @property
    def min_window(self) -> int:
        """Smallest generic window side in image pixels: the training frame, at least ``resolution``."""
        return max(self.resolution, self.frame or self.resolution)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def predict(self, rgb: np.ndarray, hole: np.ndarray, **guidance) -> np.ndarray:
        """Run the network on one ``res x res`` window: uint8 rgb, bool hole -> uint8 rgb (raw, not composited)."""
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(self.device)
        mask = torch.from_numpy(hole.astype(np.float32))[None, None].to(self.device)
        extra = {k: torch.from_numpy(np.ascontiguousarray(v)).float().to(self.device)[None].permute(0, 3, 1, 2)
                 if v.ndim == 3 else torch.from_numpy(v).float().to(self.device)[None, None]
                 for k, v in guidance.items()}
        was_training = self.training
        try:
            with autocast(self.amp, self.device):
                out = self.eval()(image, mask, **extra)["output"].float()
        finally:
            self.train(was_training)
        return out[0].clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy()

    @torch.no_grad()
    def forward_whole_image(self, image, mask, threshold: float = 0.5, resize_mask: bool = False
                            ) -> tuple[np.ndarray, np.ndarray, dict]:
        """The network's outputs on the whole image resized to ``resolution`` (no face alignment, no crops), for
        pictures of what it computes inside (deepfill_v1's attention offsets, hogface's predicted HOG map).
        ``image`` and ``mask`` as for ``inpaint``. Returns ``(rgb, hole, outputs)``: the image as ``HxWx3`` uint8,
        the hole as ``HxW`` bool, and ``forward``'s dict of tensors (batch of one, fp32, on the model's device)."""
        rgb, _ = imageio.to_rgb(image)
        hole = imageio.to_mask(mask, (rgb.shape[1], rgb.shape[0]), threshold=threshold, resize=resize_mask)
        res = self.resolution
        x = cv2.resize(rgb, (res, res), interpolation=cv2.INTER_AREA)
        m = cv2.resize(hole.astype(np.uint8), (res, res), interpolation=cv2.INTER_NEAREST)
        x = torch.from_numpy(x).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(self.device)
        m = torch.from_numpy(m)[None, None].float().to(self.device)
        was_training = self.training
        try:
            out = self.eval()(x, m)
        finally:
            self.train(was_training)
        return rgb, hole, {k: v.float() for k, v in out.items() if isinstance(v, torch.Tensor)}

    def inpaint_array(self, rgb: np.ndarray, hole: np.ndarray, align: str = "off", **guidance) -> np.ndarray:
        res = self.resolution
        work = rgb.copy()
        remaining = hole.copy()
        if align != "off":
            for window, part in plan(rgb, hole, res, align):
                result = self.predict(*window.take_image(work, remaining),
                                      **{k: window.take(v) for k, v in guidance.items()})
                # a face's part lies inside its frame, so inside the frame's box
                paste(work, window.put_back(result), window.box, part[inside(window.box, part.shape)])
                remaining &= ~part
        # generic windows are at least the model's resolution (min_window), so they only ever shrink: area averages
        shrink = partial(cv2.resize, dsize=(res, res), interpolation=cv2.INTER_AREA)
        for box, group in crop_boxes(remaining, self.min_window) if remaining.any() else []:
            # mirrored with the image: past the border, a mirrored hole pixel holds what the hole hides, so it
            # is hole too (never context the model could copy the removed content back from); a view of the hole,
            # not a whole-image copy per window
            crop, crop_hole = resample_known(take(work, box), take(remaining.view(np.uint8), box), shrink)
            crop_guidance = {k: shrink(take(v, box)) for k, v in guidance.items()}
            result = self.predict(crop, crop_hole, **crop_guidance)
            if box.side != res:
                result = cv2.resize(result, (box.side, box.side), interpolation=cv2.INTER_CUBIC)
            paste(work, result, box, group)
            remaining[inside(box, remaining.shape)] &= ~group
        return work
