"""Weights on disk: a folder with ``config.json`` (the registered name + constructor arguments) and
``model.safetensors`` (fp16 by default). Loading is strict: a missing or unexpected tensor is an error. A training
run's ``checkpoint.pt`` loads as well (``load_run``), so runs can be used and evaluated before they are exported."""
from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .registry import create_model, model_names, weights_path


class WeightsError(RuntimeError):
    """Weights that are missing or do not fit the model; the message says which and why."""


def save_pretrained(model, directory: str | os.PathLike, dtype: torch.dtype = torch.float16,
                    extra: dict | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` of an (unwrapped) model atomically into ``directory``."""
    model = getattr(model, "module", model)  # DDP
    model = getattr(model, "_orig_mod", model)  # torch.compile
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    config = {"model": model.name, "config": model.config, **(extra or {})}
    for name, write in (("model.safetensors", lambda p: save_file(state, p)),
                        ("config.json", lambda p: Path(p).write_text(json.dumps(config, indent=2) + "\n"))):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; weights are meant to be read by anyone
        os.replace(tmp, directory / name)
    return directory


def read_config(directory: str | os.PathLike) -> dict:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise WeightsError(f"no config.json in {directory}")
    return json.loads(path.read_text())


def load_pretrained(name_or_dir: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load a model by registered name (its shipped weights), from a weights folder (``config.json`` +
    ``model.safetensors``) or from a training run (a run folder holding ``checkpoint.pt``, or a ``.pt`` checkpoint:
    its EMA generator in fp32, see ``load_run``). Returns it in eval mode."""
    directory = Path(name_or_dir)
    is_run = (directory.suffix == ".pt" and directory.is_file()) or \
        ((directory / "checkpoint.pt").is_file() and not (directory / "model.safetensors").is_file())
    if is_run:
        try:
            return load_run(directory)[0].to(device)
        except (KeyError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as err:
            raise WeightsError(f"{directory} is not a facefill training checkpoint that fits its model: "
                               f"{err}") from err
    if not (directory / "config.json").is_file():
        name = str(name_or_dir)
        if name not in model_names():
            raise KeyError(f"unknown model {name!r}; available: {', '.join(model_names())} "
                           "(or give a folder with config.json + model.safetensors, or a training run)")
        model = create_model(name)
        if not getattr(model, "config", None) or not isinstance(model, torch.nn.Module):
            return model  # classical: nothing to load
        directory = weights_path(name)
        if not (directory / "model.safetensors").is_file():
            raise WeightsError(f"model {name!r} ships no trained weights ({directory} is missing); "
                               f"train it with `facefill train --model {name}` or pick one that does "
                               "(`facefill models`)")
    config = read_config(directory)
    model = create_model(config["model"], **config["config"])
    state = load_file(str(directory / "model.safetensors"))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(f"weights in {directory} do not fit {config['model']}: "
                           f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    model.frame = config.get("frame")
    return model.to(device).eval()


def load_run(run: str | Path, use_ema: bool = True) -> tuple[torch.nn.Module, dict]:
    """The generator of a training run (a run folder holding ``checkpoint.pt``, or the checkpoint file itself): its
    EMA weights (or the raw generator's), in fp32 and eval mode, with ``frame`` set as ``facefill.train.export``
    ships it, so that it inpaints exactly as its exported weights would (up to their fp16 rounding).
    Returns ``(model, checkpoint)``."""
    from PIL import Image

    from .data.faces import list_images

    path = Path(run)
    ckpt = torch.load(path / "checkpoint.pt" if path.is_dir() else path, map_location="cpu", weights_only=False)
    cfg = ckpt["config"]
    model = create_model(cfg["model"], **cfg["model_args"])
    model.load_state_dict(ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["generator"])
    frame = cfg.get("frame") or None  # the native side of the training crops (see NetworkInpainter.frame)
    if frame is None:
        try:
            with Image.open(list_images(cfg["data"])[0]) as first:
                frame = min(first.size)
        except (FileNotFoundError, OSError):
            pass
    model.frame = frame
    return model.eval(), ckpt
