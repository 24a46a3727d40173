"""Weights on disk: a folder with ``config.json`` (the registered name + constructor arguments) and
``model.safetensors`` (fp16 by default). Loading is strict: a missing or unexpected tensor is an error. A training
run's ``checkpoint.pt`` loads as well (``load_run``), so runs can be used and evaluated before they are exported."""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._atomic import atomic_write
from .registry import create_model, model_names, weights_path


class WeightsError(RuntimeError):
    """Weights that are missing or do not fit the model; the message says which and why."""


class ConfigError(WeightsError, ValueError):
    """A weights folder's ``config.json`` that is not JSON, not an object, or names no usable model."""


def cast_floats(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` in ``dtype`` when it is floating point and its values fit ``dtype``'s range; a tensor with a
    finite value beyond it (fp16 tops out at 65504: a BatchNorm running_var, a large weight) keeps its own
    precision instead of turning into inf. Integer tensors are returned as they are."""
    if not tensor.is_floating_point() or tensor.dtype == dtype:
        return tensor
    if tensor.numel() and torch.finfo(dtype).max < torch.finfo(tensor.dtype).max:
        peak = tensor.detach().abs().max()
        if torch.isfinite(peak) and peak > torch.finfo(dtype).max:
            return tensor
    return tensor.to(dtype)


def non_finite(state: dict) -> list[str]:
    """The names of the floating-point tensors of ``state`` that hold an inf or NaN, sorted."""
    return sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, or ``ValueError`` saying why it cannot be used on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{device!r} is not a torch device (cpu, cuda, cuda:1, mps, ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine (use device='cpu')")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available on this machine (use device='cpu')")
    return dev


def save_pretrained(model, directory: str | os.PathLike, dtype: torch.dtype = torch.float16,
                    extra: dict | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` of an (unwrapped) model atomically into ``directory``."""
    model = getattr(model, "module", model)  # DDP
    model = getattr(model, "_orig_mod", model)  # torch.compile
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    bad = non_finite(state)
    if bad:
        raise WeightsError(f"{model.name} has non-finite (inf/NaN) values in {bad[:5]}: not writing them")
    state = {k: cast_floats(v.detach().cpu(), dtype).contiguous() for k, v in state.items()}
    kept = [k for k, v in state.items() if v.is_floating_point() and v.dtype != dtype]
    if kept:
        warnings.warn(f"{kept[:5]} hold values beyond {dtype}'s range: written in their own precision",
                      stacklevel=2)
    # everything is serialised before anything is replaced: a config that cannot be written (or a failed write)
    # leaves the folder's previous weights as they were, not new tensors beside an old config.json
    text = json.dumps({"model": model.name, "config": model.config, **(extra or {})}, indent=2) + "\n"
    with contextlib.ExitStack() as stack:
        config = stack.enter_context(atomic_write(directory / "config.json"))
        weights = stack.enter_context(atomic_write(directory / "model.safetensors"))  # replaced first
        save_file(state, str(weights))
        config.write_text(text)
    return directory


def read_config(directory: str | os.PathLike) -> dict:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise WeightsError(f"no config.json in {directory}")
    try:
        config = json.loads(path.read_text())
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return config


def load_pretrained(name_or_dir: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load a model by registered name (its shipped weights), from a weights folder (``config.json`` +
    ``model.safetensors``) or from a training run (a run folder holding ``checkpoint.pt``, or a ``.pt`` checkpoint:
    its EMA generator in fp32, see ``load_run``). A bare registered name (a ``str``) always means that model,
    even beside a folder of the same name; give such a folder as a path (``./deepfill_v2`` or a ``Path``).
    Returns it in eval mode."""
    check_device(device)
    name = str(name_or_dir)
    if isinstance(name_or_dir, str) and name in model_names():  # a bare registered name always means the
        model = create_model(name)                                # model; a same-named folder: ./deepfill_v2
        if not getattr(model, "config", None) or not isinstance(model, torch.nn.Module):
            return model  # classical: nothing to load
        directory = weights_path(name)
        if not (directory / "model.safetensors").is_file():
            raise WeightsError(f"model {name!r} ships no trained weights ({directory} is missing); "
                               f"train it with `facefill train --model {name}` or pick one that does "
                               "(`facefill models`)")
    else:
        directory = Path(name_or_dir)
        if (directory.suffix == ".pt" and directory.is_file()) or \
                ((directory / "checkpoint.pt").is_file() and not (directory / "model.safetensors").is_file()):
            return load_run(directory)[0].to(device)
        if directory.is_dir() and not (directory / "config.json").is_file():
            raise WeightsError(f"{directory} holds no config.json: a weights folder holds config.json + "
                               "model.safetensors, a training run checkpoint.pt")
        if not directory.is_dir():
            raise KeyError(f"unknown model {name!r}; available: {', '.join(model_names())} "
                           "(or give a folder with config.json + model.safetensors, or a training run)")
    config = read_config(directory)
    if "model_args" in config and "config" not in config:
        raise WeightsError(f"{directory} is a training run without a checkpoint.pt yet: nothing to load")
    if not isinstance(config.get("model"), str) or not isinstance(config.get("config"), dict):
        raise ConfigError(f"{directory / 'config.json'} names no model: it needs \"model\" (a registered name) "
                          "and \"config\" (its constructor arguments)")
    try:
        model = create_model(config["model"], **config["config"])
    except (KeyError, TypeError) as err:  # an unknown name, arguments the model does not take
        raise ConfigError(f"{directory / 'config.json'} does not describe a model: "
                          f"{str(err).strip(chr(34))}") from None
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{directory / 'config.json'} names {config['model']!r}, which has no weights to load")
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise WeightsError(f"no model.safetensors in {directory} (a weights folder holds config.json + "
                           "model.safetensors)")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{weights} cannot be read as safetensors (corrupt or cut short?): {err}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(f"weights in {directory} do not fit {config['model']}: "
                           f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
    bad = non_finite(state)
    if bad:
        raise WeightsError(f"weights in {directory} hold non-finite (inf/NaN) values in {bad[:5]}")
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
    try:
        ckpt = torch.load(path / "checkpoint.pt" if path.is_dir() else path, map_location="cpu",
                          weights_only=False)
        cfg = ckpt["config"]
        model = create_model(cfg["model"], **cfg["model_args"])
        model.load_state_dict(ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["generator"])
    except (KeyError, TypeError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise WeightsError(f"{path} is not a facefill training checkpoint that fits its model: {err}") from err
    frame = cfg.get("frame") or None  # the native side of the training crops (see NetworkInpainter.frame)
    if frame is None:
        try:
            with Image.open(list_images(cfg["data"])[0]) as first:
                frame = min(first.size)
        except (FileNotFoundError, OSError):
            pass
    model.frame = frame
    return model.eval(), ckpt
