"""The ``facefill`` command line. Heavy imports (torch, models) happen inside the subcommands, so
``facefill --help`` is instant."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Face inpainting and editing: fill a marked region of a face photo with a plausible face part.")
AMP_OPTION = typer.Option("auto", "--amp", help="network precision: auto (bf16 on CUDA, and on CPUs with native bf16 "
                          "where it measures faster), bf16, or off (fp32)")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _load(name: str, device: str, amp: str = "auto"):
    import facefill
    from .pretrained import WeightsError

    try:
        return facefill.load(name, device=device, amp=amp)
    except (KeyError, ValueError, WeightsError) as exc:
        _fail(str(exc).strip('"'))


def _inpaint_one(model, image_path: Path, mask_path: Path, out_path: Path, threshold: float, resize_mask: bool,
                 align: str = "auto"):
    import warnings

    from . import imageio

    image = imageio.read_image(image_path, "image")
    mask = imageio.read_image(mask_path, "mask")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.inpaint(image, mask, threshold=threshold, resize_mask=resize_mask, align=align)
    for w in caught:
        typer.secho(f"warning: {image_path.name}: {w.message}", fg=typer.colors.YELLOW, err=True)
    imageio.save_image(result, out_path)


@app.command()
def inpaint(
    image: Path = typer.Argument(..., help="image file, or a folder of images"),
    mask: Path = typer.Option(..., "--mask", "-m", help="mask file (white = hole), or a folder of same-named masks"),
    output: Path = typer.Option(..., "--output", "-o", help="output file, or a folder when IMAGE is a folder"),
    model: str = typer.Option("deepfill_v2", "--model", help="model name (see `facefill models`), weights folder or "
                              "training run folder"),
    device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:1, ..."),
    threshold: float = typer.Option(0.5, help="mask values >= threshold x full range are holes (soft masks)"),
    resize_mask: bool = typer.Option(False, "--resize-mask", help="resize a mask of another size to the image"),
    align: str = typer.Option("auto", "--align", help="auto: inpaint holes that touch a face in the face's aligned "
                              "frame when one is found (needs dlib), else generic crops; face: require a face; "
                              "off: generic crops"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="say which face each hole was inpainted in, or why "
                                 "none was"),
    attention_map: Optional[Path] = typer.Option(None, "--attention-map", help="also write the colour-coded "
                                                 "contextual-attention offsets to this PNG (models with an "
                                                 "attention layer, e.g. deepfill_v1; single image only)"),
    hog_map: Optional[Path] = typer.Option(None, "--hog-map", help="also write the face shape that hogface "
                                           "predicts (its HOG map, drawn; single image only)"),
    amp: str = AMP_OPTION,
) -> None:
    """Fill the white region of MASK in IMAGE; write the result to OUTPUT (same size, other pixels exact)."""
    from .align import FaceNotFoundError
    from ._optional import MissingDependencyError
    from .imageio import ImageError

    _check_options(align, threshold)
    # pictures of what the network computes inside: option -> (path, the model's method that draws it, e.g.)
    pictures = {name: (path, method, example) for name, path, method, example in (
        ("--attention-map", attention_map, "attention_map", "deepfill_v1"),
        ("--hog-map", hog_map, "hog_picture", "hogface")) if path is not None}
    if verbose:
        import logging

        logging.basicConfig(format="%(message)s")
        logging.getLogger("facefill").setLevel(logging.INFO)

    if image.is_dir():
        from tqdm import tqdm

        from .data.faces import list_images

        if not mask.is_dir():
            _fail(f"IMAGE {image} is a folder, so --mask must be a folder of same-named masks")
        if pictures:
            _fail(f"{', '.join(pictures)} takes a single image, not a folder")
        try:
            files = list_images(image)
        except FileNotFoundError as exc:
            _fail(str(exc))
        masks = {p: _find_mask(mask, p) for p in files}
        missing = [p.name for p, m in masks.items() if not m]
        if missing:
            _fail(f"no mask in {mask} for {len(missing)} image(s), e.g. {missing[:3]}")
        _check_outputs(files, list(masks.values()), output)
        _make_folder(output)
        net = _load(model, device, amp)
        failed = 0
        for path in tqdm(files, desc="inpainting", unit="img"):
            try:
                _inpaint_one(net, path, masks[path], output / f"{path.stem}.png", threshold, resize_mask, align)
            except (ImageError, FaceNotFoundError, MissingDependencyError) as exc:
                failed += 1
                typer.secho(f"error: {path.name}: {exc}", fg=typer.colors.RED, err=True)
        typer.echo(f"wrote {len(files) - failed} result(s) to {output}")
        if failed:
            raise typer.Exit(1)
        return
    net = _load(model, device, amp)
    for name, (_, method, example) in pictures.items():
        if not hasattr(net, method):
            _fail(f"model {model} cannot draw {name} (it needs e.g. {example})")
    try:
        _inpaint_one(net, image, mask, output, threshold, resize_mask, align)
        if pictures:
            from . import imageio

            source, hole = imageio.read_image(image, "image"), imageio.read_image(mask, "mask")
        for path, method, _ in pictures.values():
            picture = getattr(net, method)(source, hole, threshold=threshold, resize_mask=resize_mask)
            imageio.save_image(imageio.to_pil(picture, None), path)
            typer.echo(f"wrote {path}")
    except (ImageError, FaceNotFoundError, MissingDependencyError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {output}")


def _check_options(align: str, threshold: float) -> None:
    from .align import ALIGN_MODES

    if align not in ALIGN_MODES:
        _fail(f"--align must be one of {', '.join(ALIGN_MODES)}; got {align!r}")
    if not 0.0 < threshold <= 1.0:
        _fail(f"--threshold must be in (0, 1] (a fraction of the full range; 0.5 = 128 of 255), got {threshold:g}")


def _check_outputs(images: list[Path], masks: list[Path], output: Path) -> None:
    """Folder mode writes ``OUTPUT/<stem>.png`` per image: refuse, before writing anything, two images that would
    write the same file (``a.jpg`` and ``a.png``) and an output that would overwrite an input image or mask."""
    inputs = {p.resolve() for p in [*images, *masks]}
    seen: dict[Path, Path] = {}
    for path in images:
        target = output / f"{path.stem}.png"
        if target in seen:
            _fail(f"{seen[target].name} and {path.name} would both be written to {target}; rename one of them")
        if target.resolve() in inputs:
            _fail(f"writing {target} would overwrite an input image or mask; choose another --output folder")
        seen[target] = path


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create the output folder {folder}: {exc.strerror or exc}")


def _find_mask(folder: Path, image: Path) -> Optional[Path]:
    for candidate in [folder / image.name] + sorted(folder.glob(f"{image.stem}.*")):
        if candidate.is_file():
            return candidate
    return None


@app.command()
def edit(
    image: Path = typer.Argument(..., help="image file"),
    mask: Path = typer.Option(..., "--mask", "-m", help="mask file (white = the region to redraw)"),
    output: Path = typer.Option(..., "--output", "-o", help="output file"),
    sketch: Optional[Path] = typer.Option(None, "--sketch", help="line drawing of the image's size (dark lines on "
                                          "white, white on black, or lines on a transparent layer)"),
    color: Optional[Path] = typer.Option(None, "--color", help="colour strokes of the image's size: RGBA (alpha = "
                                         "painted) or RGB with black = unpainted"),
    model: str = typer.Option("scfegan", "--model", help="a sketch/colour-guided model name, weights folder or "
                              "training run folder"),
    device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:1, ..."),
    threshold: float = typer.Option(0.5, help="mask values >= threshold x full range are holes (soft masks)"),
    resize_mask: bool = typer.Option(False, "--resize-mask", help="resize a mask, sketch or colour strokes of "
                                     "another size to the image"),
    align: str = typer.Option("auto", "--align", help="auto, face or off (see `facefill inpaint --help`)"),
    amp: str = AMP_OPTION,
) -> None:
    """Redraw the white region of MASK in IMAGE following a SKETCH and COLOR strokes (SC-FEGAN)."""
    from . import imageio
    from .align import FaceNotFoundError
    from ._optional import MissingDependencyError
    from .imageio import ImageError

    _check_options(align, threshold)
    net = _load(model, device, amp)
    given = {"sketch": sketch, "color": color}
    missing = [k for k, v in given.items() if v is not None and k not in net.inputs]
    if missing:
        _fail(f"model {model!r} takes no {' or '.join('--' + k for k in missing)}; use a guided model such as scfegan")
    try:
        guidance = {k: imageio.read_image(v, "colour strokes" if k == "color" else k)
                    for k, v in given.items() if v is not None}
        result = net.inpaint(imageio.read_image(image, "image"), imageio.read_image(mask, "mask"),
                             threshold=threshold, resize_mask=resize_mask, align=align, **guidance)
        imageio.save_image(result, output)
    except (ImageError, FaceNotFoundError, MissingDependencyError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {output}")


@app.command()
def demo(
    output: Path = typer.Option(Path("facefill-demo"), "--output", "-o", help="folder for the pictures"),
    model: str = typer.Option("deepfill_v2", "--model", help="model name"),
    device: str = typer.Option("cpu", help="torch device"),
) -> None:
    """Inpaint the bundled portrait (scikit-image's astronaut) with a built-in mask; write input | mask | result."""
    import time

    from . import imageio
    from .demo import demo_image, demo_mask, side_by_side, with_hole

    net = _load(model, device)
    names = ("input.png", "mask.png", "result.png", "side_by_side.png")
    _make_folder(output)
    blocked = [name for name in names if (output / name).is_dir()]
    if blocked:
        _fail(f"cannot write {output / blocked[0]}: it is a folder")
    image, mask = demo_image(), demo_mask()
    start = time.perf_counter()
    result = net.inpaint(image, mask)
    seconds = time.perf_counter() - start
    hole = with_hole(image, mask)
    written = []
    try:
        for name, im in zip(names, (image, mask, result, side_by_side([hole, mask, result]))):
            written.append(imageio.save_image(im, output / name))
    except imageio.ImageError as exc:
        for path in written:  # all four pictures or none
            path.unlink(missing_ok=True)
        _fail(str(exc))
    typer.echo(f"{model}: inpainted the demo portrait in {seconds:.2f} s; wrote {output}/side_by_side.png "
               "(input with hole | mask | result)")


@app.command()
def models() -> None:
    """List the models with a one-line description and whether they can be loaded: "ready" (trained weights ship, or
    the model needs none) or "untrained"."""
    from .registry import list_models

    for info in list_models():
        mark = "ready" if info.has_weights else "untrained"
        typer.echo(f"{info.name:18s} [{mark:9s}] {info.description}")


@app.command()
def masks(
    output: Path = typer.Option(Path("facefill-masks"), "--output", "-o", help="output folder"),
    count: int = typer.Option(16, "--count", "-n", help="number of training masks to draw"),
    size: int = typer.Option(256, help="mask side in pixels"),
    seed: int = typer.Option(0, help="random seed"),
    evaluation: bool = typer.Option(False, "--evaluation", help="write the fixed evaluation masks per hole-ratio "
                                    "bucket instead"),
) -> None:
    """Write sample free-form masks (white = hole) and a contact sheet; print their hole-ratio statistics."""
    import numpy as np
    from PIL import Image

    from . import imageio
    from .data.masks import BUCKETS, MaskGenerator, bucket_name, evaluation_mask

    output.mkdir(parents=True, exist_ok=True)
    if evaluation:
        items = [(f"{bucket_name(b).replace('%', 'pct')}_{i:03d}", evaluation_mask(i, b, size, seed))
                 for b in BUCKETS for i in range(count)]
    else:
        rng = np.random.default_rng(seed)
        gen = MaskGenerator()
        items = [(f"mask_{i:03d}", gen(size, size, rng)) for i in range(count)]
    for name, m in items:
        imageio.save_image(Image.fromarray(m * 255), output / f"{name}.png")
    cols = 8
    rows = -(-len(items) // cols)
    sheet = np.full((rows * (size + 4), cols * (size + 4)), 128, np.uint8)
    for k, (_, m) in enumerate(items):
        r, c = divmod(k, cols)
        sheet[r * (size + 4):r * (size + 4) + size, c * (size + 4):c * (size + 4) + size] = m * 255
    imageio.save_image(Image.fromarray(sheet), output / "sheet.png")
    ratios = np.array([m.mean() for _, m in items])
    typer.echo(f"wrote {len(items)} masks to {output}; hole ratio mean {ratios.mean():.3f}, "
               f"min {ratios.min():.3f}, max {ratios.max():.3f}")


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="JSON or YAML file of TrainConfig fields"),
    set_: List[str] = typer.Option([], "--set", "-s", help="override a field: --set lr_g=2e-4 (repeatable)"),
    model: Optional[str] = typer.Option(None, help="model to train (shortcut for --set model=...)"),
    data: Optional[Path] = typer.Option(None, help="folder of face images (shortcut for --set data=...)"),
    out: Optional[Path] = typer.Option(None, help="run folder (shortcut for --set out=...)"),
    steps: Optional[int] = typer.Option(None, help="total steps (shortcut for --set steps=...)"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint.pt exactly where it stopped"),
) -> None:
    """Train a model (multi-GPU: `torchrun --nproc_per_node N -m facefill train ...`). Fields: see TrainConfig
    in facefill/train.py; the resolved config is written to the run folder."""
    from . import config as config_mod
    from .train import TrainConfig
    from .train import train as run

    overrides = list(set_)
    for key, value in (("model", model), ("data", data), ("out", out), ("steps", steps)):
        if value is not None:
            overrides.append(f"{key}={value}")
    try:
        cfg = config_mod.build(TrainConfig, config, overrides)
        summary = run(cfg, resume=resume)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as exc:
        _fail(str(exc))
    if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        typer.echo(f"stopped at step {summary['step']} ({summary['images_seen']} images); "
                   f"checkpoint: {summary['checkpoint']}")


@app.command("save-state")
def save_state_command(
    run_dir: Path = typer.Argument(..., help="a training run folder (with checkpoint.pt)"),
    output: Path = typer.Option(..., "--output", "-o", help="the model's training-state folder (training/MODEL)"),
) -> None:
    """Write a run's compact training state, its EMA generator included, without shipping new weights: the
    training progress is kept (committed) while the shipped weights and their measured results stay as they are.
    `facefill export --state` is the same with the weights shipped (the state then takes its EMA from them)."""
    from .train import save_state

    if not (run_dir / "checkpoint.pt").is_file():
        _fail(f"no checkpoint.pt in {run_dir}")
    try:
        typer.echo(f"wrote {save_state(run_dir, output, with_ema=True)}")
    except (OSError, KeyError, ValueError) as exc:
        _fail(f"cannot save the state of {run_dir}: {str(exc).strip(chr(34))}")


@app.command("guidance-cache")
def guidance_cache(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="the training config whose cache to fill"),
    set_: List[str] = typer.Option([], "--set", "-s", help="override a config field (repeatable), as in train"),
    device: str = typer.Option("auto", help="where HED and the bilateral passes run: cpu, cuda (auto: cuda if "
                               "torch sees one)"),
    workers: int = typer.Option(0, help="processes for the SLIC superpixels of the colour maps (0: none)"),
    limit: Optional[int] = typer.Option(None, help="only the first N faces of the data folder"),
) -> None:
    """Precompute the sketch (HED) and colour maps that a guided model's training reads (SC-FEGAN), into the
    config's guidance_cache folder; faces already there are skipped, so it resumes."""
    import torch

    from . import config as config_mod
    from .data.faces import list_images, training_guidance
    from .registry import create_model
    from .train import TrainConfig

    try:
        cfg = config_mod.build(TrainConfig, config, list(set_))
        model = create_model(cfg.model, **cfg.model_args)
        files = list_images(cfg.data)[:limit]
    except (ValueError, FileNotFoundError, KeyError) as exc:
        _fail(str(exc).strip('"'))
    if not cfg.guidance_cache:
        _fail("the config has no guidance_cache folder: --set guidance_cache=DIR")
    guidance = training_guidance(model.inputs, cache_dir=cfg.guidance_cache)
    if guidance is None:
        _fail(f"model {cfg.model} takes no sketch or colour: nothing to precompute")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    done = guidance.precompute(files, model.resolution, device=device, workers=workers, progress=True)
    typer.echo(f"computed {done} of {len(files)} faces' maps ({', '.join(guidance.inputs)}, "
               f"sketch method {guidance.sketch.method if guidance.sketch else '-'}) in {cfg.guidance_cache}")


