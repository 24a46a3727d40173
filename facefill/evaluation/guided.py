"""Do sketches and colours steer a guided model (SC-FEGAN)? The acceptance measurement of issue 7.

Protocol: the first ``limit`` images of ``celeba256/test`` (name order), each with the fixed evaluation mask of
every bucket in ``buckets`` (``facefill.data.masks.evaluation_mask``, as ``facefill eval``). The guidance is made
from the ground truth the way the training data are (``facefill.data``), without random jitter:
  - sketch: strokes of the truth's edge map (HED when installed, else Canny; ``meta["sketch_method"]`` says which)
    inside the hole, threshold 0.35, given to the model as a transparent layer (alpha = line);
  - colour: the median colours of the truth's superpixels inside the hole, as an RGBA layer (alpha = hole).
Each hole is inpainted three ways: ``none`` (no guidance), ``sketch``, ``sketch+color``; scored inside the hole
(``l1_hole``, ``psnr_hole``) and on the whole image with ST-LPIPS when installed.

Colour control: the hole is painted with one flat colour far from its true colour (of ``PALETTE``, the one with
the largest CIELAB distance to the truth's mean colour in the hole) and inpainted with the sketch; the result's
mean colour in the hole is compared with the painted one (CIELAB Delta E 1976) against the unpainted result
(sketch only). ``moved`` = (dE_before - dE_after) / dE_before: 0 = ignored, 1 = the painted colour exactly.

    python -m facefill.evaluation.guided --model scfegan -o docs/scfegan [--limit 100] [--readme README.md]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .._atomic import atomic_write_text
from .metrics import l1, psnr

DEFAULT_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "celeba256" / "test"
CONDITIONS = ("none", "sketch", "sketch+color")
BUCKETS = ((0.2, 0.3), (0.4, 0.5))
PALETTE = {"red": (200, 30, 30), "green": (40, 170, 60), "blue": (40, 70, 210), "purple": (140, 40, 170),
           "yellow": (230, 200, 40)}
SKETCH_THRESHOLD = 0.35  # the training sketches' threshold before jitter (``SketchMaker``)


def truth_guidance(truth: np.ndarray, hole: np.ndarray, method: str = "auto") -> tuple[Image.Image, Image.Image]:
    """``(sketch, colour)`` RGBA layers of the truth inside ``hole``: black lines with alpha = line, and the
    median colours of superpixels with alpha = hole (what a user would draw, made as the training data are)."""
    from ..data.color import color_map
    from ..data.sketch import edge_map, strokes

    lines = strokes(edge_map(truth, method), SKETCH_THRESHOLD, min_length=max(4, truth.shape[0] // 25)) * hole
    sketch = np.zeros(truth.shape[:2] + (4,), np.uint8)
    sketch[..., 3] = lines.astype(np.uint8) * 255
    color = np.concatenate([color_map(truth), (hole * 255).astype(np.uint8)[..., None]], axis=2)
    return Image.fromarray(sketch, "RGBA"), Image.fromarray(color, "RGBA")


def paint_target(truth: np.ndarray, hole: np.ndarray) -> tuple[str, np.ndarray]:
    """The ``PALETTE`` colour farthest (CIELAB) from the truth's mean colour in the hole: ``(name, uint8 RGB)``."""
    mean = lab_mean(truth, hole)
    name = max(PALETTE, key=lambda k: np.linalg.norm(lab_mean(np.array([[PALETTE[k]]], np.uint8)) - mean))
    return name, np.array(PALETTE[name], np.uint8)


