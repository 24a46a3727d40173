"""The README's editor screenshot: the web editor with the shipped deepfill_v2, the demo portrait, a stroke over
the eyes and the result shown. Needs the web extra, Playwright's Python package and Debian's chromium.

    python scripts/editor_screenshot.py -o docs/editor.png
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from facefill.demo import demo_image
from facefill.web.server import create_app, running

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
STROKE = [(186, 104), (206, 98), (226, 101), (246, 98), (266, 104)]  # across the eyes of the 512 px portrait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", type=Path, default=Path("docs/editor.png"))
    parser.add_argument("--model", default="deepfill_v2")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp, running(create_app(default=args.model)) as url, \
            sync_playwright() as p:
        portrait = Path(tmp) / "astronaut.png"
        demo_image().save(portrait)
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("body[data-models=loaded]")
        page.select_option("#model", args.model)
        page.set_input_files("#open-file", str(portrait))
        page.wait_for_selector("body[data-image=loaded]")
        page.fill("#brush-size", "28")
        box = page.locator("#photo").bounding_box()
        scale = box["width"] / 512
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in STROKE]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=6)
        page.mouse.up()
        page.click("#run")
        page.wait_for_selector("body[data-result='1']")
        page.wait_for_function("!document.body.dataset.busy")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.output))
        browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
