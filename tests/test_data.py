"""Dataset and sampler: determinism per seed, independence from workers, exact resume offsets."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from facefill.data.faces import FaceFolder, ResumableSampler, list_images, load_face


def test_item_contract(face_folder):
    ds = FaceFolder(face_folder, resolution=64)
    item = ds[(0, 123)]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (1, 64, 64)
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    assert set(torch.unique(item["mask"]).tolist()) <= {0.0, 1.0} and item["mask"].sum() > 0


def test_same_seed_same_sample_and_flips_happen(face_folder):
    ds = FaceFolder(face_folder, resolution=64)
    a, b = ds[(1, 7)], ds[(1, 7)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    orig = torch.from_numpy(load_face(ds.files[1], 64).copy()).permute(2, 0, 1).float().div(127.5).sub(1)
    plain = [torch.equal(ds[(1, s)]["image"], orig) for s in range(20)]
    flipped = [torch.equal(ds[(1, s)]["image"], orig.flip(-1)) for s in range(20)]
    assert all(p or f for p, f in zip(plain, flipped))
    assert any(plain) and any(flipped)


def test_sampler_resume_and_ranks():
    full = list(itertools.islice(iter(ResumableSampler(10, seed=3)), 25))
    resumed = list(itertools.islice(iter(ResumableSampler(10, seed=3, start=12)), 13))
    assert resumed == full[12:]
    epoch0 = sorted(i for i, _ in full[:10])
    assert epoch0 == list(range(10))  # an epoch is a permutation
    r0 = list(itertools.islice(iter(ResumableSampler(10, seed=3, rank=0, world=2)), 5))
    r1 = list(itertools.islice(iter(ResumableSampler(10, seed=3, rank=1, world=2)), 5))
    assert r0 == full[0:10:2] and r1 == full[1:10:2]


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_independent_of_workers(face_folder, workers):
    ds = FaceFolder(face_folder, resolution=32)
    ref = [ds[item] for item in itertools.islice(iter(ResumableSampler(len(ds), seed=1)), 4)]
    loader = DataLoader(ds, batch_size=2, sampler=ResumableSampler(len(ds), seed=1), num_workers=workers)
    batches = list(itertools.islice(iter(loader), 2))
    got = torch.cat([b["mask"] for b in batches])
    assert torch.equal(got, torch.stack([r["mask"] for r in ref]))


def test_hidden_files_and_folders_named_like_images_are_not_faces(face_folder):
    """macOS leaves AppleDouble companions (``._NAME.jpg``, a resource fork, not an image) next to copied files;
    they and a folder named ``x.jpg`` used to be listed as faces and crashed the loader when drawn."""
    names = sorted(p.name for p in list_images(face_folder))
    (face_folder / "._00.png").write_bytes(b"\x00\x05\x16\x07" + bytes(4092))
    (face_folder / ".hidden.jpg").write_bytes(b"not an image")
    (face_folder / "folder.jpg").mkdir()
    (face_folder / "README.md").write_text("faces")
    (face_folder / ".DS_Store").write_bytes(bytes(64))
    ds = FaceFolder(face_folder, resolution=32)
    assert [p.name for p in ds.files] == names
    assert all(ds[(i, 0)]["image"].shape == (3, 32, 32) for i in range(len(ds)))
