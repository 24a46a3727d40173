"""The editor end to end in a real browser: headless Debian Chromium driven by Playwright's Python package
(``executable_path``; Playwright's own browser download is not used), against ``facefill serve``'s app on
loopback with the tiny random-weights DeepFill v2 and ``telea``.

Skipped, with the reason, when Chromium or Playwright is missing (``apt-get install chromium`` and
``pip install playwright``). ``FACEFILL_SCREENSHOT=docs/editor.png`` also writes the README's screenshot.
"""
from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = os.environ.get("FACEFILL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no Chromium installed (Debian: apt-get install chromium); the browser end-to-end test needs it",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed "
                                                  "(pip install playwright; no browser download needed)")
pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'facefill[web]'")

from playwright.sync_api import sync_playwright  # noqa: E402

import facefill  # noqa: E402
from facefill.inpainter import Inpainter  # noqa: E402
from facefill.web.server import create_app, running  # noqa: E402

# a closed network: no background connections, no updates, no sync; Playwright adds a fresh --user-data-dir
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000


class Broken(Inpainter):
    """Fails on every call, as a model bug would."""

    def inpaint_array(self, rgb, hole, **guidance):
        raise RuntimeError("boom")


class Slow(Inpainter):
    """Takes a second, so the busy state can be seen."""

    def inpaint_array(self, rgb, hole, **guidance):
        time.sleep(1.0)
        return 255 - rgb


class Recorder(Inpainter):
    """Takes sketch and colour; paints the hole grey and records which guidance arrived."""

    inputs = ("image", "mask", "sketch", "color")

    def __init__(self):
        self.calls = []

    def inpaint_array(self, rgb, hole, **guidance):
        self.calls.append({k: float(v.max()) for k, v in guidance.items()})
        out = rgb.copy()
        out[hole] = 128
        return out


@pytest.fixture(scope="module")
def recorder():
    return Recorder()


@pytest.fixture(scope="module")
def server(recorder):
    import torch

    torch.manual_seed(0)
    models = {"deepfill_v2_tiny": facefill.create_model("deepfill_v2_tiny"), "telea": facefill.create_model("telea"),
              "broken": Broken(), "guided": recorder, "slow": Slow()}
    with running(create_app(models=models, default="deepfill_v2_tiny", names=[])) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(server)
    pg.wait_for_selector("body[data-models=loaded]")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def portrait_file(tmp_path_factory) -> Path:
    from facefill.demo import demo_image

    path = tmp_path_factory.mktemp("browser") / "astronaut.png"
    demo_image().save(path)
    return path


def open_image(page, path: Path) -> None:
    page.set_input_files("#open-file", str(path))
    page.wait_for_selector("body[data-image=loaded]")
    page.wait_for_function("document.getElementById('photo').complete")


def draw(page, points, image_width: int, size: int = 24) -> float:
    """Drag the mouse through ``points`` (image pixels); returns the stroke width in image pixels."""
    page.fill("#brush-size", str(size))
    box = page.locator("#photo").bounding_box()
    scale = box["width"] / image_width  # screen px per image px
    screen = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in points]
    page.mouse.move(*screen[0])
    page.mouse.down()
    for p in screen[1:]:
        page.mouse.move(*p, steps=6)
    page.mouse.up()
    return size / scale


def download(page, selector: str) -> np.ndarray:
    with page.expect_download() as info:
        page.click(selector)
    return np.asarray(Image.open(io.BytesIO(Path(info.value.path()).read_bytes())))


def download_mask(page) -> np.ndarray:
    """The editor's "Save mask" PNG as a bool array (True = hole)."""
    with page.expect_download() as info:
        page.click("#mask-download")
    return np.asarray(Image.open(Path(info.value.path())).convert("L")) > 127


def distance_to_polyline(shape, points) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32) + 0.5
    best = np.full(shape, np.inf, np.float32)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        best = np.minimum(best, np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy)))
    return best


