"""Model registry: architectures register named variants; ``create_model`` and ``list_models`` are the only
ways to get at them (timm's ``@register_model`` / ``create_model`` pattern)."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

WEIGHTS_DIR = Path(__file__).parent / "weights"

_REGISTRY: dict[str, Callable] = {}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    has_weights: bool


def register_model(fn: Callable) -> Callable:
    """Register ``fn(**overrides) -> model`` under its function name; its docstring's first line describes it."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def _import_all_models() -> None:
    from . import models

    for module in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{module.name}")


def _lookup(name: str) -> Callable:
    _import_all_models()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **overrides):
    """Build a registered model with fresh (untrained) weights. ``None`` overrides are dropped so the
    variant's own defaults win."""
    model = _lookup(name)(**{k: v for k, v in overrides.items() if v is not None})
    model.name = name
    return model


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / name


def list_models() -> list[ModelInfo]:
    """All registered models, sorted by name, with a one-line description and whether trained weights ship."""
    _import_all_models()
    infos = []
    for name in sorted(_REGISTRY):
        doc = (_REGISTRY[name].__doc__ or "").strip().splitlines()
        has = getattr(_REGISTRY[name], "trainable", True) is False or (weights_path(name) / "model.safetensors").is_file()
        infos.append(ModelInfo(name, doc[0] if doc else "", has))
    return infos


def model_names() -> list[str]:
    _import_all_models()
    return sorted(_REGISTRY)
