"""Does inpainting in the face's aligned frame help on real portraits? The acceptance measurement of issue 6.

Protocol: the CelebA-HQ 1024 px portraits (``../shared/data/celebahq1024``, 36 images); for each, three masks --
one hole over the eyes, one over the nose, one over the mouth -- placed from the 68 landmarks of the *ground
truth* (so the masks do not depend on the method under test), each an ellipse sized by the inter-ocular distance
(``iod``) with seeded jitter of its centre (+-0.1 iod), axes (x0.85-1.2) and angle (+-10 deg),
``numpy.random.default_rng([seed, image, part])``. The hole is painted white (the face under it must not help
the face detector), then inpainted by the model with ``align="auto"`` and ``align="off"``, and by Telea. Scores (means over masks): ``l1_hole`` and ``psnr_hole`` (pixels of the hole only,
``facefill.evaluation.metrics``) and dlib identity similarity of the result to the truth
(``facefill.evaluation.identity``: cosine of the 128-d descriptors, and the share within dlib's same-person
distance); ``aligned`` is the share of masks that ``auto`` inpainted in a face frame, ``ms`` the wall time per
``inpaint`` call (face detection included).

The demo portrait (``facefill.demo``, public domain) with its built-in mask is inpainted the same three ways and
drawn side by side (input | Telea | align=off | align=auto), with a zoom on the face.

    python -m facefill.evaluation.alignment --model deepfill_v2 -o DIR    # report.md, alignment.json, pictures
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .._atomic import atomic_write_text
from .metrics import l1, psnr

DEFAULT_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "celebahq1024"
PARTS = {  # landmark indices of each part (iBUG 68)
    "eyes": list(range(36, 48)),
    "nose": list(range(27, 36)),
    "mouth": list(range(48, 68)),
}
# ellipse half-axes (along, across the eye line) in inter-ocular distances, before jitter
AXES = {"eyes": (0.95, 0.32), "nose": (0.32, 0.5), "mouth": (0.62, 0.34)}
METHODS = ("telea", "off", "auto")


def part_hole(shape: tuple[int, int], landmarks: np.ndarray, part: str, rng: np.random.Generator) -> np.ndarray:
    """A bool hole over ``part`` ("eyes", "nose", "mouth") of the face with 68 ``landmarks``, jittered by ``rng``."""
    left, right = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
    iod = float(np.linalg.norm(right - left))
    tilt = np.degrees(np.arctan2(*(right - left)[::-1]))
    centre = landmarks[PARTS[part]].mean(0) + rng.uniform(-0.1, 0.1, 2) * iod
    axes = np.array(AXES[part]) * iod * rng.uniform(0.85, 1.2, 2)
    angle = tilt + rng.uniform(-10, 10)
    hole = np.zeros(shape, np.uint8)
    cv2.ellipse(hole, (int(round(centre[0])), int(round(centre[1]))), (int(round(axes[0])), int(round(axes[1]))),
                angle, 0, 360, 1, -1)
    return hole.astype(bool)


def _inpaint(model, image: np.ndarray, hole: np.ndarray, align: str) -> tuple[np.ndarray, float, bool]:
    """``(result, seconds, whether a hole was inpainted in a face frame)``."""
    from ..align import decisions

    start = time.perf_counter()
    with decisions() as notes:
        out = np.asarray(model.inpaint(image, hole, align=align).convert("RGB"))
    return out, time.perf_counter() - start, any("inpainted in its aligned" in n for n in notes)


def evaluate(model: str = "deepfill_v2", data: str | Path = DEFAULT_DATA, seed: int = 0, limit: int | None = None,
             device: str = "cpu", progress=print) -> dict:
    """Score ``align="auto"`` vs ``"off"`` vs Telea on the portraits of ``data``; see the module docstring.

    Returns ``{"summary": {method: {metric: mean}}, "by_part": {part: {method: {metric: mean}}}, "cases": [...],
    "meta": {...}}``."""
    import facefill

    from .. import align as align_mod
    from ..data.faces import list_images
    from .identity import IdentityScorer
    from .quality import shown_path

    files = list_images(data)[:limit]
    net = facefill.load(model, device=device)
    telea = facefill.load("telea")
    scorer = IdentityScorer()
    cases, skipped = [], []
    for i, path in enumerate(files):
        truth = np.asarray(Image.open(path).convert("RGB"))
        found = align_mod.find_landmarks(truth)
        if not found or not scorer.set_truth(truth):
            skipped.append(path.name)
            progress(f"{path.name}: no face in the truth, skipped")
            continue
        landmarks = max(found, key=lambda p: np.ptp(p[:, 0]) * np.ptp(p[:, 1]))
        for j, part in enumerate(PARTS):
            hole = part_hole(truth.shape[:2], landmarks, part, np.random.default_rng([seed, i, j]))
            given = truth.copy()
            given[hole] = 255  # the face under the hole must not help the detector
            results = {"telea": _inpaint(telea, given, hole, "off")}
            for mode in ("off", "auto"):
                results[mode] = _inpaint(net, given, hole, mode)
            ids = scorer.score([results[m][0] for m in METHODS])
            for m, id_scores in zip(METHODS, ids):
                out, seconds, aligned = results[m]
                cases.append({"image": path.name, "part": part, "method": m, "hole_px": int(hole.sum()),
                              "l1_hole": l1(out, truth, hole), "psnr_hole": psnr(out, truth, hole),
                              **id_scores, "aligned": float(aligned), "ms": 1000 * seconds})
        last = {m: next(c for c in reversed(cases) if c["method"] == m) for m in METHODS}
        progress(f"[{i + 1}/{len(files)}] {path.name}: mouth psnr_hole "
                 + ", ".join(f"{m} {last[m]['psnr_hole']:.2f}" for m in METHODS))
    metrics = ("l1_hole", "psnr_hole", "id_cosine", "id_match", "aligned", "ms")

    def means(rows):
        return {k: float(np.mean([r[k] for r in rows])) for k in metrics}

    summary = {m: means([c for c in cases if c["method"] == m]) for m in METHODS}
    by_part = {p: {m: means([c for c in cases if c["method"] == m and c["part"] == p]) for m in METHODS}
               for p in PARTS}
    paired = _paired(cases)
    meta = {"model": str(model), "data": shown_path(data), "images": len(files) - len(skipped),
            "skipped": skipped, "masks": len(cases) // len(METHODS), "seed": seed, "device": device,
            "resolution": getattr(net, "resolution", None)}
    return {"summary": summary, "by_part": by_part, "paired": paired, "cases": cases, "meta": meta}


def _paired(cases: list[dict]) -> dict:
    """Share of masks where ``auto`` beats ``off`` (and Telea), per metric."""
    key = {(c["image"], c["part"], c["method"]): c for c in cases}
    pairs = [(key[(i, p, "auto")], key[(i, p, "off")], key[(i, p, "telea")]) for i, p, m in key if m == "auto"]
    out = {}
    for metric, higher in (("l1_hole", False), ("psnr_hole", True), ("id_cosine", True)):
        def wins(a, b):
            return float(np.mean([(x[metric] > y[metric]) if higher else (x[metric] < y[metric]) for x, y in
                                  zip(a, b)]))
        out[metric] = {"auto_beats_off": wins([p[0] for p in pairs], [p[1] for p in pairs]),
                       "auto_beats_telea": wins([p[0] for p in pairs], [p[2] for p in pairs])}
    return out


def demo(model: str = "deepfill_v2", device: str = "cpu") -> tuple[Image.Image, dict]:
    """The demo portrait inpainted by Telea, ``align="off"`` and ``align="auto"``: a picture (top: whole image;
    bottom: the face, zoomed) and the hole-only scores against the original."""
    import facefill

    from ..demo import demo_image, demo_mask, with_hole

    image, mask = demo_image(), demo_mask()
    truth = np.asarray(image)
    hole = np.asarray(mask) >= 128
    given = with_hole(image, mask)  # the face under the hole must not help the detector
    net = facefill.load(model, device=device)
    outs = {"telea": facefill.load("telea").inpaint(given, mask), "off": net.inpaint(given, mask, align="off"),
            "auto": net.inpaint(given, mask, align="auto")}
    scores = {m: {"l1_hole": l1(np.asarray(o), truth, hole), "psnr_hole": psnr(np.asarray(o), truth, hole)}
              for m, o in outs.items()}
    tiles = [with_hole(image, mask)] + list(outs.values())
    labels = ["input (hole white)", "Telea", "align=off", "align=auto"]
    ys, xs = np.nonzero(hole)
    cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2
    r = int(max(np.ptp(xs), np.ptp(ys)) * 0.75)
    box = (cx - r, cy - r, cx + r, cy + r)
    cell = 320
    sheet = Image.new("RGB", (cell * len(tiles), cell * 2 + 24), "white")
    for k, (tile, label) in enumerate(zip(tiles, labels)):
        sheet.paste(tile.convert("RGB").resize((cell, cell), Image.LANCZOS), (k * cell, 24))
        sheet.paste(tile.convert("RGB").crop(box).resize((cell, cell), Image.LANCZOS), (k * cell, cell + 24))
        _label(sheet, label, (k * cell + 6, 4))
    return sheet, scores


def _label(image: Image.Image, text: str, xy: tuple[int, int]) -> None:
    from PIL import ImageDraw

    ImageDraw.Draw(image).text(xy, text, fill=(0, 0, 0))


def report(result: dict, demo_scores: dict | None = None) -> str:
    """Markdown tables of an :func:`evaluate` result (and the demo's scores)."""
    meta = result["meta"]
    lines = [f"Model `{meta['model']}` (runs at {meta['resolution']} px) on {meta['images']} CelebA-HQ 1024 px "
             f"portraits x 3 holes (eyes, nose, mouth; seed {meta['seed']}) = {meta['masks']} masks."
             + (f" Skipped (no face found in the truth): {len(meta['skipped'])} of "
                f"{meta['images'] + len(meta['skipped'])} portraits ({', '.join(meta['skipped'])})."
                if meta.get("skipped") else ""), "",
             "| method | L1 hole (lower better) | PSNR hole dB | identity cosine | same person | aligned | ms / image |",
             "|---|---|---|---|---|---|---|"]
    names = {"telea": "Telea", "off": "align=off (generic crop)", "auto": "align=auto (face frame)"}
    for m in METHODS:
        s = result["summary"][m]
        lines.append(f"| {names[m]} | {s['l1_hole']:.4f} | {s['psnr_hole']:.2f} | {s['id_cosine']:.4f} | "
                     f"{s['id_match']:.1%} | {s['aligned']:.0%} | {s['ms']:.0f} |")
    lines += ["", "PSNR in the hole (dB) per part:", "", "| part | Telea | align=off | align=auto |", "|---|---|---|---|"]
    for p, row in result["by_part"].items():
        lines.append(f"| {p} | " + " | ".join(f"{row[m]['psnr_hole']:.2f}" for m in METHODS) + " |")
    pr = result["paired"]
    lines += ["", "Share of masks where align=auto is better: " + ", ".join(
        f"{k} {v['auto_beats_off']:.0%} vs off / {v['auto_beats_telea']:.0%} vs Telea" for k, v in pr.items()) + "."]
    if demo_scores:
        lines += ["", "Demo portrait (astronaut, built-in mask), inside the hole: " + "; ".join(
            f"{names[m]} L1 {s['l1_hole']:.4f}, PSNR {s['psnr_hole']:.2f} dB" for m, s in demo_scores.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facefill.evaluation.alignment",
                                     description="align=auto vs align=off vs Telea on CelebA-HQ portraits")
    parser.add_argument("--model", default="deepfill_v2", help="model name or weights folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of portraits")
    parser.add_argument("--limit", type=int, help="use the first N portraits (name order)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hole jitter")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", "-o", type=Path, default=Path("facefill-alignment"), help="report folder")
    parser.add_argument("--readme", type=Path, help="also write the report into this README between "
                        "<!-- alignment:start --> and <!-- alignment:end -->")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    sheet, demo_scores = demo(args.model, args.device)
    sheet.save(args.output / "demo_before_after.png")
    result = evaluate(args.model, args.data, seed=args.seed, limit=args.limit, device=args.device)
    result["demo"] = demo_scores
    (args.output / "alignment.json").write_text(json.dumps(result, indent=1) + "\n")
    text = report(result, demo_scores)
    (args.output / "report.md").write_text(text)
    print(text)
    print(f"wrote {args.output}/report.md, alignment.json, demo_before_after.png")
    if args.readme is not None:
        from .quality import replace_block

        command = "python -m facefill.evaluation.alignment " + " ".join(sys.argv[1:] if argv is None else argv)
        picture = (args.output / "demo_before_after.png").as_posix()
        body = f"Generated by `{command}`.\n\n{text}\n![alignment demo]({picture})\n"
        atomic_write_text(args.readme, replace_block(args.readme.read_text(), "alignment", body))
        print(f"updated the alignment block of {args.readme}")


if __name__ == "__main__":
    main()