def run_and_wait(page, count: int) -> None:
    page.click("#run")
    page.wait_for_selector(f"body[data-result='{count}']")
    page.wait_for_function("!document.body.dataset.busy")


EYES = [(186, 104), (206, 98), (226, 101), (246, 98), (266, 104)]


def test_draw_run_result_differs_inside_the_stroke_only(page, portrait_file):
    src = np.asarray(Image.open(portrait_file).convert("RGB"))
    open_image(page, portrait_file)
    assert page.inner_text("#info").startswith("astronaut.png — 512×512")
    assert page.input_value("#model") == "deepfill_v2_tiny"
    width = draw(page, EYES, src.shape[1])
    dist = distance_to_polyline(src.shape[:2], EYES)

    mask = download_mask(page)
    assert mask.shape == src.shape[:2]
    assert mask[dist <= width / 2 - 2].all(), "the stroke's core is not in the mask"
    assert not mask[dist > width / 2 + 2].any(), "the mask reaches beyond the stroke"
    if os.environ.get("FACEFILL_SCREENSHOT"):
        box = page.locator("#photo").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.3)  # show the brush
        page.screenshot(path=os.environ["FACEFILL_SCREENSHOT"])

    run_and_wait(page, 1)
    assert page.get_attribute("#photo", "data-kind") == "result"
    assert page.inner_text("#status").startswith("Done with deepfill_v2_tiny")
    result = download(page, "#download")
    assert result.shape == src.shape
    changed = (result != src).any(axis=2)
    assert changed.any() and changed[mask].mean() > 0.5, "the result does not differ inside the stroke"
    assert not changed[~mask].any(), "the result differs outside the stroke"

    # before/after toggle, then undo/redo of the run from the keyboard
    page.click("#compare")
    assert page.get_attribute("#photo", "data-kind") == "original" and page.inner_text("#compare") == "After"
    page.click("#compare")
    assert page.get_attribute("#photo", "data-kind") == "result"
    page.keyboard.press("Control+z")
    assert page.get_attribute("#photo", "data-kind") == "original"
    assert download_mask(page).any(), "undoing the run did not bring the stroke back"
    page.keyboard.press("Control+Shift+z")
    assert page.get_attribute("#photo", "data-kind") == "result"

    # keep editing on the result: a second stroke and run change only that stroke
    mouth = [(206, 150), (224, 154), (244, 148)]
    draw(page, mouth, src.shape[1], size=16)
    run_and_wait(page, 2)
    second = download(page, "#download")
    again = (second != result).any(axis=2)
    assert again.any() and not again[distance_to_polyline(src.shape[:2], mouth) > 12].any()


def test_errors_are_shown_in_words_and_the_editor_recovers(page, portrait_file):
    open_image(page, portrait_file)
    page.click("#run")
    assert "The mask is empty" in page.inner_text("#status")
    assert page.get_attribute("#status", "class") == "error"
    page.select_option("#model", "broken")
    draw(page, EYES, 512)
    page.click("#run")
    page.wait_for_function("document.getElementById('status').textContent.includes('Inpainting failed')")
    assert "model 'broken' failed: RuntimeError: boom" in page.inner_text("#status")
    assert page.is_enabled("#run") and page.is_hidden("#busy")
    page.select_option("#model", "telea")
    run_and_wait(page, 1)
    assert page.inner_text("#status").startswith("Done with telea")


def test_busy_state_is_visible_while_running(page, portrait_file):
    open_image(page, portrait_file)
    page.select_option("#model", "slow")
    draw(page, EYES, 512)
    page.click("#run")
    page.wait_for_selector("#busy:not([hidden])")
    assert page.is_disabled("#run") and "Running slow" in page.inner_text("#busy")
    page.wait_for_selector("body[data-result='1']")
    page.wait_for_selector("#busy[hidden]", state="attached")


