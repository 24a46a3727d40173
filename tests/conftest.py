from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_folder(*parts: str) -> Path:
    """A folder under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared face data (../shared/data) is not beside this checkout")
    return path


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path_factory, monkeypatch):
    """Default caches (``facefill eval``'s score cache) go to a per-test folder, never to the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache_home")))


@pytest.fixture
def face_folder(tmp_path) -> Path:
    """Six synthetic 'faces' (smooth colour blobs), so training tests need no shared data."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "faces"
    folder.mkdir()
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    for i in range(6):
        c = rng.uniform(0, 1, (3, 3))
        img = np.stack([c[k, 0] + c[k, 1] * xx + c[k, 2] * yy for k in range(3)], -1)
        Image.fromarray(np.clip(img / img.max() * 255, 0, 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture
def tiny_weights(tmp_path) -> Path:
    """A weights folder of the tiny DeepFill v2 (random weights) for CLI / loading tests."""
    from facefill.pretrained import save_pretrained
    from facefill.registry import create_model

    torch.manual_seed(0)
    return save_pretrained(create_model("deepfill_v2_tiny"), tmp_path / "tiny_weights")


@pytest.fixture
def portrait() -> Image.Image:
    from facefill.demo import demo_image

    return demo_image()


class RecordingInpainter:
    """Factory for a NetworkInpainter 'model' that fills holes with the mean of the known pixels and records each
    window it is given as ``(image, mask)`` tensors in ``.calls`` (built lazily so conftest imports stay light)."""

    def __new__(cls, resolution: int = 64):
        from facefill.inpainter import NetworkInpainter

        class _Recorder(NetworkInpainter):
            def __init__(self):
                super().__init__()
                self.resolution = resolution
                self.config = {}
                self.w = torch.nn.Parameter(torch.zeros(1))
                self.calls = []

            def forward(self, image, mask):
                self.calls.append((image.clone(), mask.clone()))
                known = 1 - mask
                mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
                return {"output": mean.expand_as(image)}

        return _Recorder()


def picture_case(tmp_path: Path, name: str) -> tuple:
    """A tiny model (seed 0, eval mode), a random 90x100 image with a 30x30 hole, and both saved as PNGs with the
    model's weights folder, for the tests of the pictures ``facefill inpaint`` draws (--attention-map, --hog-map).
    Returns ``(model, image, hole, cli_args)``: the args run ``inpaint`` on the files with ``--align off``."""
    import numpy as np
    import torch

    from facefill.pretrained import save_pretrained
    from facefill.registry import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    image = np.random.default_rng(0).integers(0, 256, (90, 100, 3), dtype=np.uint8)
    hole = np.zeros((90, 100), bool)
    hole[30:60, 40:70] = True
    folder = save_pretrained(model, tmp_path / "w", dtype=torch.float32)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "m.png")
    args = ["inpaint", str(tmp_path / "a.png"), "-m", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png"),
            "--align", "off", "--model", str(folder)]
    return model, image, hole, args


def assert_same_training_state(run_a: Path, run_b: Path) -> tuple[dict, dict]:
    """Both runs' checkpoints hold bit-identical generator, discriminator and EMA weights; returns them."""
    a = torch.load(Path(run_a) / "checkpoint.pt", weights_only=False)
    b = torch.load(Path(run_b) / "checkpoint.pt", weights_only=False)
    for key in ("generator", "discriminator", "ema"):
        assert all(torch.equal(a[key][n], b[key][n]) for n in a[key]), key
    return a, b
