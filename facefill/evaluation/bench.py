"""Speed benchmark: milliseconds per image, images per second and peak memory of each model, per device.

    from facefill.evaluation.bench import benchmark, report
    records = benchmark(["deepfill_v2", "telea", "lama_reference"], size=256, batches=(1, 8))
    print(report(records))          # machine, settings, one markdown table, notes

What is timed (``path`` of a record):
  - ``"forward"`` (network models): the tensor ``forward`` in eval mode under ``torch.inference_mode`` on a batch of
    ``B`` random images in [-1, 1] at ``size x size`` with free-form masks; ``ms_per_image`` = batch time / ``B``.
  - ``"inpaint"``: the public ``model.inpaint(image, mask)`` on a ``size x size`` portrait (the bundled astronaut),
    which is what users feel: input conversion, a window around each group of holes scaled to the model's own
    ``resolution`` (recorded: it may differ from ``size``), forward, paste-back, with ``align="off"``. Batch 1 for
    network models; for the classical baselines ``B`` images one after another.
  - ``"inpaint+align"`` (network models, when dlib is installed): the same call with its default
    ``align="auto"``: dlib's face detection and landmarks, the warp into the face's training frame and back
    (``facefill.align``), on top of ``"inpaint"``.
Each measurement runs ``warmup`` untimed calls, then ``repeats`` timed calls; the **median** is reported.
Masks: ``evaluation_mask(i, (0.2, 0.3), size, seed=0)`` (20-30% holes; the classical methods slow down with
bigger holes, the networks do not).

``peak_mem_mb`` is the memory added *while running* one call, over what was in use just before it (the weights
and the inputs): activations, workspaces, caches. It is measured on one extra call after the timed ones, in
steady state (one-time initialisation done) and apart from the timings.
  - CPU: first freed heap memory is handed back to the OS (``gc.collect`` + glibc ``malloc_trim``) and the
    kernel's peak-RSS counter of the process is reset (``5`` written to ``/proc/self/clear_refs``); after the call
    the peak is ``VmHWM`` of ``/proc/self/status``, tracked by the kernel, so it is exact and costs no time. Where
    the reset is refused, a thread samples ``VmRSS`` every 2 ms instead (it can miss shorter peaks and takes a
    little CPU). ``None`` off Linux.
  - CUDA: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus the memory allocated
    before: tensors only, not the caching allocator's spare reserve.

Weights: shipped weights when a model has them, else fresh untrained ones (speed does not depend on the values);
``lama_reference`` (Big-LaMa's generator, random weights) is the speed reference; it inpaints at the image's own
size (LaMa is resolution-robust: no window scaled to a training size), and every record gets
``vs_reference`` = reference ms / model ms (> 1: faster than LaMa) when the reference ran in the same call on the
same device, path, batch and size.
"""
from __future__ import annotations

import ctypes
import gc
import os
import platform
import re
import statistics
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..align import dlib_missing
from ..data.masks import evaluation_mask
from ..inpainter import Inpainter
from ..windows import crop_boxes

REFERENCE = "lama_reference"
MASK_BUCKET = (0.2, 0.3)
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class BenchRecords(list):
    """The record dicts returned by ``benchmark`` (JSON-ready as a plain list) plus ``meta``: machine and settings."""

    def __init__(self, items=(), meta: dict | None = None):
        super().__init__(items)
        self.meta = meta or {}


# --- machine -------------------------------------------------------------------------------------------------

def machine_info() -> dict:
    """CPU model, core / thread counts, load, torch version and GPU names of this machine."""
    import torch

    cpu, physical = platform.processor() or platform.machine(), None
    try:
        blocks = [dict(re.findall(r"^([^:\n]+?)\s*:\s*(.*)$", b, re.M))
                  for b in Path("/proc/cpuinfo").read_text().split("\n\n") if b.strip()]
        cpu = next((b["model name"] for b in blocks if "model name" in b), cpu)
        cores = {(b.get("physical id"), b["core id"]) for b in blocks if "core id" in b}
        physical = len(cores) or None
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "physical_cores": physical,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
    }
    return info


# --- memory ---------------------------------------------------------------------------------------------------