def test_keyboard_brush_size_pan_and_undo(page, portrait_file):
    open_image(page, portrait_file)
    page.fill("#brush-size", "30")
    page.keyboard.press("]")
    assert int(page.input_value("#brush-size")) == 36
    page.keyboard.press("[")
    page.keyboard.press("[")
    assert int(page.input_value("#brush-size")) < 30
    history = "window.facefillEditor.state.history.length"
    before = page.evaluate("getComputedStyle(document.getElementById('stage')).transform")
    box = page.locator("#photo").bounding_box()
    page.keyboard.down(" ")
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + 140, steps=5)
    page.mouse.up()
    page.keyboard.up(" ")
    assert page.evaluate("getComputedStyle(document.getElementById('stage')).transform") != before
    assert page.evaluate(history) == 0, "space-drag drew instead of panning"
    shifted = page.locator("#photo").bounding_box()
    assert abs(shifted["x"] - box["x"] - 60) < 2 and abs(shifted["y"] - box["y"] - 40) < 2
    draw(page, EYES, 512)
    assert page.evaluate(history) == 1
    page.keyboard.press("Control+z")
    assert not download_mask(page).any()
    page.keyboard.press("Control+Shift+z")
    assert download_mask(page).any()
    page.click("#clear")
    assert not download_mask(page).any()


def test_tools_follow_the_models_inputs_and_guidance_is_sent(page, portrait_file, recorder):
    open_image(page, portrait_file)
    page.select_option("#model", "telea")
    assert page.is_hidden("[data-tool=sketch]") and page.is_hidden("[data-tool=color]")
    page.select_option("#model", "guided")
    assert page.is_visible("[data-tool=sketch]") and page.is_visible("[data-tool=color]")
    draw(page, EYES, 512)
    page.click("[data-tool=sketch]")
    draw(page, [(200, 100), (250, 100)], 512, size=4)
    page.click("[data-tool=color]")
    draw(page, [(210, 104), (240, 104)], 512, size=6)
    run_and_wait(page, 1)
    got = recorder.calls[-1]
    assert set(got) == {"sketch", "color"} and got["sketch"] == 1.0 and got["color"] > 0.3


def test_mask_upload_and_a_large_photo_sent_at_full_resolution(page, tmp_path):
    big = np.asarray(Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8))
                     .resize((3000, 2000), Image.BICUBIC))
    Image.fromarray(big).save(tmp_path / "big.png", compress_level=1)
    m = np.zeros((2000, 3000), np.uint8)
    m[900:1100, 1400:1600] = 255
    Image.fromarray(m).save(tmp_path / "big-mask.png")
    open_image(page, tmp_path / "big.png")
    assert page.locator("#photo").bounding_box()["width"] < 1300  # shown scaled to the window
    page.set_input_files("#mask-file", str(tmp_path / "big-mask.png"))
    page.wait_for_function("document.getElementById('status').textContent.includes('Loaded the mask')")
    assert np.array_equal(download_mask(page), m > 0)
    page.select_option("#model", "telea")
    run_and_wait(page, 1)
    result = download(page, "#download")
    assert result.shape == big.shape  # full resolution came back
    changed = (result != big).any(axis=2)
    assert changed[m > 0].any() and not changed[m == 0].any()


def test_dropped_exif_rotated_photo_is_edited_as_shown(page, tmp_path):
    stored = np.asarray(Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 16, 3), np.uint8))
                        .resize((160, 120), Image.BICUBIC))  # stored 160 wide; EXIF 6: shown 120 wide, 160 high
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", exif=exif, quality=95)
    page.evaluate("""async (bytes) => {
        const file = new File([new Uint8Array(bytes)], "rotated.jpg", {type: "image/jpeg"});
        const dt = new DataTransfer();
        dt.items.add(file);
        document.getElementById("viewport").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }""", list(buf.getvalue()))
    page.wait_for_selector("body[data-image=loaded]")
    page.wait_for_function("document.getElementById('info').textContent.startsWith('rotated.jpg')")
    assert "120×160 px" in page.inner_text("#info")
    page.select_option("#model", "telea")
    draw(page, [(40, 60), (80, 100)], 120, size=20)
    run_and_wait(page, 1)
    assert download(page, "#download").shape == (160, 120, 3)
