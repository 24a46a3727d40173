"""Per-image evaluation scores kept between runs: re-running ``facefill eval`` after more training recomputes only
the models whose weights changed (the classical baselines and the truths' features come from the cache).

Entries are content-addressed, so they cannot go stale silently:
  - a *model* is identified by ``model_fingerprint``: a hash of its weights, config and inference settings
    (networks, with the device type and whether it runs under bf16 autocast, its ``amp``), or of its name and
    the versions of the libraries that compute it (classical models);
  - an *image* by the SHA-1 of the truth's pixels and of the hole's pixels (``entry_key``), so a changed mask
    generator, seed, size or data file simply misses.
A model's scores live in ``DIR/<name>-<fingerprint>.npz`` (one row per (truth, hole): the ``VALUES`` and the
Inception feature, NaN where a family was not computed); the truths' features and whether dlib found a face in
``DIR/truths.npz``. Files are written atomically; an unreadable file is ignored with a warning (and rebuilt).
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from .metrics import METRICS

FEATURE_DIM = 2048  # Inception-v3 pool3
# the per-image scores of one (model, truth, hole), in this order in a store row
VALUES: tuple[str, ...] = METRICS + ("ms", "st_lpips", "id_cosine", "id_distance", "id_match")
PROTOCOL = 1  # bump when a metric's definition changes: every stored score is then recomputed


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/facefill/eval`` (``~/.cache/facefill/eval`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facefill" / "eval"


def image_key(truth: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(truth).tobytes() + str(truth.shape).encode()).hexdigest()


def entry_key(truth_key: str, hole: np.ndarray) -> str:
    return hashlib.sha1(truth_key.encode() + np.packbits(hole).tobytes() + str(hole.shape).encode()).hexdigest()


def model_fingerprint(model) -> str:
    """A short hash that changes whenever ``model`` would inpaint differently (weights, config, settings)."""
    import cv2
    import skimage
    import torch

    import facefill

    h = hashlib.sha256(f"protocol {PROTOCOL} facefill {facefill.__version__} {type(model).__qualname__} "
                       f"{getattr(model, 'name', '')} config {sorted(getattr(model, 'config', {}).items())}".encode())
    if isinstance(model, torch.nn.Module):
        from ..precision import use_bf16

        # the device and the precision it runs at (``amp``) change the results and the time per image
        device = next(model.parameters()).device
        h.update(f"torch {torch.__version__} frame {getattr(model, 'frame', None)} "
                 f"resolution {getattr(model, 'resolution', None)} device {device.type} "
                 f"bf16 {use_bf16(getattr(model, 'amp', 'off'), device)}".encode())
        for name, tensor in sorted(model.state_dict().items()):
            h.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    else:
        h.update(f"opencv {cv2.__version__} scikit-image {skimage.__version__}".encode())
    return h.hexdigest()[:16]


class _Table:
    """``key -> (values row, feature row)`` of one file, loaded on first use, saved atomically."""

    def __init__(self, path: Path, width: int):
        self.path, self.width = path, width
        self.rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.dirty = False
        if path.is_file():
            try:
                with np.load(path) as f:
                    keys, values, features = f["keys"], f["values"], f["features"]
                    if values.shape[1] != width or features.shape[1] != FEATURE_DIM:
                        raise ValueError(f"{values.shape[1]} values per row, expected {width}")
                    self.rows = {str(k): (v, ft) for k, v, ft in zip(keys, values, features)}
            except Exception as exc:  # a broken cache file loses only cached work: warn and rebuild it
                warnings.warn(f"ignoring the unreadable evaluation cache {path} ({type(exc).__name__}: {exc}); "
                              "it will be rewritten", stacklevel=3)

    def put(self, key: str, values: np.ndarray, feature: np.ndarray | None) -> None:
        feat = np.full(FEATURE_DIM, np.nan, np.float32) if feature is None else np.asarray(feature, np.float32)
        self.rows[key] = (np.asarray(values, np.float64), feat)
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.rows)
        values = np.array([self.rows[k][0] for k in keys]).reshape(len(keys), self.width)
        features = np.array([self.rows[k][1] for k in keys], np.float32).reshape(len(keys), FEATURE_DIM)
        with atomic_write(self.path, suffix=".npz") as tmp:
            np.savez(tmp, keys=np.array(keys), values=values, features=features)
        self.dirty = False


class EvalCache:
    """The scores of earlier runs in ``directory`` (see the module docstring).

    >>> cache = EvalCache("~/.cache/facefill/eval")
    >>> store = f"{name}-{model_fingerprint(model)}"          # one file per model version
    >>> key = entry_key(image_key(truth), hole)
    >>> cache.get(store, key, families)     # -> (dict of VALUES, feature or None) or None when not stored
    >>> cache.put(store, key, values, feature); cache.save()
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).expanduser()
        self._models: dict[str, _Table] = {}
        self._truths = _Table(self.directory / "truths.npz", 1)  # value: 1 face found, 0 none, NaN not looked for

    def _table(self, store: str) -> _Table:
        if store not in self._models:
            # a model named by a path ("runs/deepfill_v2", "/abs/weights") must not leave the cache folder: its file
            # name keeps letters, digits, "_", "." and "-" only (the fingerprint in ``store`` keeps it unique)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", store).strip("._")
            self._models[store] = _Table(self.directory / f"{name}.npz", len(VALUES))
        return self._models[store]

    def truth(self, key: str) -> tuple[float, np.ndarray | None] | None:
        """``(face found: 1.0 / 0.0 / nan, Inception feature or None)`` of a truth, or None when not stored."""
        row = self._truths.rows.get(key)
        if row is None:
            return None
        face, feature = float(row[0][0]), row[1]
        return face, None if np.isnan(feature[0]) else feature

    def put_truth(self, key: str, face: float, feature: np.ndarray | None) -> None:
        old = self._truths.rows.get(key)
        if old is not None:  # keep what this run did not compute
            face = old[0][0] if np.isnan(face) else face
            feature = old[1] if feature is None else feature
        self._truths.put(key, [face], feature)

    def get(self, store: str, key: str, families: list[str], face: float | None = None
            ) -> tuple[dict[str, float], np.ndarray | None] | None:
        """A stored entry that has every family of ``families`` (identity may be absent when ``face`` is 0: no face
        in the truth), else None."""
        row = self._table(store).rows.get(key)
        if row is None:
            return None
        values = dict(zip(VALUES, row[0].tolist()))
        feature = None if np.isnan(row[1][0]) else row[1]
        if any(np.isnan(values[m]) for m in METRICS + ("ms",)):
            return None
        if {"fid", "kid"} & set(families) and feature is None:
            return None
        if "st_lpips" in families and np.isnan(values["st_lpips"]):
            return None
        if "identity" in families and np.isnan(values["id_cosine"]) and face != 0.0:
            return None
        return values, feature

    def put(self, store: str, key: str, values: dict[str, float], feature: np.ndarray | None) -> None:
        """Store one entry; families it lacks keep their stored values (same model, same image: still valid)."""
        table = self._table(store)
        row = np.array([values.get(k, np.nan) for k in VALUES], np.float64)
        old = table.rows.get(key)
        if old is not None:
            row = np.where(np.isnan(row), old[0], row)
            feature = old[1] if feature is None else feature
        table.put(key, row, feature)

    def save(self) -> None:
        for table in [self._truths, *self._models.values()]:
            table.save()
