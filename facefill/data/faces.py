"""A dataset over a folder of face images, deterministic per seed and independent of worker count.

Guided models (SC-FEGAN: ``inputs`` with ``"sketch"`` / ``"color"``) get their training guidance from
``TrainingGuidance`` (``guidance=``): it is drawn from the decoded image and the mask with its own random stream
(seeded by ``(sample_seed, 1)``), so an unguided dataset draws exactly what it did before; a flipped sample's
maps are its image's maps mirrored, so one cache entry per image serves both.

The sampler yields ``(index, sample_seed)`` pairs; all randomness of a sample (flip, mask) comes from
``sample_seed``, so a sample is the same whichever worker draws it, and a run resumed at step ``s`` sees
exactly the samples it would have seen without the interruption.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from .masks import MaskGenerator

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
DEFAULT_TRAIN_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "celeba256" / "train"


def list_images(folder: str | Path) -> list[Path]:
    """The images of ``folder``, sorted by name. Hidden files are left out: macOS writes an AppleDouble companion
    ``._NAME.jpg`` (resource fork, not an image) next to each file it copies onto some drives or into archives;
    so are folders whose names end like an image's."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def cache_keys(files: list[Path]) -> list[str]:
    """The guidance-cache key of each of ``files``: its stem, or its whole name where another of ``files`` has the
    same stem (``a.jpg`` and ``a.png``), so two images never read each other's sketch or colour maps."""
    counts = Counter(p.stem for p in files)
    return [p.stem if counts[p.stem] == 1 else p.name for p in files]


def load_face(path: Path, resolution: int) -> np.ndarray:
    """RGB uint8 ``res x res``: centre-cropped to a square, then resized (area filter)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        if s != resolution:
            img = img.resize((resolution, resolution), Image.BOX if s > resolution else Image.BICUBIC)
        return np.asarray(img)


class TrainingGuidance:
    """Sketch and colour maps of a training sample (SC-FEGAN, sec. 3.1), inside the hole only.

    ``__call__(rgb uint8 HxWx3, hole uint8 HxW, rng, key, flip=False) -> {"sketch": (1,H,W) in {0,1}, "color":
    (3,H,W) in [0,1]}`` with the keys of ``inputs`` that are guidance. Each map is left out (all zeros) with probability
    ``drop``, so the model also learns to inpaint without it. ``sketch_method``: ``auto`` (HED if installed, else
    Canny), ``hed`` or ``canny``; ``cache_dir`` caches edge maps and colour maps per image (HED costs ~1 s and a
    colour map ~0.8 s per 256 px face on one CPU core; see ``facefill.data.sketch`` / ``color``): fill it once
    with ``facefill guidance-cache`` (:meth:`precompute`; seconds per thousand faces on a GPU)."""

    def __init__(self, inputs: tuple[str, ...] = ("sketch", "color"), sketch_method: str = "auto",
                 cache_dir: str | Path | None = None, drop: float = 0.1):
        unknown = set(inputs) - {"image", "mask", "sketch", "color"}
        if unknown:
            raise ValueError(f"no training guidance for inputs {sorted(unknown)}; known: sketch, color")
        self.inputs = tuple(k for k in inputs if k in ("sketch", "color"))
        self.drop = drop
        self.sketch = self.color = None
        if "sketch" in self.inputs:
            from .sketch import SketchMaker

            self.sketch = SketchMaker(sketch_method, cache_dir)
        if "color" in self.inputs:
            from .color import ColorMaker

            self.color = ColorMaker(cache_dir=cache_dir)

    def cached(self, key: str, shape: tuple[int, int]) -> bool:
        """Whether every map of ``key`` (at this ``shape``) is in the cache."""
        return (self.sketch is None or self.sketch.cached(key, shape) is not None) and \
            (self.color is None or self.color.cached(key, (*shape, 3)) is not None)

    def precompute(self, files: list[Path], resolution: int, device: str = "cpu", workers: int = 0,
                   batch: int = 64, progress: bool = False) -> int:
        """Fill the cache (``cache_dir``) for these faces, as ``FaceFolder`` keys them (one entry per image:
        flipped samples mirror it); faces already cached are skipped, so an interrupted run resumes. HED and the
        colour maps' bilateral passes run batched on ``device``; SLIC runs in ``workers`` processes (0: here).
        Returns the number of faces computed."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

        if self.sketch is None and self.color is None:
            return 0
        if (self.sketch or self.color).cache is None:
            raise ValueError("precompute needs a cache_dir")
        todo = [(p, k) for p, k in zip(files, cache_keys(files)) if not self.cached(k, (resolution, resolution))]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="guidance cache", unit="face")
        # spawned, not forked: the parent may have initialised CUDA (HED) by the time the pool starts its workers
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 0 else None
        try:
            with ThreadPoolExecutor(4) as readers:
                for start in range(0, len(todo), batch):
                    chunk = todo[start:start + batch]
                    rgbs = list(readers.map(lambda pk: load_face(pk[0], resolution), chunk))
                    if self.sketch is not None:
                        for (_, key), edges in zip(chunk, self.sketch.edges_batch(rgbs, device)):
                            self.sketch.store(key, edges)
                    if self.color is not None:
                        for (_, key), colors in zip(chunk, self.color.colors_batch(rgbs, device, pool)):
                            self.color.store(key, colors)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if pool is not None:
                pool.shutdown()
            if bar is not None:
                bar.close()
        return len(todo)

    def __call__(self, rgb: np.ndarray, hole: np.ndarray, rng: np.random.Generator, key: str | None = None,
                 flip: bool = False) -> dict:
        """Maps of the sample whose image is ``rgb`` (mirrored when ``flip``) and whose hole is ``hole`` (in the
        sample's frame): they are computed on (and cached for) ``rgb`` as it is, then mirrored with it."""
        h, w = hole.shape
        if flip:
            hole = np.ascontiguousarray(hole[:, ::-1])
        out = {}
        if self.sketch is not None:
            keep = rng.uniform() >= self.drop
            sketch = self.sketch(rgb, hole, rng, key) if keep else np.zeros((h, w), np.float32)
            out["sketch"] = torch.from_numpy(sketch)[None]
        if self.color is not None:
            keep = rng.uniform() >= self.drop
            color = self.color(rgb, hole, rng, key) if keep else np.zeros((h, w, 3), np.float32)
            out["color"] = torch.from_numpy(np.ascontiguousarray(color)).permute(2, 0, 1)
        return {k: v.flip(-1) for k, v in out.items()} if flip else out