def _status_mb(field: str) -> float | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _trim_heap() -> None:
    gc.collect()
    try:  # glibc keeps freed blocks; hand them back so the baseline is not inflated by earlier runs
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Context manager measuring the peak memory added inside it on ``device`` (see the module docstring);
    the result, in MiB (or ``None`` where it cannot be measured), is ``.mb`` after the block."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.002):
        self.device = device
        self.interval_s = interval_s
        self.mb: float | None = None
        self.method = ""

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
            return self
        _trim_heap()
        self._base = _status_mb("VmRSS")
        self._sampler = None
        if self._base is None:
            self.method = "unavailable"
            return self
        try:
            _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            if _status_mb("VmHWM") > self._base + 1:
                raise OSError("peak RSS counter was not reset")
            self.method = "VmHWM after clear_refs reset"
        except (OSError, TypeError):
            self.method = f"VmRSS sampled every {self.interval_s * 1000:g} ms"
            self._peak = self._base
            self._stop = threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = _status_mb("VmRSS")
            if rss is not None:
                self._peak = max(self._peak, rss)

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self._base is None:
            self.mb = None
        elif self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self.mb = max(self._peak, _status_mb("VmRSS") or 0) - self._base
        else:
            self.mb = _status_mb("VmHWM") - self._base
        if self.mb is not None:
            self.mb = max(0.0, self.mb)


# --- timing ---------------------------------------------------------------------------------------------------

