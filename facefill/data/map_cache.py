"""A folder of cached uint8 training maps (SC-FEGAN's edge and colour maps), one PNG per key.

``MapCache(folder, kind, color)`` keeps ``FOLDER/KEY.KIND.png``: grey ``HxW`` maps, or RGB ``HxWx3`` ones with
``color=True``. Writes are atomic (``atomic_write``: a temporary file of the writer's own, flushed to disk, then
a rename), so a reader never sees half a map and two workers writing the same key at once do not trip over each
other.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .._atomic import atomic_write


class MapCache:
    def __init__(self, folder: str | Path, kind: str, color: bool = False):
        self.folder, self.kind, self.color = Path(folder), kind, color

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.{self.kind}.png"

    def read(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The map of ``key`` (uint8), or None when there is none (or none of this ``shape``)."""
        path = self.path(key)
        if not path.is_file():
            return None
        arr = cv2.imread(str(path), cv2.IMREAD_COLOR if self.color else cv2.IMREAD_GRAYSCALE)
        if arr is None or (shape is not None and arr.shape != tuple(shape)):
            return None
        return arr[..., ::-1] if self.color else arr

    def write(self, key: str, arr: np.ndarray) -> None:
        """Store ``arr`` (uint8 ``HxW``, or ``HxWx3`` RGB) as the map of ``key``."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(arr[..., ::-1] if self.color else arr))
        if not ok:
            raise OSError(f"could not encode the {self.kind} map of {key!r} as PNG")
        with atomic_write(path) as tmp:
            tmp.write_bytes(png.tobytes())