def training_guidance(inputs: tuple[str, ...], **kw) -> TrainingGuidance | None:
    """The ``TrainingGuidance`` a model with these ``inputs`` needs, or ``None`` for an unguided model."""
    return TrainingGuidance(inputs, **kw) if set(inputs) & {"sketch", "color"} else None


class FaceFolder(Dataset):
    """Faces for inpainting. Item ``(index, sample_seed)`` -> ``{"image": (3,H,W) in [-1,1], "mask": (1,H,W)}``
    (mask 1 = hole); horizontal flip with probability 1/2 when ``flip``. With ``guidance`` (a
    ``TrainingGuidance``) items also hold ``"sketch"`` (1,H,W) and/or ``"color"`` (3,H,W).

    With ``decode=False`` items are ``{"index", "flip", "mask"}`` only, for images preloaded on the training
    device (``preload_faces`` + ``assemble``); both ways give the same samples for the same seeds. Guidance is
    computed from the decoded image on the CPU, so it does not combine with ``decode=False`` yet."""

    def __init__(self, root: str | Path, resolution: int = 256, flip: bool = True,
                 masks: MaskGenerator | None = None, decode: bool = True, guidance: TrainingGuidance | None = None):
        self.files = list_images(root)
        self.keys = cache_keys(self.files)  # guidance-cache keys
        self.resolution = resolution
        self.flip = flip
        self.masks = masks or MaskGenerator()
        self.decode = decode
        self.guidance = guidance
        if guidance is not None and not decode:
            raise ValueError("sketch/colour guidance is computed from decoded images on the CPU: preloading images "
                             "onto the device (preload / decode=False) is not supported for guided models yet")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: tuple[int, int]) -> dict:
        index, sample_seed = item
        rng = np.random.default_rng(sample_seed)
        flip = bool(self.flip and rng.uniform() < 0.5)
        mask = torch.from_numpy(self.masks(self.resolution, self.resolution, rng).astype(np.float32))[None]
        if not self.decode:
            return {"index": torch.tensor(index), "flip": torch.tensor(flip), "mask": mask}
        img = load_face(self.files[index], self.resolution)
        image = torch.from_numpy((img[:, ::-1] if flip else img).copy()).permute(2, 0, 1).float().div(127.5).sub(1)
        item = {"image": image, "mask": mask}
        if self.guidance is not None:
            rng_guidance = np.random.default_rng([sample_seed, 1])
            item.update(self.guidance(img, mask[0].numpy(), rng_guidance, self.keys[index], flip))
        return item


def preload_faces(files: list[Path], resolution: int, device: torch.device, threads: int = 8) -> torch.Tensor:
    """Decode every face once into a uint8 ``(N, 3, res, res)`` tensor on ``device`` (15k x 256^2 x 3 < 3 GiB),
    so a GPU never waits for JPEG decoding."""
    from concurrent.futures import ThreadPoolExecutor

    out = torch.empty((len(files), 3, resolution, resolution), dtype=torch.uint8, device=device)
    chunk = 512
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for start in range(0, len(files), chunk):
            arrays = list(pool.map(lambda p: load_face(p, resolution), files[start:start + chunk]))
            out[start:start + len(arrays)] = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(device)
    return out


def assemble(images: torch.Tensor, item: dict) -> dict:
    """A training batch from preloaded uint8 images and a ``decode=False`` batch of indices, flips and masks."""
    img = images[item["index"].to(images.device)].float().div(127.5).sub(1)
    flip = item["flip"].to(images.device).view(-1, 1, 1, 1)
    return {"image": torch.where(flip, img.flip(-1), img), "mask": item["mask"].to(images.device)}


class ResumableSampler(Sampler):
    """Endless stream of ``(index, sample_seed)``: epoch ``e`` is a permutation seeded by ``(seed, e)``;
    position ``p`` of the stream has seed ``(seed, p)``. Start at ``start`` (= step * global batch) to resume;
    with several processes, rank ``r`` of ``world`` takes positions ``r, r + world, ...``."""

    def __init__(self, n: int, seed: int = 0, start: int = 0, rank: int = 0, world: int = 1):
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world

    def __iter__(self):
        position = self.start + self.rank
        epoch, perm = -1, None
        while True:
            e = position // self.n
            if e != epoch:
                epoch, perm = e, np.random.default_rng([self.seed, e]).permutation(self.n)
            yield int(perm[position % self.n]), int(np.random.SeedSequence([self.seed, position]).generate_state(1)[0])
            position += self.world

    def __len__(self) -> int:  # endless; DataLoader only needs this for progress estimates
        return 2 ** 31
