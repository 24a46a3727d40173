"""Mixed precision: where bf16 autocast pays, for training and inference alike.

``amp`` settings: ``"bf16"`` (always autocast to bfloat16), ``"off"`` (fp32), ``"auto"`` (bf16 on CUDA and on CPUs
with native bf16 arithmetic, fp32 elsewhere).
"""
from __future__ import annotations

from pathlib import Path

import torch

AMP_MODES = ("auto", "bf16", "off")


def cpu_has_fast_bf16() -> bool:
    """bf16 autocast only pays on CPUs with native bf16 (AVX512-BF16 / AMX); elsewhere PyTorch falls back to
    reference kernels that are 30-50x slower than fp32 (measured on an AVX2-only EPYC)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_amp(amp: str) -> str:
    """``amp`` itself, or ``ValueError`` for a setting that is not one of ``AMP_MODES``."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}; got {amp!r}")
    return amp


def use_bf16(amp: str, device: torch.device) -> bool:
    """Whether ``amp`` means bf16 autocast on ``device``; ``ValueError`` for an unknown setting."""
    if check_amp(amp) == "auto":
        return device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())
    return amp == "bf16"


def autocast(amp: str, device: torch.device) -> torch.autocast:
    """The ``torch.autocast`` context that ``amp`` asks for on ``device`` (disabled for fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16(amp, device))
