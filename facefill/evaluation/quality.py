"""Quality benchmark: every model on the same images with the same fixed masks, per hole-ratio bucket.

    from facefill.evaluation import evaluate, write_report
    records = evaluate(["telea", "navier_stokes"], "../shared/data/celeba256/test", limit=100)
    write_report(records, "out/quality")     # metrics.json, report.md, grid.png

With the ``eval`` extra installed, ``evaluate`` also reports FID and KID (``fid.py``), ST-LPIPS (``perceptual.py``)
and identity preservation (``identity.py``); ``metrics=`` picks them (``extras.EXTRA_METRICS``).

Image ``i`` of the sorted file list is paired with ``evaluation_mask(i, bucket, size, seed)`` in every bucket, so
all models, and all runs with the same seed, see exactly the same (image, mask) pairs. Models are called through
the public ``inpaint`` (only hole pixels change), and scored with ``facefill.evaluation.metrics``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.faces import list_images
from ..data.masks import BUCKETS, bucket_name, evaluation_mask
from ..inpainter import Inpainter
from ..models.classical import CLASSICAL_MODELS
from .extras import EXTRA_HIGHER_IS_BETTER

if TYPE_CHECKING:
    import PIL.Image

from .metrics import HIGHER_IS_BETTER, MetricAccumulator, image_metrics

TIME_METRIC = "ms_per_image"  # wall time of one ``inpaint`` call; lower is better, depends on the machine


@dataclass
class Example:
    """One (image, mask) pair with every model's result, for the report grid."""

    bucket: str
    image: np.ndarray  # uint8 HxWx3, the truth
    hole: np.ndarray  # bool HxW
    results: dict[str, np.ndarray] = field(default_factory=dict)


class Records(list):
    """The list of record dicts ``{model, bucket, metric, value, n}`` returned by ``evaluate`` (JSON-ready as a
    plain list), plus ``examples`` (a few results for ``write_report``'s grid) and ``meta`` (the run's settings)."""

    def __init__(self, items=(), examples: list[Example] | None = None, meta: dict | None = None):
        super().__init__(items)
        self.examples = examples or []
        self.meta = meta or {}


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a report names it: normalised and relative to the working directory (``../shared/data/...``),
    not this machine's absolute path."""
    return Path(os.path.relpath(os.path.normpath(path))).as_posix()