def lab_mean(rgb: np.ndarray, hole: np.ndarray | None = None) -> np.ndarray:
    """Mean CIELAB colour of ``rgb`` (uint8 ``HxWx3``) over ``hole`` (all pixels when None)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb)
    return lab.reshape(-1, 3).mean(0) if hole is None else lab[hole].mean(0)


def _layer(color: np.ndarray, hole: np.ndarray) -> Image.Image:
    rgba = np.zeros(hole.shape + (4,), np.uint8)
    rgba[..., :3] = color
    rgba[..., 3] = hole * 255
    return Image.fromarray(rgba, "RGBA")


def evaluate(model, data: str | os.PathLike = DEFAULT_DATA, limit: int = 100, buckets=BUCKETS, seed: int = 0,
             sketch_method: str = "auto", progress=print) -> dict:
    """Score ``model`` (a name, a weights folder, or a loaded guided model) as the module docstring says.

    Returns ``{"summary": {condition: {metric: mean}}, "color": {...}, "cases": [...], "meta": {...}}``."""
    import facefill

    from ..data.masks import bucket_name, evaluation_mask
    from ..data.sketch import resolve_method
    from ..imageio import read_image, to_rgb
    from .quality import image_files, shown_path

    net = facefill.load(model) if isinstance(model, (str, os.PathLike)) else model
    missing = {"sketch", "color"} - set(net.inputs)
    if missing:
        raise ValueError(f"model {getattr(net, 'name', model)!r} takes no {', '.join(sorted(missing))}; "
                         "this measures guided models such as scfegan")
    method = resolve_method(sketch_method)
    lpips = None
    try:
        from .perceptual import STLPIPSScorer, weights_path

        weights_path()
        lpips = STLPIPSScorer()
    except ImportError:
        pass
    cases, color_cases = [], []
    files = image_files(data, limit)
    start = time.perf_counter()
    for i, path in enumerate(files):
        truth, _ = to_rgb(read_image(path))
        for bucket in buckets:
            hole = evaluation_mask(i, tuple(bucket), truth.shape[0], seed).astype(bool)
            sketch, color = truth_guidance(truth, hole, method)
            outs = {c: np.asarray(net.inpaint(truth, hole, align="off", **kw).convert("RGB")) for c, kw in (
                ("none", {}), ("sketch", {"sketch": sketch}), ("sketch+color", {"sketch": sketch, "color": color}))}
            distances = {}
            if lpips:
                lpips.set_truth(truth)
                distances = dict(zip(CONDITIONS, lpips.score(list(outs.values()))))
            for c, out in outs.items():
                cases.append({"image": path.name, "bucket": bucket_name(tuple(bucket)), "condition": c,
                              "l1_hole": l1(out, truth, hole), "psnr_hole": psnr(out, truth, hole),
                              **({"st_lpips": float(distances[c])} if lpips else {})})
            name, target = paint_target(truth, hole)
            painted = np.asarray(net.inpaint(truth, hole, align="off", sketch=sketch,
                                             color=_layer(target, hole)).convert("RGB"))
            goal = lab_mean(target[None, None])
            before = float(np.linalg.norm(lab_mean(outs["sketch"], hole) - goal))
            after = float(np.linalg.norm(lab_mean(painted, hole) - goal))
            color_cases.append({"image": path.name, "bucket": bucket_name(tuple(bucket)), "painted": name,
                                "de_before": before, "de_after": after, "moved": (before - after) / before})
        progress(f"[{i + 1}/{len(files)}] {path.name}")
    metrics = ["l1_hole", "psnr_hole"] + (["st_lpips"] if lpips else [])
    summary = {c: {m: float(np.mean([r[m] for r in cases if r["condition"] == c])) for m in metrics}
               for c in CONDITIONS}
    base = {(r["image"], r["bucket"]): r["l1_hole"] for r in cases if r["condition"] == "none"}
    for c in CONDITIONS[1:]:
        summary[c]["beats_none_l1"] = float(np.mean([r["l1_hole"] < base[r["image"], r["bucket"]]
                                                     for r in cases if r["condition"] == c]))
    colour = {k: float(np.mean([r[k] for r in color_cases])) for k in ("de_before", "de_after", "moved")}
    colour["closer"] = float(np.mean([r["de_after"] < r["de_before"] for r in color_cases]))
    meta = {"model": str(getattr(net, "name", model)), "data": shown_path(data), "images": len(files),
            "buckets": [bucket_name(tuple(b)) for b in buckets], "seed": seed, "sketch_method": method,
            "st_lpips": lpips is not None, "wall_s": round(time.perf_counter() - start, 1)}
    return {"summary": summary, "color": colour, "cases": cases, "color_cases": color_cases, "meta": meta}


def gallery(model, examples: list[tuple[np.ndarray, np.ndarray]], sketch_method: str = "auto",
            cell: int = 160) -> Image.Image:
    """Rows of ``input | mask | sketch | colour | result | truth`` per ``(truth, hole)`` example (the guidance made
    from the truth as in ``evaluate``), then the same hole painted with a ``paint_target`` colour and its result."""
    from PIL import ImageDraw

    import facefill

    net = facefill.load(model) if isinstance(model, (str, os.PathLike)) else model
    labels = ["input", "mask", "sketch", "colour", "result", "truth", "painted colour", "result"]
    sheet = Image.new("RGB", (cell * len(labels), 18 + cell * len(examples)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, label in enumerate(labels):
        draw.text((k * cell + 4, 3), label, fill="black")
    for r, (truth, hole) in enumerate(examples):
        sketch, color = truth_guidance(truth, hole, sketch_method)
        _, target = paint_target(truth, hole)
        paint = _layer(target, hole)
        given = truth.copy()
        given[hole] = 255
        tiles = [given, hole, _on_white(sketch), _on_white(color),
                 net.inpaint(truth, hole, align="off", sketch=sketch, color=color), truth, _on_white(paint),
                 net.inpaint(truth, hole, align="off", sketch=sketch, color=paint)]
        for k, tile in enumerate(tiles):
            tile = Image.fromarray((tile * 255).astype(np.uint8) if tile.dtype == bool else tile) \
                if isinstance(tile, np.ndarray) else tile
            sheet.paste(tile.convert("RGB").resize((cell, cell), Image.LANCZOS), (k * cell, 18 + r * cell))
    return sheet


def _on_white(layer: Image.Image) -> Image.Image:
    """An RGBA drawing layer composited on white (sketch lines drawn black)."""
    white = Image.new("RGBA", layer.size, "white")
    return Image.alpha_composite(white, layer).convert("RGB")


def report(result: dict) -> str:
    """Markdown tables of an :func:`evaluate` result."""
    meta, s, c = result["meta"], result["summary"], result["color"]
    lpips = meta["st_lpips"]
    lines = [f"Model `{meta['model']}` on the first {meta['images']} images of `{meta['data']}` x buckets "
             f"{', '.join(meta['buckets'])} (evaluation masks, seed {meta['seed']}); sketches from "
             f"{meta['sketch_method'].upper()} edges of the truth, colours from its superpixel medians; "
             f"{meta['wall_s']} s.", "",
             "| guidance | L1 hole (lower better) | PSNR hole dB |" + (" ST-LPIPS (lower better) |" if lpips else "")
             + " L1 better than no guidance |", "|---|---|---|" + ("---|" if lpips else "") + "---|"]
    for cond in CONDITIONS:
        row = s[cond]
        lines.append(f"| {cond} | {row['l1_hole']:.4f} | {row['psnr_hole']:.2f} |"
                     + (f" {row['st_lpips']:.4f} |" if lpips else "")
                     + (f" {row['beats_none_l1']:.0%} |" if cond != "none" else " - |"))
    lines += ["", f"Colour control (hole painted one flat colour far from its true colour): mean CIELAB distance of "
              f"the result's mean colour to the painted one {c['de_before']:.1f} without the paint, "
              f"{c['de_after']:.1f} with it; moved {c['moved']:.0%} of the way, closer in {c['closer']:.0%} of "
              "the cases."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facefill.evaluation.guided",
                                     description="sketch / colour guidance vs none, and colour control")
    parser.add_argument("--model", default="scfegan", help="model name or weights folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of square face images")
    parser.add_argument("--limit", type=int, default=100, help="use the first N images (name order)")
    parser.add_argument("--sketch-method", default="auto", choices=("auto", "hed", "canny"))
    parser.add_argument("--output", "-o", type=Path, default=Path("facefill-guided"), help="report folder")
    parser.add_argument("--readme", type=Path, help="also write the report into this README between "
                        "<!-- guided:start --> and <!-- guided:end -->")
    args = parser.parse_args(argv)
    import facefill

    from ..data.masks import evaluation_mask
    from ..demo import demo_image, demo_mask
    from ..imageio import read_image, to_rgb
    from .quality import image_files, replace_block

    net = facefill.load(args.model)
    result = evaluate(net, args.data, args.limit, sketch_method=args.sketch_method)
    args.output.mkdir(parents=True, exist_ok=True)
    examples = []
    for k, path in enumerate(image_files(args.data, 3)):
        truth = to_rgb(read_image(path))[0]
        examples.append((truth, evaluation_mask(k, BUCKETS[k % 2], truth.shape[0], 0).astype(bool)))
    examples.append((np.asarray(demo_image().convert("RGB")), np.asarray(demo_mask()) >= 128))
    gallery(net, examples, args.sketch_method).save(args.output / "gallery.png")
    (args.output / "guided.json").write_text(json.dumps(result, indent=1) + "\n")
    text = report(result)
    (args.output / "report.md").write_text(text + "\n![gallery](gallery.png)\n")
    print(text)
    print(f"wrote {args.output}/report.md, guided.json, gallery.png")
    if args.readme is not None:
        command = "python -m facefill.evaluation.guided " + " ".join(sys.argv[1:] if argv is None else argv)
        body = f"Generated by `{command}`.\n\n{text}\n![guided gallery]({(args.output / 'gallery.png').as_posix()})\n"
        atomic_write_text(args.readme, replace_block(args.readme.read_text(), "guided", body))
        print(f"updated the guided block of {args.readme}")


if __name__ == "__main__":
    main()
