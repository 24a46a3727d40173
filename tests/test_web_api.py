"""The HTTP API in-process (TestClient / httpx ASGI transport): happy paths, every bad input, model handling,
serialised inference, flat memory, the load test and the ``serve`` command. No weights needed: the tiny
random-weights DeepFill v2 and the classical ``telea`` stand in."""
from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'facefill[web]'")
import httpx  # noqa: E402

with warnings.catch_warnings():  # starlette suggests httpx2; httpx is what FastAPI's docs use
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

import facefill  # noqa: E402
from facefill.inpainter import Inpainter  # noqa: E402
from facefill.web.server import ServerConfig, create_app  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

W, H = 64, 48


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def face(w: int = W, h: int = H, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h) + 64], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def hole(w: int = W, h: int = H) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4:h // 2, w // 4:w // 2] = 255
    return m


def files(image=None, mask=None, **extra):
    out = {"image": ("face.png", png(face()) if image is None else image, "image/png"),
           "mask": ("mask.png", png(hole()) if mask is None else mask, "image/png")}
    out.update({k: v for k, v in (("image", image), ("mask", mask)) if isinstance(v, tuple)})
    for key, value in extra.items():
        out[key] = value if isinstance(value, tuple) else (f"{key}.png", value, "image/png")
    return out