def image_files(data_dir: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """The images of ``data_dir`` sorted by file name (the evaluation order), the first ``limit`` of them."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return list_images(data_dir)[:limit]


def _load_models(models, device: str) -> dict[str, Inpainter]:
    import facefill

    loaded: dict[str, Inpainter] = {}
    for m in models:
        if isinstance(m, str):
            model, name = facefill.load(m, device=device), m
        elif isinstance(m, Inpainter):
            model, name = m, getattr(m, "name", "") or type(m).__name__
        else:
            raise TypeError(f"models must be registered names or Inpainter objects, got {type(m).__name__}")
        if name in loaded:
            raise ValueError(f"model {name!r} is listed twice; give each model once (or distinct .name values)")
        loaded[name] = model
    if not loaded:
        raise ValueError("no models to evaluate")
    return loaded


def evaluate(models: list[str | Inpainter], data_dir: str | os.PathLike, limit: int | None = None, seed: int = 0,
             buckets=BUCKETS, size: int = 256, progress: bool = True, device: str = "cpu",
             metrics: list[str] | None = None, cache: str | os.PathLike | None = None,
             extra_limit: int | None = None) -> Records:
    """Score ``models`` on the images of ``data_dir`` (``size x size``; the first ``limit`` in name order) with the
    fixed evaluation masks of each bucket.

    ``metrics`` picks the extra families (``"fid"``, ``"kid"``, ``"st_lpips"``, ``"identity"``) on top of the base
    metrics: ``None`` (default) computes every family whose package is installed and lists the others, with the
    pip command, in ``records.meta["skipped_metrics"]``; ``[]`` computes none; a list computes exactly those and
    raises ``MissingDependencyError`` (an ``ImportError``) when one is not installed. ``extra_limit``: compute the
    extra families on the first ``extra_limit`` images only (they cost about ten times the base metrics on a CPU);
    their records' ``n`` says how many images they cover.

    ``cache``: a folder of per-image scores from earlier runs (``facefill.evaluation.cache``): a model whose
    weights did not change is not run again on images it was scored on (``ms_per_image`` is then the time measured
    when it was). ``None``: no cache.

    Returns ``Records``: one dict ``{"model", "bucket", "metric", "value", "n"}`` per model, bucket (its
    ``bucket_name``, and ``"all"`` over every bucket's images) and metric (``METRICS``, the extra families' metrics,
    ``ms_per_image``). ``value`` is the mean over the ``n`` images, except FID/KID, computed between the ``n``
    results and all the truths; identity's ``n`` leaves out the images without a face in the truth (counted in
    ``records.meta["identity_no_face"]``). ``records.examples`` keeps one result per bucket for the grid;
    ``records.meta["cached"]`` counts the (model, image, bucket) scores read from the cache.
    """
    from tqdm.auto import tqdm

    from ..imageio import read_image, to_rgb
    from .cache import EvalCache, entry_key, image_key, model_fingerprint
    from .extras import ExtraMetrics, select

    buckets = [tuple(b) for b in buckets]
    files = image_files(data_dir, limit)
    families, skipped = select(metrics)
    if extra_limit is not None and extra_limit < 1:
        raise ValueError(f"extra_limit must be at least 1, got {extra_limit}")
    n_extra = len(files) if extra_limit is None else min(extra_limit, len(files))
    if n_extra < 2 and {"fid", "kid"} & set(families):
        if metrics is not None:
            raise ValueError(f"FID/KID need at least 2 images, this run scores them on {n_extra} "
                             f"({data_dir}, limit {limit}, extra_limit {extra_limit}); use more images or leave "
                             "fid/kid out of metrics")
        for name in ("fid", "kid"):
            if name in families:
                families.remove(name)
                skipped[name] = "needs at least 2 images"
    loaded = _load_models(models, device)
    store = EvalCache(cache) if cache is not None else None
    stores = {m: f"{m}-{model_fingerprint(model)}" for m, model in loaded.items()} if store else {}
    extra = ExtraMetrics(families, device) if families else None
    names = [bucket_name(b) for b in buckets]
    acc = {(m, b): MetricAccumulator() for m in loaded for b in names}
    seconds = {(m, b): 0.0 for m in loaded for b in names}
    # one example per bucket, each from a different image when there are enough
    example_index = {b: k % len(files) for k, b in enumerate(names)}
    examples: list[Example] = []
    cached = 0

    started = time.perf_counter()
    bar = tqdm(total=len(files) * len(buckets), desc="evaluate", unit="img", disable=not progress)
    for i, path in enumerate(files):
        truth, _ = to_rgb(read_image(path))
        if truth.shape[:2] != (size, size):
            raise ValueError(f"{path} is {truth.shape[1]}x{truth.shape[0]}, the evaluation size is {size}x{size}; "
                             "pass size= to match the data or use a folder of square images of that size")
        tkey = image_key(truth)
        scored = extra is not None and i < n_extra  # the extra families score this image
        wanted = families if scored else []
        known_truth = store.truth(tkey) if store else None
        face = known_truth[0] if known_truth else None
        fresh = []  # (model, bucket, entry key, result, base values) scored in this run
        for bucket, bname in zip(buckets, names):
            hole = evaluation_mask(i, bucket, size, seed).astype(bool)
            key = entry_key(tkey, hole)
            example = Example(bname, truth, hole) if example_index[bname] == i else None
            for mname, model in loaded.items():
                hit = store.get(stores[mname], key, wanted, face) if store else None
                if hit is None or example is not None:
                    t0 = time.perf_counter()
                    # the evaluation images are aligned face crops already: no face detection (align="off")
                    out = np.asarray(model.inpaint(truth, hole, align="off").convert("RGB"))
                    ms = 1000 * (time.perf_counter() - t0)
                    if example is not None:
                        example.results[mname] = out
                if hit is None:
                    values = {**image_metrics(out, truth, hole), "ms": ms}
                    fresh.append((mname, bname, key, out, values))
                else:
                    cached += 1
                    values, feature = hit
                    if scored:
                        extra.add(mname, bname, values, feature)
                acc[mname, bname].add(values)
                seconds[mname, bname] += values["ms"] / 1000
            if example is not None:
                examples.append(example)
            bar.update(1)
        if scored:
            if fresh or known_truth is None or (extra.distribution and known_truth[1] is None) \
                    or ("identity" in families and np.isnan(face)):
                # one truth's networks run once for all its new results
                face, truth_feature, scores = extra.score(truth, [f[3] for f in fresh])
            else:
                face, truth_feature, scores = known_truth[0], known_truth[1], []
            extra.add_truth(face, truth_feature)
            for (mname, bname, key, _, values), (more, feature) in zip(fresh, scores):
                values.update(more)
                extra.add(mname, bname, values, feature)
                if store:
                    store.put(stores[mname], key, values, feature)
            if store:
                store.put_truth(tkey, face, truth_feature)
        elif store:
            for mname, _, key, _, values in fresh:
                store.put(stores[mname], key, values, None)
        if store and (i + 1) % 50 == 0:
            store.save()  # an interrupted run keeps what it scored
    bar.close()
    if store:
        store.save()

    records = Records(examples=examples, meta={
        "data_dir": str(data_dir), "images": len(files), "seed": seed, "size": size, "buckets": names,
        "metrics": families, "skipped_metrics": skipped, "cached": cached, "extra_images": n_extra if extra else 0})
    if extra is not None and extra.no_face is not None:
        records.meta["identity_no_face"] = extra.no_face
    for mname in loaded:
        pooled = MetricAccumulator()
        for bname in names:
            a = acc[mname, bname]
            for metric, value in a.compute().items():
                records.append({"model": mname, "bucket": bname, "metric": metric, "value": value, "n": a.n})
            for metric, value, n in (extra.records(mname, [bname]) if extra is not None else []):
                records.append({"model": mname, "bucket": bname, "metric": metric, "value": value, "n": n})
            records.append({"model": mname, "bucket": bname, "metric": TIME_METRIC,
                            "value": 1000 * seconds[mname, bname] / a.n, "n": a.n})
            pooled.merge(a)
        for metric, value in pooled.compute().items():
            records.append({"model": mname, "bucket": "all", "metric": metric, "value": value, "n": pooled.n})
        for metric, value, n in (extra.records(mname, names) if extra is not None else []):
            records.append({"model": mname, "bucket": "all", "metric": metric, "value": value, "n": n})
        total = sum(seconds[mname, b] for b in names)
        records.append({"model": mname, "bucket": "all", "metric": TIME_METRIC,
                        "value": 1000 * total / pooled.n, "n": pooled.n})
    records.meta["wall_s"] = round(time.perf_counter() - started, 1)  # FID/KID included
    return records


_FORMATS = {"l1": "{:.4f}", "l1_hole": "{:.4f}", "psnr": "{:.2f}", "psnr_hole": "{:.2f}",
            "ssim": "{:.4f}", "ssim_hole": "{:.4f}", TIME_METRIC: "{:.1f}",
            "fid": "{:.2f}", "kid": "{:.4f}", "st_lpips": "{:.4f}",
            "id_cosine": "{:.4f}", "id_distance": "{:.4f}", "id_match": "{:.3f}"}
_TITLES = {"l1": "L1, whole image", "psnr": "PSNR (dB), whole image", "ssim": "SSIM, whole image",
           "l1_hole": "L1, hole only", "psnr_hole": "PSNR (dB), hole only", "ssim_hole": "SSIM, hole only",
           TIME_METRIC: "Time per image (ms, this machine)",
           "fid": "FID (Inception-v3 pool3; n results vs. all truths; biased upwards at small n)",
           "kid": "KID (unbiased MMD², cubic kernel; n results vs. all truths)",
           "st_lpips": "ST-LPIPS (shift-tolerant, AlexNet), whole image",
           "id_cosine": "Identity: cosine similarity of dlib face descriptors, result vs. truth",
           "id_distance": "Identity: Euclidean distance of dlib face descriptors, result vs. truth",
           "id_match": "Identity: share of results within 0.6 of the truth (dlib's same-person threshold)"}


def markdown_tables(records: list[dict]) -> str:
    """One markdown table per metric: rows = models, columns = buckets (in record order) then ``all``."""
    models = list(dict.fromkeys(r["model"] for r in records))
    buckets = [b for b in dict.fromkeys(r["bucket"] for r in records) if b != "all"] + ["all"]
    value = {(r["model"], r["bucket"], r["metric"]): r["value"] for r in records}
    # n per table: identity leaves out faceless truths, so its n can differ from the other metrics'
    count = {(r["bucket"], r["metric"]): r["n"] for r in records}
    higher = {**HIGHER_IS_BETTER, **EXTRA_HIGHER_IS_BETTER}
    parts = []
    for metric in dict.fromkeys(r["metric"] for r in records):
        better = "higher" if higher.get(metric, False) else "lower"
        fmt = _FORMATS.get(metric, "{:.4g}")
        lines = [f"### {_TITLES.get(metric, metric)} — {better} is better", "",
                 "| model | " + " | ".join(f"{b} (n={count.get((b, metric), '?')})" for b in buckets) + " |",
                 "|---|" + "---:|" * len(buckets)]
        for m in models:
            cells = [fmt.format(value[m, b, metric]) if (m, b, metric) in value else "" for b in buckets]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def versus(records: list[dict], baseline: str = "telea", identity_bucket: str = "40-50%") -> str:
    """Markdown bullets, one per learned model, comparing it with ``baseline`` on what the project's targets
    name: whole-image PSNR averaged over the buckets (each bucket's mean, then their mean) with each bucket's
    difference, the buckets where its L1 is lower, and the dlib same-person share at ``identity_bucket`` holes.
    Empty when ``records`` has no ``baseline`` or no other learned model."""
    value = {(r["model"], r["bucket"], r["metric"]): r["value"] for r in records}
    models = [m for m in dict.fromkeys(r["model"] for r in records) if m not in CLASSICAL_MODELS]
    buckets = [b for b in dict.fromkeys(r["bucket"] for r in records) if b != "all"]
    if (baseline, "all", "psnr") not in value or not models or not buckets:
        return ""
    lines = []
    for m in models:
        if (m, buckets[0], "psnr") not in value:
            continue
        gains = [value[m, b, "psnr"] - value[baseline, b, "psnr"] for b in buckets]
        lower = sum(value[m, b, "l1"] < value[baseline, b, "l1"] for b in buckets)
        text = (f"- `{m}` vs `{baseline}`: whole-image PSNR **{sum(gains) / len(gains):+.2f} dB** averaged over "
                f"the {len(buckets)} buckets ({', '.join(f'{b} {g:+.2f}' for b, g in zip(buckets, gains))}); "
                f"L1 lower in **{lower} of {len(buckets)}** buckets")
        key = (m, identity_bucket, "id_match"), (baseline, identity_bucket, "id_match")
        if all(k in value for k in key):
            a, b = (100 * value[k] for k in key)
            text += (f"; dlib same-person share at {identity_bucket} holes **{a:.1f} % vs {b:.1f} %** "
                     f"({a - b:+.1f} points)")
        lines.append(text + ".")
    lines += [identity_claim(value, m, IDENTITY_CLAIMS[m], buckets, identity_bucket) for m in models
              if IDENTITY_CLAIMS.get(m) in models and (m, buckets[0], "id_cosine") in value
              and (IDENTITY_CLAIMS[m], buckets[0], "id_cosine") in value]
    return "\n".join(lines) + ("\n" if lines else "")


# model -> the model its paper claims to preserve identity better than: checked in every report holding both.
# hogface's HOG face-shape guidance is there to keep the face's structure, hence its identity.
IDENTITY_CLAIMS = {"hogface": "deepfill_v2"}


def identity_claim(value: dict, model: str, other: str, buckets: list[str], identity_bucket: str = "40-50%") -> str:
    """One markdown bullet: does ``model`` keep identity better than ``other`` on the same images and masks?
    ``value`` maps ``(model, bucket, metric)`` to a mean; compares the dlib descriptor cosine in each bucket and
    the same-person share at ``identity_bucket`` holes."""
    cos = [(b, value[model, b, "id_cosine"], value[other, b, "id_cosine"]) for b in buckets
           if (model, b, "id_cosine") in value and (other, b, "id_cosine") in value]
    higher = sum(a > o for _, a, o in cos)
    text = (f"- Identity claim, `{model}` vs `{other}` (same images and masks): dlib descriptor cosine higher in "
            f"**{higher} of {len(cos)}** buckets ({', '.join(f'{b} {a:.3f} vs {o:.3f}' for b, a, o in cos)})")
    key = (model, identity_bucket, "id_match"), (other, identity_bucket, "id_match")
    if all(k in value for k in key):
        a, o = (100 * value[k] for k in key)
        text += f"; same-person share at {identity_bucket} holes **{a:.1f} % vs {o:.1f} %** ({a - o:+.1f} points)"
    return text + "."


def write_report(records: list[dict], out_dir: str | os.PathLike, grid_examples: list[Example] | None = None,
                 cell: int = 128) -> Path:
    """Write ``metrics.json`` (the records), ``report.md`` (a table per metric) and ``grid.png`` (rows of
    input-with-hole | mask | each model's result | truth) into ``out_dir``. ``grid_examples`` defaults to
    ``records.examples``; with none, no grid is written. Returns ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(list(records), indent=1) + "\n")
    meta = getattr(records, "meta", {})
    head = ["# Inpainting quality", ""]
    if meta:
        head += [f"Data: `{meta['data_dir']}`, first {meta['images']} images in name order at {meta['size']} px; "
                 f"masks: `evaluation_mask(i, bucket, {meta['size']}, seed={meta['seed']})`, one per image and "
                 f"bucket (hole ratio); wall time {meta['wall_s']} s.", ""]
    if meta.get("cached"):
        head += [f"{meta['cached']} (model, image, bucket) scores were read from the evaluation cache (models whose "
                 "weights did not change since they were scored); their time per image is the one measured then.", ""]
    head += ["Whole-image metrics count the known pixels (pasted back, so exact), as in the DeepFill/GLCIC papers; "
             "hole-only metrics look at the hole pixels alone. Values are means of per-image scores.", ""]
    if meta.get("metrics") and meta.get("extra_images", meta["images"]) < meta["images"]:
        head += [f"{', '.join(meta['metrics'])}: on the first {meta['extra_images']} images only "
                 "(`extra_limit`; see each table's n).", ""]
    if meta.get("metrics"):
        head += ["FID and KID compare each model's results in a bucket (for `all`, in every bucket) with all the "
                 "ground truths, on Inception-v3 pool3 features; with a few hundred images FID is biased upwards "
                 "(compare models with each other, not with papers), KID is unbiased (a perfect result scores "
                 "slightly below 0 because results and truths are paired). ST-LPIPS is the shift-tolerant LPIPS "
                 "(Ghildyal & Liu 2022). Identity compares dlib face descriptors of result and truth, both aligned "
                 "by the landmarks found in the truth.", ""]
    if "identity_no_face" in meta:
        scored = meta.get("extra_images") or meta["images"]  # identity looks at the first extra_images only
        head += [f"Identity: no face found in {meta['identity_no_face']} of the {scored} ground truths; "
                 "those images are left out of the identity tables (their n).", ""]
    for name, why in meta.get("skipped_metrics", {}).items():
        head += [f"Skipped {name}: {why}", ""]
    examples = getattr(records, "examples", []) if grid_examples is None else grid_examples
    if examples:
        grid(examples, cell).save(out / "grid.png")
        head += ["![examples](grid.png)", ""]
    summary = versus(records)
    if summary:
        head += [summary]
    (out / "report.md").write_text("\n".join(head) + "\n" + markdown_tables(records))
    return out


def grid(examples: list[Example], cell: int = 128) -> "PIL.Image.Image":
    """Rows of ``input with hole (white) | mask | each model's result | truth``, ``cell`` px each, labelled."""
    import cv2
    from PIL import Image, ImageDraw

    models = list(dict.fromkeys(m for e in examples for m in e.results))
    columns = ["input", "mask"] + models + ["truth"]
    header = 16
    canvas = Image.new("RGB", (cell * len(columns), header + cell * len(examples)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(columns):
        draw.text((c * cell + 3, 2), label[: cell // 6], fill="black")

    def small(rgb):
        return Image.fromarray(cv2.resize(rgb, (cell, cell), interpolation=cv2.INTER_AREA))

    for r, e in enumerate(examples):
        masked = e.image.copy()
        masked[e.hole] = 255
        mask = np.repeat((e.hole * 255).astype(np.uint8)[..., None], 3, axis=2)
        row = [masked, mask] + [e.results.get(m, np.zeros_like(e.image)) for m in models] + [e.image]
        y = header + r * cell
        for c, rgb in enumerate(row):
            canvas.paste(small(rgb), (c * cell, y))
        draw.rectangle((cell, y, cell + 6 * len(e.bucket) + 5, y + 12), fill="black")
        draw.text((cell + 3, y + 1), e.bucket, fill="white")
    return canvas


def replace_block(readme: str, name: str, body: str) -> str:
    """``readme`` with the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` replaced by ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in readme or end not in readme:
        raise ValueError(f"the README has no {start} ... {end} block to fill")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.rstrip()}\n{end}{tail}"


README_METRICS = ("psnr", "l1", "psnr_hole", "l1_hole", "ssim", "fid", "kid", "st_lpips", "id_cosine", "id_match")


def readme_block(readme: str, records: list[dict], command: str) -> str:
    """``readme`` with its ``results`` block replaced by the tables of ``README_METRICS`` that ``records`` has
    (PSNR / L1 whole and hole, SSIM, and the extra families), stamped with the ``command`` that produced them."""
    meta = getattr(records, "meta", {})
    wanted = [r for r in records if r["metric"] in README_METRICS]
    summary = versus(records)
    wanted.sort(key=lambda r: README_METRICS.index(r["metric"]))  # stable: models and buckets keep their order
    header = f"Generated by `{command}`"
    if meta:
        run = f"{meta['images']} images x {len(meta['buckets'])} buckets, {meta['wall_s']} s"
        if meta.get("cached"):
            run += f"; {meta['cached']} of the (model, image, bucket) scores read from the evaluation cache"
        header += f" ({run})"
        if meta.get("metrics") and meta.get("extra_images", meta["images"]) < meta["images"]:
            header += f"; {', '.join(meta['metrics'])} on the first {meta['extra_images']} images"
    body = (header + ". Do not edit by hand.\n\n" + (summary + "\n" if summary else "")
            + markdown_tables(wanted).replace("### ", "#### "))
    return replace_block(readme, "results", body)
