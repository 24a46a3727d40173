"""The one training loop (nanoGPT-style: readable top to bottom), shared by every trainable model.

A model plugs in through three methods on its class: ``build_discriminator()``,
``discriminator_loss(disc, batch, out)`` and ``generator_loss(disc, batch, out, gan_weight)``, each loss
returning ``(loss, {name: value})``. ``schedule`` says which networks step when: reconstruction only before
``gan_start``, then optionally discriminator-only steps (``d_only_steps``, GLCIC), then joint training with the
generator stepping every ``n_critic``-th step (WGAN-GP). The loop handles data, masks, mixed precision (bf16
autocast on CPU and GPU), EMA of the generator, TensorBoard scalars, sample grids, atomic checkpoints, exact resume, and
DistributedDataParallel when started with ``torchrun`` (no code change).

A checkpoint is one dict ``{generator, discriminator, ema, opt_g, opt_d, step, config, rng, rng_ranks,
train_seconds, recipe_history}`` (``rng_ranks``: every rank's generators under torchrun); resuming at step ``s``
replays exactly the samples and masks an uninterrupted run would have seen. A run's recipe may change between
segments (a later ``gan_start``, a learning-rate decay): each resume with a different recipe appends
``{"step", "changes"}`` to ``recipe_history``, which ``export`` ships as provenance.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import platform
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ._atomic import atomic_write, atomic_write_text
from .config import to_dict
from .data.faces import DEFAULT_TRAIN_DIR, FaceFolder, ResumableSampler, assemble, preload_faces, training_guidance
from .data.masks import FaceMaskGenerator, MaskGenerator
from .precision import autocast
from .registry import create_model


@dataclass
class TrainConfig:
    model: str = "deepfill_v2"
    model_args: dict = field(default_factory=dict)   # overrides of the variant's constructor arguments
    data: str = str(DEFAULT_TRAIN_DIR)
    out: str = "runs/deepfill_v2"
    batch_size: int = 8                              # per process
    steps: int = 200_000                             # total optimizer steps (the run stops there)
    max_minutes: float = 0.0                         # stop (with a checkpoint) after this much wall time; 0 = off
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_warmup: int = 0                               # linear learning-rate warm-up steps
    lr_milestones: list[int] = field(default_factory=list)  # steps at which both learning rates are multiplied
    lr_gamma: float = 0.1                            # by lr_gamma (torch's MultiStepLR schedule)
    gan_weight: float = 0.1                          # adversarial weight after warm-up (0 = reconstruction only)
    gan_start: int = 0                               # step at which the adversarial loss starts
    gan_warmup: int = 2000                           # steps over which its weight ramps up linearly
    d_only_steps: int = 0                            # from gan_start, this many discriminator-only steps with
                                                     # the generator frozen (GLCIC's phase 2, T_D); the
                                                     # adversarial weight ramps up after them
    n_critic: int = 1                                # once adversarial training runs, the generator steps at
                                                     # every n_critic-th step only, the discriminator at every
                                                     # step (WGAN-GP's n_critic; a step is one batch)
    ema_decay: float = 0.999                         # EMA of generator weights (0 = off); shipped weights are EMA
    box_prob: float = 0.5                            # probability of adding a random box to the brush strokes
    amp: str = "auto"                                # "bf16" autocast, "off", or "auto": bf16 where it is fast
    seed: int = 0
    num_workers: int = 0
    threads: int = 0                                 # torch CPU threads (0 = torch's default)
    log_every: int = 25
    sample_every: int = 500
    ckpt_every: int = 100
    device: str = "auto"                             # "auto" = cuda if available else cpu
    preload: bool = False                            # decode all images once onto the device (GPU training)
    masks: str = "free_form"                         # "free_form" (DeepFill v2) or "face" (strokes on face parts)
    guidance_cache: str = ""                         # cache folder for the sketch/colour maps of guided models
    init_from: str = ""                              # a compact training state (see save_state) to start from
                                                     # when the run folder has no checkpoint yet
    frame: int = 0                                   # native side of the faces before the data folder was
                                                     # scaled down (scripts/pack_device_faces.py); 0: the data's
                                                     # own image size. Exported for the inference windows


RECIPE_KEYS = ("model_args", "lr_g", "lr_d", "lr_milestones", "lr_gamma", "gan_weight", "gan_start", "gan_warmup",
               "ema_decay", "box_prob", "masks", "amp", "d_only_steps", "n_critic", "batch_size")


def recipe_of(cfg: dict) -> dict:
    """The config fields that decide what a training step does (not where it runs or how often it logs)."""
    return {k: cfg[k] for k in RECIPE_KEYS if k in cfg}


def update_history(history: list[dict], step: int, cfg: dict) -> list[dict]:
    """``history`` plus ``{"step": step, "changes": ...}`` when ``cfg``'s recipe differs from the one the history
    ends with (the first entry holds the whole recipe). Returns a new list; the old one is unchanged."""
    current: dict = {}
    for entry in history:
        current.update(entry["changes"])
    changes = {k: v for k, v in recipe_of(cfg).items() if current.get(k) != v}
    if not changes:
        return list(history)
    if history and history[-1]["step"] == step:  # changed again before any step ran: one entry
        merged = {**history[-1]["changes"], **changes}
        return history[:-1] + [{"step": step, "changes": merged}]
    return history + [{"step": step, "changes": changes}]


def _distributed() -> tuple[int, int, int, bool]:
    """(rank, world size, local rank, whether this call started the process group) under torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        started = not dist.is_initialized()
        if started:
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), started
    return 0, 1, 0, False