def decode(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


class Recorder(Inpainter):
    """Paints the hole green; records the guidance it got and how many calls ever overlapped."""

    inputs = ("image", "mask", "sketch", "color")

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls: list[dict] = []
        self.active = 0
        self.max_active = 0
        self._count = threading.Lock()

    def inpaint_array(self, rgb, hole, **guidance):
        with self._count:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            self.calls.append(guidance)
            out = rgb.copy()
            out[hole] = (0, 255, 0)
            return out
        finally:
            with self._count:
                self.active -= 1


class Broken(Inpainter):
    """Fails on every call, as a model bug would."""

    def inpaint_array(self, rgb, hole, **guidance):
        raise RuntimeError("boom")


class Gate(Inpainter):
    """Blocks inside the model until released (to hold a request in flight)."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def inpaint_array(self, rgb, hole, **guidance):
        self.entered.set()
        self.release.wait(30)
        return 255 - rgb


@pytest.fixture(scope="module")
def tiny():
    import torch

    torch.manual_seed(0)
    return facefill.create_model("deepfill_v2_tiny")


@pytest.fixture(scope="module")
def client(tiny):
    app = create_app(models={"deepfill_v2_tiny": tiny, "broken": Broken()}, default="deepfill_v2_tiny",
                     names=["telea", "navier_stokes", "deepfill_v2_tiny"],
                     config=ServerConfig(max_upload_bytes=200_000, max_pixels=100_000))
    with TestClient(app) as c:
        yield c


def ok_request(client, model="telea"):
    r = client.post("/api/v1/inpaint", files=files(), data={"model": model})
    assert r.status_code == 200, r.text
    return r


# ---------------------------------------------------------------------------------------------- happy paths


def test_health(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and "deepfill_v2_tiny" in body["models_loaded"] and body["pending"] == 0
    assert body["rss_mib"] is None or body["rss_mib"] > 10


def test_models_lists_inputs_read_from_the_models(client):
    body = client.get("/api/v1/models").json()
    assert body["default"] == "deepfill_v2_tiny"
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"telea", "navier_stokes", "deepfill_v2_tiny", "broken"}
    tiny = by_name["deepfill_v2_tiny"]
    assert tiny["loaded"] and tiny["available"] and tiny["default"] and tiny["inputs"] == ["image", "mask"]
    assert not tiny["has_weights"]  # registered, never trained: usable here only because it was injected
    assert by_name["telea"]["has_weights"] and by_name["telea"]["available"]
    assert by_name["telea"]["description"].startswith("Telea")


@pytest.mark.parametrize("model", ["telea", "deepfill_v2_tiny"])
def test_inpaint_returns_png_changed_inside_the_hole_only(client, model):
    r = client.post("/api/v1/inpaint", files=files(), data={"model": model})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-facefill-model"] == model
    out, src, m = decode(r.content), face(), hole() > 0
    assert out.shape == src.shape
    assert np.array_equal(out[~m], src[~m])
    assert not np.array_equal(out[m], src[m])


def test_default_model_when_none_is_named(client):
    r = client.post("/api/v1/inpaint", files=files())
    assert r.status_code == 200 and r.headers["x-facefill-model"] == "deepfill_v2_tiny"


def test_rgba_keeps_alpha_and_soft_mask_threshold(client):
    rgba = np.dstack([face(), np.full((H, W), 200, np.uint8)])
    soft = (hole() // 255 * 100).astype(np.uint8)  # 100 < 128: no hole at the default threshold
    r = client.post("/api/v1/inpaint", files=files(image=png(rgba), mask=png(soft)), data={"model": "telea"})
    assert r.status_code == 200 and "empty" in r.headers["x-facefill-warning"]
    assert np.array_equal(decode(r.content), rgba)
    r = client.post("/api/v1/inpaint", files=files(image=png(rgba), mask=png(soft)),
                    data={"model": "telea", "threshold": "0.3"})
    out = decode(r.content)
    assert r.status_code == 200 and out.shape == (H, W, 4) and (out[..., 3] == 200).all()
    assert not np.array_equal(out, rgba)


def test_resize_mask_accepts_a_mask_of_another_size(client):
    small = np.asarray(Image.fromarray(hole()).resize((W // 2, H // 2), Image.NEAREST))
    r = client.post("/api/v1/inpaint", files=files(mask=png(small)), data={"model": "telea", "resize_mask": "true"})
    assert r.status_code == 200, r.text
    assert decode(r.content).shape == (H, W, 3)


def test_exif_orientation_is_applied_to_uploads(client):
    stored = Image.fromarray(face(40, 20))  # 40 wide, 20 high as stored; EXIF 6 = shown rotated, 20 x 40
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", exif=exif, quality=95)
    m = np.zeros((40, 20), np.uint8)
    m[5:15, 5:15] = 255
    r = client.post("/api/v1/inpaint", files=files(image=buf.getvalue(), mask=png(m)), data={"model": "telea"})
    assert r.status_code == 200, r.text
    assert decode(r.content).shape == (40, 20, 3)
    r = client.post("/api/v1/inpaint", files=files(image=buf.getvalue(), mask=png(m.T.copy())),
                    data={"model": "telea"})
    assert r.status_code == 422 and "20x40" in r.json()["error"]


def test_octet_stream_uploads_are_decoded_and_checked(client):
    f = files()
    f["image"] = ("face.bin", png(face()), "application/octet-stream")
    assert client.post("/api/v1/inpaint", files=f, data={"model": "telea"}).status_code == 200


# ---------------------------------------------------------------------------------------------- guidance


def test_guidance_is_read_per_the_models_inputs():
    rec = Recorder()
    app = create_app(models={"rec": rec}, names=[])
    with TestClient(app) as c:
        assert c.get("/api/v1/models").json()["models"][0]["inputs"] == ["image", "mask", "sketch", "color"]
        sketch = np.zeros((H, W), np.uint8)
        sketch[20, :] = 255
        color = np.zeros((H, W, 3), np.uint8)
        color[10:20, 10:20] = (255, 0, 0)
        r = c.post("/api/v1/inpaint", files=files(sketch=png(sketch), colour=png(color)))  # British spelling too
        assert r.status_code == 200, r.text
    got = rec.calls[-1]
    assert set(got) == {"sketch", "color"}
    assert got["sketch"].shape == (H, W) and got["sketch"].dtype == np.float32
    assert got["sketch"][20].min() == pytest.approx(1.0) and got["sketch"][0].max() == 0.0
    assert got["color"].shape == (H, W, 3) and got["color"][15, 15].tolist() == [1.0, 0.0, 0.0]
    assert got["color"][0, 0].tolist() == [0.0, 0.0, 0.0]


def test_guidance_size_mismatch_and_resize():
    rec = Recorder()
    app = create_app(models={"rec": rec}, names=[])
    small = np.zeros((H // 2, W // 2), np.uint8)
    small[10, 4:28] = 255
    with TestClient(app) as c:
        r = c.post("/api/v1/inpaint", files=files(sketch=png(small)))
        error = r.json()["error"]
        assert r.status_code == 422 and "sketch is 32x24 but the image is 64x48" in error
        assert "resize_mask=true" in error and "resize_mask=True" not in error  # the API's wording
        r = c.post("/api/v1/inpaint", files=files(color=png(np.zeros((H // 2, W // 2, 3), np.uint8))))
        assert r.status_code == 422 and "colour strokes is 32x24" in r.json()["error"]
        r = c.post("/api/v1/inpaint", files=files(sketch=png(small)), data={"resize_mask": "1"})
        assert r.status_code == 200, r.text
    sketch = rec.calls[-1]["sketch"]  # enlarged (nearest neighbour), not rejected
    assert sketch.shape == (H, W) and sketch[20:22, 8:56].min() == 1 and sketch.sum() == 2 * 48


def test_web_and_python_read_a_transparent_layer_the_same_way():
    """The editor's form: strokes on a transparent layer. The upload goes to ``model.inpaint`` like a PIL image
    given in Python, so both give the same pixels (dark strokes count by their alpha, not their darkness)."""
    import torch

    torch.manual_seed(0)
    model = facefill.create_model("scfegan_tiny")
    sketch = np.zeros((H, W, 4), np.uint8)
    sketch[16, 12:34] = (20, 20, 20, 255)  # dark lines on a transparent layer
    color = np.zeros((H, W, 4), np.uint8)
    color[14:22, 18:30] = (200, 120, 90, 255)
    color[13, 18:30] = (0, 255, 0, 0)  # transparent: unpainted, whatever its colour
    layers = {"sketch": Image.fromarray(sketch, "RGBA"), "color": Image.fromarray(color, "RGBA")}
    app = create_app(models={"sc": model}, names=[])
    with TestClient(app) as c:
        r = c.post("/api/v1/inpaint", files=files(sketch=png(sketch), colour=png(color)), data={"align": "off"})
        assert r.status_code == 200, r.text
        plain = c.post("/api/v1/inpaint", files=files(), data={"align": "off"})
    python = np.asarray(model.inpaint(Image.fromarray(face()), hole(), align="off", **layers))
    assert np.array_equal(decode(r.content), python)
    assert not np.array_equal(decode(plain.content), python)  # the drawings reached the model


def test_sketch_model_takes_a_sketch_but_not_a_colour():
    import torch

    torch.manual_seed(0)
    model = facefill.create_model("deepfill_v2_tiny", sketch=True)
    app = create_app(models={"sketchy": model}, names=[])
    sketch = np.zeros((H, W), np.uint8)
    sketch[:, 30] = 255
    with TestClient(app) as c:
        assert c.get("/api/v1/models").json()["models"][0]["inputs"] == ["image", "mask", "sketch"]
        r = c.post("/api/v1/inpaint", files=files(sketch=png(sketch)))
        assert r.status_code == 200, r.text
        assert c.post("/api/v1/inpaint", files=files()).status_code == 200  # no sketch drawn: no lines
        r = c.post("/api/v1/inpaint", files=files(color=png(face())))
        assert r.status_code == 400 and "does not take 'color'" in r.json()["error"]


# ---------------------------------------------------------------------------------------------- bad input


def _bomb_png(w: int, h: int) -> bytes:
    """A valid 1x1 PNG whose header claims ``w`` x ``h`` (a decompression bomb's header)."""
    data = bytearray(png(np.zeros((1, 1, 3), np.uint8)))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", w, h)
    crc = zlib.crc32(bytes(data[12:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def _truncated_png() -> bytes:
    data = png(face())
    return data[:len(data) // 2]


BAD = {
    # name: (request kwargs, status, words in the error)
    "json body": (dict(json={"image": "x"}), 415, "multipart/form-data"),
    "missing mask": (dict(files={"image": ("f.png", png(face()), "image/png")}), 422, "missing file field 'mask'"),
    "missing image": (dict(files={"mask": ("m.png", png(hole()), "image/png")}), 422, "missing file field 'image'"),
    "mask as text": (dict(files={"image": ("f.png", png(face()), "image/png")}, data={"mask": "abc"}), 422,
                     "must be a file upload"),
    "text content type": (dict(files=files(image=("f.txt", b"hello", "text/plain"))), 415, "send an image"),
    "not an image": (dict(files=files(image=b"this is not a picture")), 415, "not an image"),
    "empty file": (dict(files=files(image=b"")), 422, "empty file"),
    "truncated png": (dict(files=files(image=_truncated_png())), 422, "truncated or corrupt"),
    "size mismatch": (dict(files=files(mask=png(hole(W, H - 1)))), 422, "mask is 64x47 but the image is 64x48"),
    "too many pixels": (dict(files=files(image=png(face(400, 300)), mask=png(hole(400, 300)))), 413,
                        "over this server's limit"),
    "big header": (dict(files=files(image=_bomb_png(3000, 3000))), 413, "3000x3000 = 9,000,000 pixels"),
    "bomb header": (dict(files=files(image=_bomb_png(30000, 30000))), 413, "more pixels than can be decoded"),
    "unknown model": (dict(files=files(), data={"model": "nope"}), 400, "unknown model 'nope'; available:"),
    "guidance not taken": (dict(files=files(sketch=png(hole())), data={"model": "telea"}), 400,
                           "does not take 'sketch'"),
    "unknown field": (dict(files=files(), data={"modle": "telea"}), 400, "unknown field 'modle'"),
    "bad threshold": (dict(files=files(), data={"threshold": "abc"}), 422, "must be a number"),
    "threshold range": (dict(files=files(), data={"threshold": "1.5"}), 422, "threshold must be in (0, 1]"),
    "bad bool": (dict(files=files(), data={"resize_mask": "maybe"}), 422, "true or false"),
    "body too large": (dict(files=files(image=b"\x89PNG" + bytes(300_000))), 413, "over this server's limit"),
    "model bug": (dict(files=files(), data={"model": "broken"}), 500, "failed: RuntimeError: boom"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_json_error_and_the_server_keeps_serving(client, case):
    kwargs, status, words = BAD[case]
    r = client.post("/api/v1/inpaint", **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert words in r.json()["error"]
    assert "/tmp" not in r.json()["error"] and "facefill-upload" not in r.json()["error"]
    ok_request(client)


def test_streamed_body_over_the_limit_is_refused_while_reading(client):
    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n\r\n"
        for _ in range(100):
            yield bytes(10_000)

    r = client.post("/api/v1/inpaint", content=body(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    ok_request(client)


def test_oversized_upload_gets_the_413_message_over_a_real_connection():
    """A client that sends its whole body before reading the answer (a browser's fetch, requests, http.client)
    gets the 413 message, not a connection reset from a server that answered and closed mid-upload."""
    import http.client
    import json

    from facefill.web.server import running

    app = create_app(models={"rec": Recorder()}, names=[], config=ServerConfig(max_upload_bytes=200_000))
    body = (b'--b\r\nContent-Disposition: form-data; name="image"; filename="f.png"\r\nContent-Type: image/png'
            b"\r\n\r\n" + bytes(20_000_000) + b"\r\n--b--\r\n")
    with running(app) as url:
        host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
        for chunked in (False, True):  # Content-Length, then a streamed (chunked) upload
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                conn.request("POST", "/api/v1/inpaint", encode_chunked=chunked,
                             body=(body[i:i + 2**20] for i in range(0, len(body), 2**20)) if chunked else body,
                             headers={"Content-Type": "multipart/form-data; boundary=b"})
                r = conn.getresponse()
                assert r.status == 413 and "limit" in json.loads(r.read())["error"]
            finally:
                conn.close()


def test_a_result_can_be_sent_back_for_the_next_edit():
    """The default body limit follows the pixel limit: the server's own answer for the largest image it accepts,
    a noisy RGBA PNG that barely compresses, fits in the next request (the editor's chained edits)."""
    assert ServerConfig().body_limit >= 4 * ServerConfig().max_pixels  # a 40 Mpx RGBA result, ~160 MB
    config = ServerConfig(max_pixels=300 * 300)
    assert config.body_limit == 4 * 300 * 300 + 16 * 2**20
    app = create_app(models={}, names=["telea"], default="telea", config=config)
    photo = np.random.default_rng(0).integers(0, 256, (300, 300, 4), dtype=np.uint8)
    with TestClient(app) as c:
        first = c.post("/api/v1/inpaint", files=files(png(photo), png(hole(300, 300))), data={"model": "telea"})
        assert first.status_code == 200, first.text
        assert len(first.content) > 3.9 * 300 * 300  # it really is incompressible
        again = c.post("/api/v1/inpaint", files=files(first.content, png(hole(300, 300))), data={"model": "telea"})
        assert again.status_code == 200, again.text
    assert ServerConfig(max_upload_bytes=1000).body_limit == 1000  # an explicit limit is kept


def test_unknown_route_and_method_are_json_errors(client):
    assert client.get("/api/v1/nope").json() == {"error": "Not Found"}
    assert client.get("/api/v1/inpaint").status_code == 405


# ---------------------------------------------------------------------------------------------- models


def test_models_load_lazily_once_and_are_kept():
    calls = []

    def loader(name):
        calls.append(name)
        return facefill.create_model(name)

    app = create_app(loader=loader, names=["telea", "navier_stokes"], default="telea")
    with TestClient(app) as c:
        assert not any(m["loaded"] for m in c.get("/api/v1/models").json()["models"])
        for _ in range(3):
            ok_request(c)
        assert calls == ["telea"]
        loaded = {m["name"]: m["loaded"] for m in c.get("/api/v1/models").json()["models"]}
        assert loaded == {"telea": True, "navier_stokes": False}
        assert c.get("/api/v1/health").json()["models_loaded"] == ["telea"]


def test_model_without_weights_is_503_with_the_reason():
    # deepfill_v2_tiny is registered but never trained: the real loader (facefill.load) finds no weights
    app = create_app(names=["deepfill_v2_tiny", "telea"], default="telea")
    with TestClient(app) as c:
        entry = {m["name"]: m for m in c.get("/api/v1/models").json()["models"]}["deepfill_v2_tiny"]
        assert not entry["available"] and entry["inputs"] == ["image", "mask"]  # read without weights
        r = c.post("/api/v1/inpaint", files=files(), data={"model": "deepfill_v2_tiny"})
        assert r.status_code == 503
        assert "model 'deepfill_v2_tiny' has no usable weights" in r.json()["error"]
        ok_request(c)


def test_create_app_refuses_a_default_it_does_not_offer():
    with pytest.raises(ValueError, match="default model 'nope' is not offered"):
        create_app(names=["telea"], default="nope")


async def _concurrently(app, n: int, **form):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        return await asyncio.gather(*[c.post("/api/v1/inpaint", files=files(), data=form) for _ in range(n)])


def test_inference_is_serialised_per_model():
    rec = Recorder(delay=0.05)
    app = create_app(models={"rec": rec}, names=[])
    responses = asyncio.run(_concurrently(app, 6))
    assert [r.status_code for r in responses] == [200] * 6
    assert len(rec.calls) == 6 and rec.max_active == 1


def test_requests_beyond_max_pending_get_503_and_retry_after():
    gate = Gate()
    app = create_app(models={"gate": gate}, names=[], config=ServerConfig(max_pending=1))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
            first = asyncio.create_task(c.post("/api/v1/inpaint", files=files()))
            assert await asyncio.to_thread(gate.entered.wait, 30)
            second = await c.post("/api/v1/inpaint", files=files())
            health = await c.get("/api/v1/health")  # the event loop is free while the model runs
            gate.release.set()
            return await first, second, health

    first, second, health = asyncio.run(scenario())
    assert first.status_code == 200
    assert second.status_code == 503 and second.headers["retry-after"] == "1" and "busy" in second.json()["error"]
    assert health.json()["pending"] == 1


def test_memory_stays_flat_over_200_requests(client):
    rss = lambda: client.get("/api/v1/health").json()["rss_mib"]  # noqa: E731
    if rss() is None:
        pytest.skip("resident memory is read from /proc, which this platform lacks")
    for _ in range(20):  # warm-up: allocator pools, lazily built tables
        ok_request(client)
    before = rss()
    for _ in range(200):
        ok_request(client)
    growth = rss() - before
    assert growth < 25, f"RSS grew by {growth:.1f} MiB over 200 requests"


# ---------------------------------------------------------------------------------------------- pages


def test_editor_and_docs_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "/static/editor.js" in r.text
    for path in ("/static/editor.js", "/static/editor.css"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"  # revalidated after an upgrade
        assert client.get(path, headers={"if-none-match": r.headers["etag"]}).status_code == 304
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    form = spec["paths"]["/api/v1/inpaint"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["image", "mask"] and {"sketch", "color", "model"} <= set(form["properties"])
    assert {"/api/v1/models", "/api/v1/health"} <= set(spec["paths"])


# ---------------------------------------------------------------------------------------------- load test, CLI


def test_loadtest_runs_bounded_and_checks_every_response(capsys):
    from facefill.web import loadtest

    assert loadtest.main(["--clients", "2", "--requests", "3", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "requests 6, correct 6, wrong or failed 0" in out and "p50" in out and "throughput" in out


def test_loadtest_check_catches_wrong_responses():
    from facefill.web.loadtest import check

    src, m = face(), hole() > 0
    good = src.copy()
    good[m] = 0

    class R:
        def __init__(self, arr, status=200):
            self.status_code, self.headers, self.text = status, {"content-type": "image/png"}, "x"
            self.content = png(arr)

    assert check(R(good), src, m) is None
    assert "outside the hole" in check(R(np.zeros_like(src)), src, m)
    assert "nothing inside" in check(R(src), src, m)
    assert "status 500" in check(R(src, 500), src, m)


def test_serve_command_binds_loopback_by_default(monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from facefill.cli import app

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda web_app, host, port, **kw: seen.update(app=web_app, host=host,
                                                                                        port=port))
    result = CliRunner().invoke(app, ["serve", "--model", "telea", "--port", "9123"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 9123 and seen["app"].state.default == "telea"
    result = CliRunner().invoke(app, ["serve", "--model", "telea", "--host", "0.0.0.0"])
    assert result.exit_code == 0 and "anyone who can reach this machine" in result.output
    result = CliRunner().invoke(app, ["serve", "--model", "nope"])
    assert result.exit_code == 2 and "unknown model 'nope'" in result.output


def test_align_field_validated_and_reported():
    """align=auto|face|off reaches the model; other values are a 422 JSON error."""
    import io

    import numpy as np
    from fastapi.testclient import TestClient
    from PIL import Image

    import facefill
    from facefill.web.server import create_app

    client = TestClient(create_app(models={"telea": facefill.load("telea")}, default="telea"))
    img = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(img, "PNG")
    m = np.zeros((32, 32), np.uint8)
    m[8:16, 8:16] = 255
    mask = io.BytesIO()
    Image.fromarray(m).save(mask, "PNG")
    files = lambda: {"image": ("i.png", img.getvalue(), "image/png"), "mask": ("m.png", mask.getvalue(), "image/png")}
    bad = client.post("/api/v1/inpaint", files=files(), data={"align": "sideways"})
    assert bad.status_code == 422 and "align must be one of" in bad.json()["error"]
    ok = client.post("/api/v1/inpaint", files=files(), data={"align": "off"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
