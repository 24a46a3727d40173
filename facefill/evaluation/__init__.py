"""Evaluation: per-image metrics (``metrics``) and the quality benchmark over fixed masks (``quality``)."""
from __future__ import annotations

from .metrics import (HIGHER_IS_BETTER, METRICS, PSNR_MAX, MetricAccumulator, image_metrics, l1, psnr, ssim,
                      ssim_map)
from .quality import Example, Records, evaluate, markdown_tables, write_report

__all__ = ["HIGHER_IS_BETTER", "METRICS", "PSNR_MAX", "MetricAccumulator", "image_metrics", "l1", "psnr", "ssim",
           "ssim_map", "Example", "Records", "evaluate", "markdown_tables", "write_report"]