def _atomic_save(obj, path: Path) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def _open_log(path: Path, step: int):
    """`log.jsonl` opened for appending, without the lines past `step`: a killed run logs steps after its last
    checkpoint, and the resumed run logs those steps again (a line cut short by the kill is dropped too)."""
    if path.exists():
        kept = []
        for line in path.read_text().splitlines(keepends=True):
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line if line.endswith("\n") else line + "\n")
            except (ValueError, KeyError, TypeError):
                continue
        atomic_write_text(path, "".join(kept))
    return open(path, "a")


def _unwrap(m):
    return getattr(m, "module", m)


def _rng_state() -> dict:
    """This process's generators: the CPU one, and the CUDA one of each device it sees."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def guidance_of(model, batch: dict) -> dict:
    """The extra inputs a model declares (``inputs`` beyond image and mask, e.g. sketch, color) from a batch."""
    model = _unwrap(model)
    return {k: batch[k] for k in model.inputs if k not in ("image", "mask")}


def sample_grid(model, batch: dict, path: Path) -> None:
    """Save one row per sample: masked input (hole white) | coarse | output | composite | truth."""
    from PIL import Image

    model = _unwrap(model)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(batch["image"], batch["mask"], **guidance_of(model, batch))
    model.train(was_training)
    m = batch["mask"]
    composite = out["output"] * m + batch["image"] * (1 - m)
    cols = [batch["image"] * (1 - m) + m, out.get("coarse", out["output"]), out["output"], composite, batch["image"]]
    rows = [torch.cat([c[b].float().clamp(-1, 1) for c in cols], 2) for b in range(m.shape[0])]  # (3, H, 5W)
    img = torch.cat(rows, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy()  # (B*H, 5W, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def schedule(cfg: TrainConfig, step: int) -> tuple[bool, bool, float]:
    """``(d_step, g_step, gan_weight)`` at ``step`` (0-based): which networks update and the adversarial weight.

    Phases: reconstruction only (generator) before ``gan_start``; then ``d_only_steps`` discriminator-only steps
    (generator frozen, GLCIC's T_D); then joint training, the weight ramping up over ``gan_warmup`` steps and the
    generator stepping at every ``n_critic``-th step. ``gan_weight == 0`` means reconstruction only throughout."""
    d_step = cfg.gan_weight > 0 and step >= cfg.gan_start
    adv_start = cfg.gan_start + cfg.d_only_steps
    if not d_step:
        return False, True, 0.0
    if step < adv_start:
        return True, False, 0.0
    gan_weight = cfg.gan_weight * min(1.0, (step - adv_start + 1) / max(1, cfg.gan_warmup))
    return True, (step - adv_start) % cfg.n_critic == cfg.n_critic - 1, gan_weight


def lr_factor(cfg: TrainConfig, step: int, warmup_start: int = 0, since: int = 0) -> float:
    """The learning-rate multiplier at ``step`` (0-based): a linear warm-up over ``lr_warmup`` steps from
    ``warmup_start`` (the step the run started at, when it started from a compact state), times ``lr_gamma`` for each
    of ``lr_milestones`` already reached and not before ``since``, the step the network began to train: the
    discriminator, new at ``gan_start``, starts at ``lr_d`` itself, not at a rate the generator's schedule had
    already annealed (a critic begun at ``lr_d / 8`` stayed at chance for 3,300 steps)."""
    warm = min(1.0, (step - warmup_start + 1) / cfg.lr_warmup) if cfg.lr_warmup else 1.0
    return warm * cfg.lr_gamma ** sum(since <= m <= step for m in cfg.lr_milestones)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train until ``cfg.steps`` (or ``cfg.max_minutes``). Returns a summary dict."""
    if cfg.n_critic < 1 or cfg.d_only_steps < 0:
        raise ValueError(f"n_critic must be >= 1 and d_only_steps >= 0; got {cfg.n_critic}, {cfg.d_only_steps}")
    rank, world, local_rank, started_group = _distributed()
    if cfg.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # else every rank's pinned-memory thread opens a context on GPU 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.out)
    ckpt_path = out_dir / "checkpoint.pt"
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        if ckpt_path.exists() and not resume:
            raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue it, or choose another --out")

    torch.manual_seed(cfg.seed)
    gen = create_model(cfg.model, **cfg.model_args).to(device)
    disc = gen.build_discriminator().to(device)
    ema = copy.deepcopy(gen).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    step, train_seconds, hardware, warmup_start, history, images_seen = 0, 0.0, [], 0, [], 0
    if resume and not ckpt_path.exists() and cfg.init_from and rank == 0:
        if any(Path(cfg.init_from).glob("state-*.safetensors")):
            restore_state(cfg.init_from, ckpt_path)
            print(f"starting from the committed training state in {cfg.init_from}")
        else:  # the model's first run: later ones continue from the state it exports there
            print(f"no training state in {cfg.init_from} yet: starting from scratch")
    if world > 1:
        dist.barrier()
    if resume and ckpt_path.exists():
        # read on the CPU: torch.set_rng_state (CPU and CUDA generators alike) takes only a CPU ByteTensor, so
        # map_location=cuda would fail every GPU resume there; load_state_dict copies weights and Adam moments
        # onto the parameters' device anyway
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        gen.load_state_dict(ckpt["generator"])
        disc.load_state_dict(ckpt["discriminator"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.load_state_dict(ckpt["ema"])
        elif ema is not None:  # EMA switched on at this resume: start it from the trained weights, not the init
            ema.load_state_dict(gen.state_dict())
        if ckpt["opt_g"] is not None:  # None after restore_state: fresh Adam, warm-up again
            opt_g.load_state_dict(ckpt["opt_g"])
            opt_d.load_state_dict(ckpt["opt_d"])
            for opt in (opt_g, opt_d):  # Adam's moments in fresh allocations, not views into the loaded file: see
                for state in opt.state.values():  # _fresh
                    state.update({k: _fresh(v) for k, v in state.items()})
        step, train_seconds = ckpt["step"], ckpt.get("train_seconds", 0.0)
        # counted, not step x batch: a run may change its batch size between segments (CPU 8, GPU 64)
        images_seen = ckpt.get("images_seen", step * cfg.batch_size * world)
        warmup_start = ckpt.get("warmup_start", 0)
        hardware = ckpt.get("hardware", [])
        # checkpoints older than the history: their last config is the best record of the recipe so far
        history = ckpt.get("recipe_history") or [{"step": step, "changes": recipe_of(ckpt["config"])}]
        # each rank continues its own generators when the run resumes with as many ranks, else rank 0's
        ranks = ckpt.get("rng_ranks") or []
        rng = ranks[rank] if len(ranks) == world else ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"][:torch.cuda.device_count()])
    here = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU x{torch.get_num_threads()} ({platform.processor() or platform.machine()})"
    here = f"{world} x {here}" if world > 1 else here
    if here not in hardware:
        hardware.append(here)
    history = update_history(history, step, to_dict(cfg))

    gen_ddp, disc_ddp = gen, disc
    if world > 1:
        ids = [local_rank] if device.type == "cuda" else None
        gen_ddp = torch.nn.parallel.DistributedDataParallel(gen, device_ids=ids)
        disc_ddp = torch.nn.parallel.DistributedDataParallel(disc, device_ids=ids)

    if cfg.masks not in ("free_form", "face"):
        raise ValueError(f"masks must be 'free_form' or 'face', got {cfg.masks!r}")
    masks = FaceMaskGenerator(cfg.box_prob) if cfg.masks == "face" else MaskGenerator(cfg.box_prob)
    dataset = FaceFolder(cfg.data, resolution=gen.resolution, masks=masks, decode=not cfg.preload,
                         guidance=training_guidance(gen.inputs, cache_dir=cfg.guidance_cache or None))
    images = preload_faces(dataset.files, gen.resolution, device, threads=max(1, cfg.num_workers)) \
        if cfg.preload else None
    sampler = ResumableSampler(len(dataset), cfg.seed, start=images_seen, rank=rank, world=world)
    # a generator of its own: without one, starting the loader draws its base seed from torch's global RNG, just
    # after a resume restored it, so the resumed run's gradient-penalty / noise draws were one step off the
    # uninterrupted run's (all of the data's randomness comes from the sampler's seeds, not from this)
    loader = iter(DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                             pin_memory=device.type == "cuda", persistent_workers=cfg.num_workers > 0,
                             generator=torch.Generator().manual_seed(cfg.seed)))
    # a fixed batch for sample grids: the first images, fixed masks
    fixed = [dataset[(i, 1000 + i)] for i in range(min(4, len(dataset)))]
    fixed = {k: torch.stack([f[k] for f in fixed]).to(device) for k in fixed[0]}
    if images is not None:
        fixed = assemble(images, fixed)

    writer = None
    if rank == 0:
        (out_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out_dir / "tb"), purge_step=step + 1 if step else None)
        except ImportError:
            print("tensorboard is not installed (pip install 'facefill[train]'): scalars go to log.jsonl only")

    # "asked": set by a signal at any moment; "flag": the stop the ranks agreed on, read only after the all_reduce
    # (a signal landing between that and save() would otherwise send one rank alone into a collective)
    stop = {"asked": False, "flag": False}

    def _on_signal(signum, frame):
        stop["asked"] = True

    # every rank listens (torchrun forwards SIGTERM to all of them); the ranks then agree on stopping each step
    old_handlers = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)} \
        if hasattr(signal, "SIGTERM") else {}

    def save() -> None:
        rng, ranks = _rng_state(), None
        if world > 1:  # every rank calls save() at the same step; only rank 0 writes
            ranks = [None] * world
            dist.all_gather_object(ranks, rng)
        if rank != 0:
            return
        _atomic_save({"generator": gen.state_dict(), "discriminator": disc.state_dict(),
                      "ema": ema.state_dict() if ema is not None else None,
                      "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
                      "config": to_dict(cfg), "rng": rng, "rng_ranks": ranks, "train_seconds": train_seconds,
                      "images_seen": images_seen, "hardware": hardware,
                      "warmup_start": warmup_start, "recipe_history": history}, ckpt_path)

    amp = autocast(cfg.amp, device)
    start_time = segment_start = time.time()
    rate_time, rate_step = time.time(), step
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=cfg.model, dynamic_ncols=True)
    gen.train()
    disc.train()
    logs: dict = {}
    # the generator's terms from its latest step: with n_critic > 1 most joint steps are critic-only, and a log
    # line that fell on one would otherwise show no generator loss at all (none during a discriminator-only phase)
    g_logs: dict = {}
    log_file = _open_log(out_dir / "log.jsonl", step) if rank == 0 else None
    try:
        while step < cfg.steps and not stop["flag"]:
            batch = next(loader)
            batch = assemble(images, batch) if images is not None else \
                {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            for opt, lr, since in ((opt_g, cfg.lr_g, 0), (opt_d, cfg.lr_d, cfg.gan_start)):
                for group in opt.param_groups:
                    group["lr"] = lr * lr_factor(cfg, step, warmup_start, since)
            d_step, g_step, gan_weight = schedule(cfg, step)

            with amp, torch.set_grad_enabled(g_step):
                out = gen_ddp(batch["image"], batch["mask"], **guidance_of(gen, batch))
            m = batch["mask"]
            out["composite"] = out["output"] * m + batch["image"] * (1 - m)

            d_logs = {}
            if not g_step and gan_weight == 0:  # discriminator-only phase: the generator is frozen, not skipped
                g_logs = {}
            if d_step:
                opt_d.zero_grad(set_to_none=True)
                with amp:
                    d_loss, d_logs = gen.discriminator_loss(disc_ddp, batch, out)
                d_loss.backward()
                opt_d.step()

            if g_step:
                opt_g.zero_grad(set_to_none=True)
                if world == 1:
                    disc.requires_grad_(False)  # only input gradients are needed for the generator step
                with amp:
                    g_loss, g_logs = gen.generator_loss(disc_ddp if gan_weight > 0 else None, batch, out,
                                                        gan_weight)
                g_loss.backward()
                disc.requires_grad_(True)
                opt_g.step()
            loss = g_loss if g_step else d_loss
            if ema is not None and g_step:
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, pg in zip(ema.parameters(), gen.parameters()):
                        pe.lerp_(pg, 1 - decay)
                    for be, bg in zip(ema.buffers(), gen.buffers()):
                        be.copy_(bg)
            step += 1
            images_seen += cfg.batch_size * world
            finite = math.isfinite(loss.item())
            stopping = stop["asked"] or bool(cfg.max_minutes and time.time() - start_time > cfg.max_minutes * 60)
            if world > 1:  # all ranks stop, or raise, at the same step: a lone rank would hang in a collective
                flags = torch.tensor([float(stopping), float(not finite)], device=device)
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                stopping, finite = bool(flags[0]), not bool(flags[1])
            stop["flag"] = stopping
            if not finite:
                which = "generator" if g_step else "discriminator"
                where = f" (here {loss.item()}; another rank's was not finite)" if math.isfinite(loss.item()) else \
                    f" ({loss.item()})"
                raise FloatingPointError(f"{which} loss is not finite{where} at step {step}; lower the learning rate")

            if rank == 0:
                logs = {k: float(v) for k, v in {**g_logs, **d_logs}.items()}
                schedule_logs = {"gan_weight": gan_weight, "lr_g": opt_g.param_groups[0]["lr"],
                                 "lr_d": opt_d.param_groups[0]["lr"]}
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
                logs.update(schedule_logs)
                if step % cfg.log_every == 0:
                    now = time.time()
                    logs["images_per_s"] = (step - rate_step) * cfg.batch_size * world / max(now - rate_time, 1e-9)
                    rate_time, rate_step = now, step
                    log_file.write(json.dumps({"step": step, **logs}) + "\n")
                    log_file.flush()
                    if writer is not None:
                        for k, v in logs.items():
                            writer.add_scalar(k, v, step)
                if step % cfg.sample_every == 0:
                    sample_grid(ema if ema is not None else gen, fixed, out_dir / "samples" / f"{step:07d}.png")
            if step % cfg.ckpt_every == 0 or stop["flag"] or step == cfg.steps:
                train_seconds += time.time() - segment_start
                segment_start = time.time()
                save()
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if log_file is not None:
            log_file.close()
    if started_group:  # leave together, with the group taken down: rank 1 returns from save() while rank 0
        dist.barrier()  # still writes, and a rank exiting with its gloo threads live ended once in SIGABRT (CI)
        dist.destroy_process_group()
    return {"step": step, "images_seen": images_seen, "train_seconds": train_seconds,
            "checkpoint": str(ckpt_path), "last": logs}


def export(run_dir: str | Path, dest: str | Path, use_ema: bool = True) -> Path:
    """Write a run's (EMA) generator as fp16 ``config.json`` + ``model.safetensors`` with training provenance."""
    from .pretrained import load_run, save_pretrained

    model, ckpt = load_run(run_dir, use_ema)
    cfg = ckpt["config"]
    if model.frame is None:  # shipped without it, the weights would inpaint in windows of the wrong scale
        raise ValueError(f"cannot tell the side of the training faces: the run's data folder {cfg['data']} is not "
                         "here and its config has no frame; export where the data is, or set frame in the "
                         "checkpoint's config")
    training = {"steps": ckpt["step"], "images_seen": ckpt["images_seen"],
                "train_hours": round(ckpt["train_seconds"] / 3600, 2), "hardware": ckpt["hardware"],
                "batch_size": cfg["batch_size"], "data": "/".join(Path(cfg["data"]).parts[-2:]),
                "ema": bool(use_ema and ckpt.get("ema") is not None),
                "recipe": recipe_of(cfg), "recipe_history": ckpt.get("recipe_history", [])}
    return save_pretrained(model, dest, extra={"training": training, "frame": model.frame})


STATE_SHARD_BYTES = 12 * 2**20  # the largest file save_state writes


def save_state(run_dir: str | Path, dest: str | Path, with_ema: bool = False) -> Path:
    """Write a compact, committable training state of a run into ``dest/state-NNN.safetensors`` (<= 12 MiB
    shards): the generator in fp16, the discriminator in fp16 once the adversarial loss has started (before that
    it is its seeded initialisation), and step / RNG / provenance as metadata. The generator's EMA is not
    duplicated: it is the shipped fp16 ``model.safetensors`` (see ``export``), unless ``with_ema`` (a state that
    runs ahead of the shipped weights, ``facefill save-state``) stores it too, in fp16. Adam's moments are left
    out (they would triple the size that every session commits and every GPU transfer carries): ``restore_state``
    starts Adam afresh and the loop warms the learning rate up again. Rounding the weights to fp16 once moves
    them less than one optimizer step."""
    from safetensors.torch import save_file

    from .pretrained import cast_floats

    ckpt = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    cfg = ckpt["config"]
    # fp16 where the values fit (a tensor with values beyond 65504 stays fp32 rather than becoming inf)
    tensors = {f"generator.{k}": cast_floats(v, torch.float16) for k, v in ckpt["generator"].items()}
    if cfg["gan_weight"] > 0 and ckpt["step"] > cfg["gan_start"]:
        tensors.update({f"discriminator.{k}": cast_floats(v, torch.float16)
                        for k, v in ckpt["discriminator"].items()})
    if with_ema:
        tensors.update({f"ema.{k}": cast_floats(v, torch.float16) for k, v in ckpt["ema"].items()})
    meta = {"step": ckpt["step"], "config": cfg, "train_seconds": ckpt["train_seconds"],
            "images_seen": ckpt["images_seen"], "hardware": ckpt["hardware"],
            "recipe_history": ckpt.get("recipe_history", []), "torch_rng": ckpt["rng"]["torch"].tolist()}
    # each shard's file, safetensors header (its metadata and one entry per tensor) included, stays within
    # STATE_SHARD_BYTES: a tensor larger than what is left of that is stored flat in pieces named NAME#IofN
    header = len(json.dumps({"meta": json.dumps({**meta, "shards": 10 ** 6})})) + 1024
    budget = STATE_SHARD_BYTES - header
    shards, current, size = [], {}, 0
    for k, v in tensors.items():
        v = v.contiguous()
        per = max(1, (budget - len(k) - 256) // v.element_size())
        pieces = [v] if v.numel() <= per else [p.clone() for p in v.reshape(-1).split(per)]
        for i, piece in enumerate(pieces):
            key = k if len(pieces) == 1 else f"{k}#{i}of{len(pieces)}"
            nbytes = piece.numel() * piece.element_size() + len(key) + 128
            if current and size + nbytes > budget:
                shards.append(current)
                current, size = {}, 0
            current[key] = piece
            size += nbytes
    shards.append(current)
    meta["shards"] = len(shards)  # restore_state refuses a state with shards missing or from another export
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # all shards are written before any is replaced, and stale ones go last: a failure leaves the previous state
    with contextlib.ExitStack() as stack:
        for i, shard in enumerate(shards):
            tmp = stack.enter_context(atomic_write(dest / f"state-{i:03d}.safetensors"))
            save_file(shard, str(tmp), metadata={"meta": json.dumps(meta)})
    keep = {f"state-{i:03d}.safetensors" for i in range(len(shards))}
    for old in dest.glob("state-*.safetensors"):
        if old.name not in keep:
            old.unlink()
    return dest


def _fresh(value):
    """A tensor copied into a new (64-byte aligned) allocation. Tensors unpickled by ``torch.load`` can sit at any
    offset; the vectorised elementwise kernels (AVX-512, FMA) then round the unaligned head differently from the
    uninterrupted run, so a resumed run drifted ~1e-6 off it on an AVX-512 CPU instead of continuing bit-exactly."""
    return value.clone(memory_format=torch.contiguous_format) if torch.is_tensor(value) else value


def restore_state(state_dir: str | Path, ckpt_path: str | Path) -> None:
    """Rebuild a ``checkpoint.pt`` from ``save_state``'s compact state (the EMA from the state when it holds one,
    else from the shipped weights in ``facefill/weights/<model>``, or, for a model that ships none yet, restarted
    from the raw generator), with fresh optimizers and a learning-rate warm-up from the restored step."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from .registry import weights_path

    paths = sorted(Path(state_dir).glob("state-*.safetensors"))
    if not paths:
        raise FileNotFoundError(f"no training state (state-*.safetensors) in {state_dir}")
    tensors, metas = {}, set()
    for path in paths:
        with safe_open(str(path), "pt") as f:
            metas.add((f.metadata() or {}).get("meta"))
            tensors.update({k: f.get_tensor(k) for k in f.keys()})
    meta = json.loads(next(iter(metas)) or "null")
    if len(metas) > 1 or not isinstance(meta, dict) or len(paths) != meta.get("shards", len(paths)):
        raise ValueError(f"the training state in {state_dir} is incomplete or mixes two exports ({len(paths)} "
                         "shards): export it again")
    pieces: dict[str, dict[int, torch.Tensor]] = {}
    counts: dict[str, int] = {}
    for key in [k for k in tensors if "#" in k]:  # a large tensor, stored flat in pieces NAME#IofN
        name, _, part = key.rpartition("#")
        i, counts[name] = (int(x) for x in part.split("of"))
        pieces.setdefault(name, {})[i] = tensors.pop(key)
    for name, got in pieces.items():
        if sorted(got) != list(range(counts[name])):
            raise ValueError(f"the training state in {state_dir} lacks pieces of {name}: export it again")
        tensors[name] = torch.cat([got[i] for i in range(counts[name])])  # shaped like the model's below
    cfg = meta["config"]
    torch.manual_seed(cfg["seed"])  # the discriminator's initialisation, as in train()
    gen = create_model(cfg["model"], **cfg["model_args"])
    disc = gen.build_discriminator()

    def part(prefix: str, model: torch.nn.Module) -> dict:
        """The tensors under ``prefix``, in the model's dtype and shape (joined pieces come back flat); a tensor
        that does not fit is passed on as it is, for load_state_dict to name."""
        ref, out = model.state_dict(), {}
        for key, v in tensors.items():
            name = key[len(prefix):]
            if key.startswith(prefix):
                fits = name in ref and v.numel() == ref[name].numel()
                out[name] = v.to(ref[name].dtype).reshape(ref[name].shape) if fits else v
        return out

    gen.load_state_dict(part("generator.", gen))
    if any(k.startswith("discriminator.") for k in tensors):
        disc.load_state_dict(part("discriminator.", disc))
    ema = copy.deepcopy(gen)
    shipped = weights_path(cfg["model"]) / "model.safetensors"
    if any(k.startswith("ema.") for k in tensors):
        ema.load_state_dict(part("ema.", ema))
    elif shipped.is_file():
        ema.load_state_dict({k: v.float() for k, v in load_file(str(shipped)).items()})
    ckpt_path = Path(ckpt_path)
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save({"generator": gen.state_dict(), "discriminator": disc.state_dict(), "ema": ema.state_dict(),
                  "opt_g": None, "opt_d": None, "step": meta["step"], "warmup_start": meta["step"], "config": cfg,
                  "rng": {"torch": torch.tensor(meta["torch_rng"], dtype=torch.uint8)},
                  "train_seconds": meta["train_seconds"], "images_seen": meta["images_seen"],
                  "hardware": meta["hardware"], "recipe_history": meta.get("recipe_history", [])}, ckpt_path)
