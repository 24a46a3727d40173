"""Per-image inpainting metrics on uint8 ``HxWx3`` arrays and a bool ``HxW`` hole mask (True = hole).

Whole-image metrics follow the DeepFill / GLCIC papers (the known pixels are pasted back, so they count as
exact): ``l1`` (mean absolute error, pixel values in [0, 1]), ``psnr`` (dB, peak 1.0 i.e. 255) and ``ssim``
(``skimage.metrics.structural_similarity`` with ``channel_axis=-1, data_range=255`` and its default 7x7 window).
Hole-only metrics look at the hole pixels alone: ``l1_hole``, ``psnr_hole`` and ``ssim_hole`` (the mean of the
SSIM map, averaged over channels, at the hole pixels; windows near the hole border still see known pixels).

PSNR of identical images is infinite; it is capped at ``PSNR_MAX`` (100 dB) so that averages stay finite.
Hole-only metrics of an empty hole are undefined and raise ``ValueError``.
Dataset scores are means of the per-image values (``MetricAccumulator``), as in DeepFill and LaMa.
"""
from __future__ import annotations

import math

import numpy as np

PSNR_MAX = 100.0  # dB; reported for a zero error instead of inf

# metric name -> whether a higher value is better
HIGHER_IS_BETTER: dict[str, bool] = {
    "l1": False, "psnr": True, "ssim": True,
    "l1_hole": False, "psnr_hole": True, "ssim_hole": True,
}
METRICS: tuple[str, ...] = tuple(HIGHER_IS_BETTER)


def _check(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray | None = None) -> None:
    for what, arr in (("prediction", pred), ("truth", truth)):
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"{what} must be a uint8 HxWx3 array, got {arr.dtype} {arr.shape}")
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in size")
    if hole is not None:
        if hole.dtype != bool or hole.shape != pred.shape[:2]:
            raise ValueError(f"hole must be a bool HxW array of the image's size {pred.shape[:2]}, "
                             f"got {hole.dtype} {hole.shape}")
        if not hole.any():
            raise ValueError("the hole is empty: hole-only metrics are undefined")


def _diff(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return (pred.astype(np.float64) - truth.astype(np.float64)) / 255.0


def _psnr_from_mse(mse: float) -> float:
    if mse <= 10 ** (-PSNR_MAX / 10):
        return PSNR_MAX
    return 10.0 * math.log10(1.0 / mse)


def l1(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray | None = None) -> float:
    """Mean absolute error in [0, 1] units, over the whole image or over ``hole`` pixels only."""
    _check(pred, truth, hole)
    d = np.abs(_diff(pred, truth))
    return float(d.mean() if hole is None else d[hole].mean())


def psnr(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray | None = None) -> float:
    """PSNR in dB with peak 1.0 (255), over the whole image or ``hole`` pixels only; capped at ``PSNR_MAX``."""
    _check(pred, truth, hole)
    sq = _diff(pred, truth) ** 2
    return _psnr_from_mse(float(sq.mean() if hole is None else sq[hole].mean()))


def ssim_map(pred: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
    """``(mean SSIM, HxW SSIM map averaged over channels)`` (skimage, data_range 255, 7x7 window)."""
    from skimage.metrics import structural_similarity

    _check(pred, truth)
    mean, full = structural_similarity(pred, truth, channel_axis=-1, data_range=255, full=True)
    return float(mean), full.mean(axis=-1)


def ssim(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray | None = None) -> float:
    """SSIM of the whole image (skimage's mean), or the mean of the SSIM map over ``hole`` pixels."""
    _check(pred, truth, hole)
    mean, full = ssim_map(pred, truth)
    return mean if hole is None else float(full[hole].mean())


def image_metrics(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """All of ``METRICS`` for one image (SSIM computed once for both the whole image and the hole)."""
    _check(pred, truth, hole)
    d = _diff(pred, truth)
    ad, sq = np.abs(d), d * d
    ssim_mean, full = ssim_map(pred, truth)
    return {
        "l1": float(ad.mean()),
        "psnr": _psnr_from_mse(float(sq.mean())),
        "ssim": ssim_mean,
        "l1_hole": float(ad[hole].mean()),
        "psnr_hole": _psnr_from_mse(float(sq[hole].mean())),
        "ssim_hole": float(full[hole].mean()),
    }


class MetricAccumulator:
    """Averages per-image metrics over a data set (LaMa-style ``update / compute / reset``).

    >>> acc = MetricAccumulator()
    >>> acc.update(pred, truth, hole)   # returns this image's metrics
    >>> acc.compute()                   # {"l1": mean, ..., } over the images seen; acc.n images
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self._sums = dict.fromkeys(METRICS, 0.0)

    def update(self, pred: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> dict[str, float]:
        values = image_metrics(pred, truth, hole)
        self.add(values)
        return values

    def add(self, values: dict[str, float]) -> None:
        """Add one image's precomputed metrics (e.g. to pool several accumulators' images)."""
        for k in METRICS:
            self._sums[k] += values[k]
        self.n += 1

    def merge(self, other: "MetricAccumulator") -> None:
        """Pool ``other``'s images into this one (e.g. every bucket into ``all``)."""
        for k in METRICS:
            self._sums[k] += other._sums[k]
        self.n += other.n

    def compute(self) -> dict[str, float]:
        if self.n == 0:
            raise ValueError("no images were added: nothing to average")
        return {k: v / self.n for k, v in self._sums.items()}