def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: str = "cpu", warmup: int = 1, repeats: int = 5
            ) -> tuple[float, float | None, str]:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones; then the peak memory (MiB)
    added by one more call, measured on its own so that it does not disturb the timings and counts neither
    one-time initialisation (done by then) nor memory kept from the earlier calls (handed back first); and how
    that memory was measured."""
    for _ in range(warmup):
        fn()
        _sync(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    with PeakMemory(device) as mem:
        fn()
    return statistics.median(times), mem.mb, mem.method


# --- models ---------------------------------------------------------------------------------------------------

def _build(m, device: str, size: int) -> tuple[str, Inpainter, str]:
    """``(name, model, weights)`` where weights is ``trained``, ``untrained``, ``random (reference)`` or ``none``."""
    import torch

    import facefill
    from ..pretrained import WeightsError
    from ..registry import create_model

    if isinstance(m, Inpainter):
        name, model, weights = getattr(m, "name", "") or type(m).__name__, m, "as given"
    elif m == REFERENCE:
        # LaMa is resolution-robust and runs at the image's own size (no crop scaled to a training size)
        name, model, weights = m, create_model(m, random_weights=True, resolution=size), "random (reference)"
    else:
        name = str(m)
        try:
            model, weights = facefill.load(name, device=device), "trained"
        except WeightsError:
            model, weights = create_model(name), "untrained"
    if isinstance(model, torch.nn.Module):
        model = model.to(device).eval()
    else:
        weights = "none" if weights == "trained" else weights
    return name, model, weights


def _portrait(size: int) -> np.ndarray:
    import cv2

    from ..demo import demo_image

    return cv2.resize(np.asarray(demo_image().convert("RGB")), (size, size), interpolation=cv2.INTER_AREA)


def benchmark(models: Iterable, size: int = 256, batches: Iterable[int] = (1, 8), devices: Iterable[str] = ("cpu",),
              repeats: int = 5, warmup: int = 1, threads: int | None = None, seed: int = 0, amp: str = "auto",
              progress: Callable[[str], None] | None = None) -> BenchRecords:
    """Time ``models`` (registered names, weights folders or ``Inpainter`` objects) on each device; see the module
    docstring for what is measured. Returns ``BenchRecords`` of dicts ``{model, device, path, batch, size,
    resolution, params, weights, precision, ms_per_image, images_per_s, peak_mem_mb, windows, vs_reference}`` with
    ``meta`` = machine info and settings. ``threads`` sets torch's and OpenCV's CPU threads for the run; ``amp``
    the networks' precision (``facefill.precision``: ``auto`` is what ``facefill.load`` gives users), for both
    paths; ``precision`` says what it meant on each device (``fp32``, ``bf16``; ``-`` for classical methods)."""
    from ..precision import check_amp

    import cv2
    import torch

    models, batches, devices = list(models), [int(b) for b in batches], list(devices)
    if not models:
        raise ValueError("no models to benchmark: give at least one name (see `facefill models`)")
    if size < 8:
        raise ValueError(f"size must be at least 8 px, got {size}")
    if not batches or min(batches) < 1:
        raise ValueError(f"batch sizes must be positive integers, got {batches}")
    check_amp(amp)
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for device in devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__})")
        if not (device == "cpu" or device.startswith("cuda")):
            raise ValueError(f"device must be cpu or cuda[:N], got {device!r}")
    say = progress or (lambda _msg: None)
    old_threads, old_cv = torch.get_num_threads(), cv2.getNumThreads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    try:
        meta = {"machine": machine_info(), "size": size, "batches": batches, "devices": devices, "repeats": repeats,
                "warmup": warmup, "threads": threads, "mask_bucket": list(MASK_BUCKET), "seed": seed,
                "reference": REFERENCE}
        started = time.perf_counter()
        holes = [evaluation_mask(i, MASK_BUCKET, size, seed).astype(bool) for i in range(max(batches))]
        portrait = _portrait(size)
        meta["hole_ratio"] = round(float(np.mean([h.mean() for h in holes])), 3)
        records = BenchRecords(meta=meta)
        for m in models:
            for device in devices:
                records.extend(_bench_model(m, device, size, batches, holes, portrait, repeats, warmup, seed, amp,
                                            say))
        meta["wall_s"] = round(time.perf_counter() - started, 1)
        meta["memory_method"] = sorted({r.pop("_memory_method") for r in records})
    finally:
        torch.set_num_threads(old_threads)
        cv2.setNumThreads(old_cv)
    add_ratios(records)
    return records


def _bench_model(m, device, size, batches, holes, portrait, repeats, warmup, seed, amp, say) -> list[dict]:
    import torch

    from ..precision import autocast, use_bf16

    name, model, weights = _build(m, device, size)
    network = isinstance(model, torch.nn.Module)
    if network:
        model.amp = amp
        precision = "bf16" if use_bf16(amp, torch.device(device)) else "fp32"
    if not network and device != "cpu":
        say(f"{name}: classical, CPU only; skipped on {device}")
        return []
    params = sum(p.numel() for p in model.parameters()) if network else 0
    resolution = getattr(model, "resolution", None) if network else None
    base = {"model": name, "device": device, "size": size, "resolution": resolution, "params": params,
            "weights": weights, "precision": precision if network else "-"}
    out = []

    def record(path: str, batch: int, fn, windows: int | None = None) -> None:
        say(f"{name}: {path}, batch {batch}, {size} px, {device} ...")
        seconds, mem, method = measure(fn, device, warmup, repeats)
        ms = 1000 * seconds / batch
        out.append({**base, "path": path, "batch": batch, "ms_per_image": ms, "images_per_s": 1000 / ms,
                    "peak_mem_mb": mem, "windows": windows, "vs_reference": None, "_memory_method": method})

    if network:
        multiple = getattr(model, "pad_multiple", 1)
        if size % multiple:
            raise ValueError(f"{name} needs sizes that are multiples of {multiple} for its forward; got {size}")
        g = torch.Generator().manual_seed(seed)
        for batch in batches:
            image = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
            mask = torch.from_numpy(np.stack(holes[:batch])[:, None].astype(np.float32)).to(device)

            def forward(image=image, mask=mask):
                with torch.inference_mode(), autocast(amp, torch.device(device)):
                    model(image, mask)

            record("forward", batch, forward)
            del image, mask
        windows = len(crop_boxes(holes[0], model.min_window)) if resolution else None
        record("inpaint", 1, lambda: model.inpaint(portrait, holes[0], align="off"), windows)
        if dlib_missing() is None:  # the default call: face detection and the aligned frame on top
            record("inpaint+align", 1, lambda: model.inpaint(portrait, holes[0], align="auto"))
    else:
        for batch in batches:
            record("inpaint", batch,
                   lambda batch=batch: [model.inpaint(portrait, h, align="off") for h in holes[:batch]])
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def add_ratios(records: list[dict], reference: str = REFERENCE) -> list[dict]:
    """Set ``vs_reference`` = reference ms / ms on each record whose (device, path, batch, size) the reference
    was also measured at in ``records`` (> 1: faster than the reference); ``None`` elsewhere."""
    ref = {(r["device"], r["path"], r["batch"], r["size"]): r["ms_per_image"] for r in records
           if r["model"] == reference}
    for r in records:
        key = (r["device"], r["path"], r["batch"], r["size"])
        r["vs_reference"] = ref[key] / r["ms_per_image"] if key in ref and r["ms_per_image"] > 0 else None
    return records


# --- output ---------------------------------------------------------------------------------------------------

def _params(n: int) -> str:
    return "-" if not n else f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _ratio(r: dict, reference: str) -> str:
    x = r.get("vs_reference")
    if r["model"] == reference:
        return "reference"
    if x is None:
        return ""
    x, word = (x, "faster") if x >= 1 else (1 / x, "slower")
    return f"{x:.1f}x {word}" if x < 10 else f"{x:.0f}x {word}"


def _ms(ms: float) -> str:
    return f"{ms:.3g}" if ms < 10 else f"{ms:.0f}"


def markdown_table(records: list[dict], reference: str = REFERENCE) -> str:
    """One markdown table, a row per record: model, path, device, batch, sizes, params, speed, memory, vs LaMa."""
    lines = ["| model | path | device | batch | image px | model px | params | weights | precision | ms / image "
             "| images / s | peak mem (MiB) | vs LaMa |",
             "|---|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|"]
    for r in records:
        res = r["resolution"] if r["resolution"] else "native"
        if r.get("windows") and r["windows"] > 1:
            res = f"{res} x{r['windows']} windows"
        mem = "n/a" if r["peak_mem_mb"] is None else f"{r['peak_mem_mb']:.0f}"
        lines.append(f"| {r['model']} | {r['path']} | {r['device']} | {r['batch']} | {r['size']} | {res} | "
                     f"{_params(r['params'])} | {r['weights']} | {r.get('precision', '-')} | "
                     f"{_ms(r['ms_per_image'])} | {r['images_per_s']:.3g} | {mem} | {_ratio(r, reference)} |")
    return "\n".join(lines) + "\n"


def describe_machine(info: dict) -> str:
    cores = f"{info['physical_cores']} cores / " if info.get("physical_cores") else ""
    gpus = ", ".join(info["gpus"]) if info.get("gpus") else "no GPU"
    load = f"; load average {info['load_avg_1min']} at start" if info.get("load_avg_1min") is not None else ""
    return (f"{info['cpu']}, {cores}{info['logical_cpus']} threads ({info['usable_cpus']} usable, torch uses "
            f"{info['torch_threads']}); torch {info['torch']}, Python {info['python']}; {gpus}{load}")


def report(records: BenchRecords, command: str | None = None) -> str:
    """Machine, settings, the table and what the columns mean, as markdown."""
    meta = getattr(records, "meta", {})
    head = []
    if command:
        head.append(f"Generated by `{command}`. Do not edit by hand.")
    if meta:
        head.append(f"Machine: {describe_machine(meta['machine'])}.")
        head.append(f"Settings: {meta['size']} px, median of {meta['repeats']} timed run(s) after {meta['warmup']} "
                    f"warm-up run(s); masks with {round(100 * meta['mask_bucket'][0])}-"
                    f"{round(100 * meta['mask_bucket'][1])}% holes (mean {meta['hole_ratio']:.0%}); "
                    f"wall time {meta['wall_s']} s.")
    notes = ["`forward`: the network alone on a batch of random tensors at the image size; `inpaint`: the public "
             "`model.inpaint` on one image (for classical methods: batch = images one after another), which "
             "scales each hole's window to the model's own resolution (model px), with `align=\"off\"`; `inpaint+align`: "
             "the same call with its default `align=\"auto\"` (dlib face detection and landmarks, and the warp into "
             "the face's training frame and back).",
             "peak mem: memory added by one call (an extra one after the timed runs), over weights and inputs "
             "(CPU: peak RSS, "
             + (", ".join(meta.get("memory_method", [])) or "see facefill/evaluation/bench.py")
             + "; CUDA: torch.cuda.max_memory_allocated).",
             f"vs LaMa: `{REFERENCE}` ms / model ms, measured in this run on the same device, path, batch and size "
             "(Big-LaMa's 51M-parameter generator with random weights; it inpaints at the image's own size)."]
    untrained = sorted({r["model"] for r in records if r["weights"] in ("untrained", "random (reference)")})
    if untrained:
        notes.append(f"Untrained (random) weights for {', '.join(untrained)}: no trained weights ship; speed does not "
                     "depend on the weight values.")
    return "\n\n".join(head + [markdown_table(records).rstrip()]) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def readme_block(readme: str, records: BenchRecords, command: str) -> str:
    """``readme`` with its ``<!-- bench:start -->`` ... ``<!-- bench:end -->`` block replaced by ``report``."""
    from .quality import replace_block

    return replace_block(readme, "bench", report(records, command))
