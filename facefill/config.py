"""Typed configuration: dataclasses filled from a JSON/YAML file, then ``key=value`` overrides.
Unknown keys are errors; values are converted to the field's type."""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path


def _convert(value, typ, key: str):
    origin = typing.get_origin(typ)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _convert(value, args[0], key)
    if typ is bool or typ == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}: expected true/false, got {value!r}")
    if origin is dict or typ is dict:
        return json.loads(value) if isinstance(value, str) else dict(value)
    if origin in (tuple, list):
        items = json.loads(value) if isinstance(value, str) else value
        inner = typing.get_args(typ)[0] if typing.get_args(typ) else str
        return (tuple if origin is tuple else list)(_convert(v, inner, key) for v in items)
    try:
        return typ(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: cannot read {value!r} as {getattr(typ, '__name__', typ)}") from None


def build(cls, file: str | Path | None = None, overrides: list[str] | dict | None = None):
    """``cls`` defaults <- ``file`` (JSON or YAML) <- ``overrides`` (``["key=value", ...]`` or a dict)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values: dict = {}
    if file:
        text = Path(file).read_text()
        if str(file).endswith((".yaml", ".yml")):
            import yaml

            values.update(yaml.safe_load(text) or {})
        else:
            values.update(json.loads(text))
    if isinstance(overrides, dict):
        values.update(overrides)
    else:
        for item in overrides or []:
            if "=" not in item:
                raise ValueError(f"override {item!r} is not key=value")
            key, value = item.split("=", 1)
            values[key.strip()] = value
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(fields)}")
    return cls(**{k: _convert(v, hints[k], k) for k, v in values.items()})


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