@app.command("eval")
def evaluate(
    model: List[str] = typer.Option(..., "--model", help="model name, weights folder or training run folder "
                                    "(its EMA generator; repeatable)"),
    data: Path = typer.Option(Path("../shared/data/celeba256/test"), help="folder of square face images"),
    limit: Optional[int] = typer.Option(None, help="use the first N images (name order)"),
    masks: int = typer.Option(0, "--masks", help="seed of the fixed evaluation masks"),
    size: int = typer.Option(256, help="image size of the data"),
    device: str = typer.Option("cpu", help="torch device"),
    output: Path = typer.Option(Path("facefill-eval"), "--output", "-o", help="report folder"),
    readme: Optional[Path] = typer.Option(None, help="also write the tables into this README between "
                                          "<!-- results:start --> and <!-- results:end -->"),
    metric: List[str] = typer.Option([], "--metric", help="extra metric families beyond L1/PSNR/SSIM: fid, kid, "
                                     "st_lpips, identity, or none (repeatable; default: every installed one)"),
    extra_limit: Optional[int] = typer.Option(None, help="compute FID/KID/ST-LPIPS/identity on the first N images "
                                              "only (they cost ~10x the base metrics on a CPU)"),
    cache: Optional[Path] = typer.Option(None, help="folder of per-image scores kept between runs, so unchanged "
                                         "models are not run again [default: ~/.cache/facefill/eval]"),
    no_cache: bool = typer.Option(False, "--no-cache", help="score everything afresh and store nothing"),
) -> None:
    """Score models on the same images and seeded masks per hole-ratio bucket: report.md, metrics.json, grid.png."""
    from .evaluation import evaluate as run, markdown_tables, write_report
    from .evaluation.cache import default_dir
    from .evaluation.quality import versus

    families = None if not metric else [] if metric == ["none"] else list(metric)
    store = None if no_cache else cache or default_dir()
    try:
        records = run(list(model), data, limit=limit, seed=masks, size=size, device=device, metrics=families,
                      cache=store, extra_limit=extra_limit)
    except (KeyError, ValueError, FileNotFoundError, ImportError) as exc:
        _fail(str(exc).strip('"'))
    for family, reason in records.meta.get("skipped_metrics", {}).items():
        typer.secho(f"skipped {family}: {reason}", fg=typer.colors.YELLOW, err=True)
    write_report(records, output)
    if records.meta["cached"]:
        typer.echo(f"{records.meta['cached']} (model, image, bucket) scores came from the cache in {store} "
                   "(the models' weights are unchanged); --no-cache scores everything afresh")
    wanted = [r for r in records if r["metric"] in ("psnr", "l1")]
    typer.echo(markdown_tables(wanted))
    typer.echo(versus(records))
    typer.echo(f"wrote {output}/report.md, metrics.json, grid.png")
    if readme is not None:
        import shlex

        from ._atomic import atomic_write_text
        from .evaluation.quality import readme_block

        command = "facefill " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        atomic_write_text(readme, readme_block(readme.read_text(), records, command))
        typer.echo(f"updated the results block of {readme}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a training run folder (with checkpoint.pt)"),
    output: Path = typer.Option(..., "--output", "-o", help="weights folder to write (config.json + "
                                "model.safetensors)"),
    raw: bool = typer.Option(False, "--raw", help="export the raw generator instead of its EMA"),
    readme: Optional[Path] = typer.Option(None, help="also describe the weights in this README between "
                                          "<!-- weights:MODEL:start --> and <!-- weights:MODEL:end -->"),
    state: Optional[Path] = typer.Option(None, help="also write the compact training state (to commit) here, "
                                         "which `--set init_from=DIR` continues from"),
) -> None:
    """Export a run's generator as fp16 weights that `facefill.load(FOLDER)` reads."""
    from .pretrained import WeightsError
    from .train import export as run_export
    from .train import save_state

    if not (run_dir / "checkpoint.pt").is_file():
        _fail(f"no checkpoint.pt in {run_dir}")
    try:
        path = run_export(run_dir, output, use_ema=not raw)
        typer.echo(f"wrote {path}")
        if state is not None:
            typer.echo(f"wrote {save_state(run_dir, state)}")
    except (WeightsError, OSError, KeyError, ValueError) as exc:  # a broken checkpoint, an unwritable folder
        _fail(f"cannot export {run_dir}: {str(exc).strip(chr(34))}")
    if readme is not None:
        from ._atomic import atomic_write_text
        from .evaluation.quality import replace_block
        from .pretrained import read_config

        meta = read_config(path)
        t = meta["training"]
        size = (path / "model.safetensors").stat().st_size / 2**20
        body = (f"Shipped `{meta['model']}` weights (`{path.as_posix()}`, {size:.1f} MiB fp16, "
                f"config {meta['config']}): trained on `{t['data']}` for **{t['steps']:,} steps** "
                f"({t['images_seen']:,} images at batch {t['batch_size']}), **{t['train_hours']} h** on "
                f"{', '.join(t['hardware'])}; EMA weights: {t['ema']}; recipe {t['recipe']}. "
                f"{_history_sentence(t.get('recipe_history', []))}"
                "Generated by `facefill export ... --readme README.md`.")
        atomic_write_text(readme, replace_block(readme.read_text(), f"weights:{meta['model']}", body))
        typer.echo(f"updated the weights block of {readme}")


