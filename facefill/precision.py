"""Mixed precision: where bf16 autocast pays, for training and inference alike.

``amp`` settings: ``"bf16"`` (always autocast to bfloat16), ``"off"`` (fp32), ``"auto"`` (bf16 on CUDA, and on CPUs
with native bf16 arithmetic where a gated-convolution-sized conv measures clearly faster in bf16; fp32 elsewhere).
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import torch

AMP_MODES = ("auto", "bf16", "off")


BF16_MIN_SPEEDUP = 1.3  # "auto" takes bf16 on a CPU only when it is at least this much faster than fp32


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """Whether bf16 autocast pays on this CPU, measured once per process (~0.1 s).

    Without native bf16 (AVX512-BF16 / AMX) PyTorch falls back to reference kernels 30-50x slower than fp32
    (an AVX2-only EPYC). Native bf16 alone does not settle it: on an AVX512-BF16 EPYC (Zen 4) the nets ran ~2x
    faster in bf16, on an AVX512-BF16 Xeon without AMX ~1.3x slower (training and inference alike). So the flag
    is checked first, then a 3x3 convolution of the models' width is timed both ways, best of five."""
    flags = cpu_flags()
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        return False
    return bf16_speedup() >= BF16_MIN_SPEEDUP


def cpu_flags() -> str:
    """The CPU's feature flags as ``/proc/cpuinfo`` lists them ("" where there is none)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def bf16_speedup() -> float:
    """fp32 time / bf16-autocast time of a 48 -> 96 channel 3x3 convolution on 4x48x64x64 on the CPU."""
    conv = torch.nn.Conv2d(48, 96, 3, padding=1)
    x = torch.randn(4, 48, 64, 64)

    def best(bf16: bool) -> float:
        times = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            conv(x)  # warm-up: the first call picks and builds the kernel
            for _ in range(5):
                start = time.perf_counter()
                conv(x)
                times.append(time.perf_counter() - start)
        return min(times)

    return best(False) / best(True)


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