def _history_sentence(history: list) -> str:
    """The recipe changes of a run in words (empty when the recipe never changed)."""
    if len(history) < 2:
        return ""
    parts = [f"from step {h['step']:,}: " + ", ".join(f"{k}={v}" for k, v in h["changes"].items())
             for h in history[1:]]
    return "Recipe changes during training: " + "; ".join(parts) + ". "


@app.command()
def bench(
    model: List[str] = typer.Option(..., "--model", help="model name or weights folder (repeatable); add "
                                    "lama_reference for the 'x faster than LaMa' column"),
    size: int = typer.Option(256, help="image side in px (the forward's tensor size and the inpainted image's)"),
    batch: str = typer.Option("1,8", help="comma-separated batch sizes of the forward (classical: images in a row)"),
    device: List[str] = typer.Option([], "--device", help="cpu, cuda, cuda:1 (repeatable); default: cpu, plus cuda "
                                     "when torch sees a GPU"),
    repeats: int = typer.Option(5, help="timed runs per measurement; the median is reported"),
    warmup: int = typer.Option(1, help="untimed runs before the timed ones"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch and OpenCV (default: torch's own)"),
    amp: str = typer.Option("auto", "--amp", help="network precision: auto (bf16 where it is fast: CUDA, CPUs with "
                            "native bf16), bf16 or off (fp32); the table says which ran"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="also write the records and machine info as JSON"),
    readme: Optional[Path] = typer.Option(None, help="also write the report into this README between "
                                          "<!-- bench:start --> and <!-- bench:end -->"),
) -> None:
    """Time models: ms per image, images/s, peak memory, speed vs the LaMa reference; machine stated."""
    import json
    import shlex

    import torch

    from .evaluation.bench import benchmark, readme_block, report
    from .pretrained import WeightsError

    try:
        batches = [int(b) for b in batch.split(",") if b.strip()]
    except ValueError:
        _fail(f"--batch must be comma-separated integers like 1,8; got {batch!r}")
    devices = list(device) or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if readme is not None:
        from .evaluation.quality import replace_block

        try:  # before the (long) run: the README must have the block to fill
            replace_block(readme.read_text(), "bench", "")
        except (OSError, ValueError) as exc:
            _fail(f"--readme {readme}: {exc}")
    try:
        records = benchmark(model, size=size, batches=batches, devices=devices, repeats=repeats, warmup=warmup,
                            threads=threads, amp=amp, progress=lambda msg: typer.echo(msg, err=True))
    except (KeyError, ValueError, WeightsError) as exc:
        _fail(str(exc).strip('"'))
    command = "facefill " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    typer.echo(report(records))
    if json_path is not None:
        json_path.write_text(json.dumps({"meta": records.meta, "records": list(records)}, indent=1) + "\n")
        typer.echo(f"wrote {json_path}")
    if readme is not None:
        from ._atomic import atomic_write_text

        try:
            updated = readme_block(readme.read_text(), records, command)
        except ValueError as exc:
            _fail(str(exc))
        atomic_write_text(readme, updated)
        typer.echo(f"updated the bench block of {readme}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to bind; loopback by default, anything else exposes "
                                               "the server to the network"),
    port: int = typer.Option(8080, help="TCP port"),
    model: str = typer.Option("deepfill_v2", "--model", help="default model of the editor and the API"),
    device: str = typer.Option("cpu", help="torch device for the models: cpu, cuda, cuda:1, ..."),
    max_upload_mb: Optional[float] = typer.Option(
        None, help="largest request body accepted, MiB; default: room for the largest accepted image as an "
                   "uncompressed RGBA PNG (so a result can be sent back for the next edit) plus its mask"),
    max_pixels: int = typer.Option(40_000_000, help="largest image accepted, pixels"),
) -> None:
    """Start the web editor and the HTTP API (http://HOST:PORT/, API description at /docs)."""
    try:
        import uvicorn

        from .web.server import ServerConfig, create_app
    except ImportError as exc:
        _fail(f"the web server needs the web extra ({exc.name} is missing): pip install 'facefill[web]'")
    from .registry import list_models, model_names

    if model not in model_names():
        _fail(f"unknown model {model!r}; available: {', '.join(model_names())}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: serving on {host}: anyone who can reach this machine on port {port} can use it "
                    "(there is no authentication)", fg=typer.colors.YELLOW, err=True)
    if not any(info.name == model and info.has_weights for info in list_models()):
        typer.secho(f"note: {model} has no weights yet; requests for it get 503 and the editor starts with a "
                    "model that has", fg=typer.colors.YELLOW, err=True)
    config = ServerConfig(max_upload_bytes=None if max_upload_mb is None else int(max_upload_mb * 2**20),
                          max_pixels=max_pixels)
    web_app = create_app(default=model, device=device, config=config)
    typer.echo(f"facefill editor on http://{host}:{port}/ (API: /api/v1, docs: /docs); default model {model}")
    uvicorn.run(web_app, host=host, port=port, log_level="warning")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
