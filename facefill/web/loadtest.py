"""A bounded load test of the HTTP API: N clients x M requests on loopback, then it stops.

    python -m facefill.web.loadtest --clients 4 --requests 10                 # starts its own server (telea)
    python -m facefill.web.loadtest --url http://127.0.0.1:8080 --model deepfill_v2 --size 512

Every request sends the bundled portrait with its own seeded free-form mask; a response counts as correct
when it is a PNG of the input's size whose pixels outside the hole are exactly the input's and which changed
something inside the hole. Reports throughput, latency percentiles, the number of correct responses and the
server's resident memory (``/api/v1/health``) after the first request and after the last. Exit status 1 when
any response was wrong or failed. The server answers 503 (busy) beyond ``ServerConfig.max_pending`` (8)
requests in progress, so more clients than that count as failures by design.
"""
from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from contextlib import nullcontext

import numpy as np
from PIL import Image


def _inputs(size: int, seed: int) -> tuple[bytes, bytes, np.ndarray, np.ndarray]:
    from ..data.masks import brush_stroke_mask
    from ..demo import demo_image

    rgb = np.asarray(demo_image().convert("RGB").resize((size, size), Image.BICUBIC))
    hole = brush_stroke_mask(size, size, np.random.default_rng(seed)).astype(bool)
    if not hole.any():  # a mask must have a hole for the check "changed something inside" to mean anything
        hole[size // 3:size // 2, size // 3:size // 2] = True
    return _png(rgb), _png(hole.astype(np.uint8) * 255), rgb, hole


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def check(response, rgb: np.ndarray, hole: np.ndarray) -> str | None:
    """``None`` when the response is a correct result for ``rgb`` / ``hole``, else what is wrong."""
    if response.status_code != 200:
        return f"status {response.status_code}: {response.text[:200]}"
    if response.headers.get("content-type") != "image/png":
        return f"content type {response.headers.get('content-type')!r}"
    try:
        out = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    except OSError as exc:
        return f"not a readable PNG: {exc}"
    if out.shape != rgb.shape:
        return f"result is {out.shape[1]}x{out.shape[0]}, input {rgb.shape[1]}x{rgb.shape[0]}"
    if not np.array_equal(out[~hole], rgb[~hole]):
        return "pixels outside the hole changed"
    if np.array_equal(out[hole], rgb[hole]):
        return "nothing inside the hole changed"
    return None


def run(url: str, clients: int, requests: int, model: str | None, size: int = 256, timeout: float = 120.0) -> dict:
    """Run the load against ``url``; returns the numbers that ``report`` prints."""
    import httpx

    variants = [_inputs(size, seed) for seed in range(8)]
    form = {"model": model} if model else {}

    def post(client, k: int):
        image, mask, rgb, hole = variants[k % len(variants)]
        start = time.perf_counter()
        try:
            response = client.post(f"{url}/api/v1/inpaint", data=form,
                                   files={"image": ("face.png", image, "image/png"),
                                          "mask": ("mask.png", mask, "image/png")})
        except httpx.HTTPError as exc:
            return time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - start, check(response, rgb, hole)

    with httpx.Client(timeout=timeout) as client:
        _, problem = post(client, 0)  # warm-up: loads the model; its latency is not counted
        if problem:
            raise RuntimeError(f"the first request failed: {problem}")
        rss_first = client.get(f"{url}/api/v1/health").json().get("rss_mib")

    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()

    def client_loop(c: int) -> None:
        with httpx.Client(timeout=timeout) as client:
            for i in range(requests):
                seconds, problem = post(client, c * requests + i)
                with lock:
                    latencies.append(seconds)
                    if problem:
                        problems.append(problem)

    threads = [threading.Thread(target=client_loop, args=(c,), daemon=True) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    with httpx.Client(timeout=timeout) as client:
        health = client.get(f"{url}/api/v1/health").json()
    ms = np.array(latencies) * 1000.0
    return {
        "url": url, "model": model or "(server default)", "size": size, "clients": clients,
        "requests_per_client": requests, "total": len(latencies), "correct": len(latencies) - len(problems),
        "problems": problems[:10], "wall_s": wall, "throughput_rps": len(latencies) / wall if wall else 0.0,
        "latency_ms": {p: float(np.percentile(ms, p)) for p in (50, 90, 99)} | {"max": float(ms.max())},
        "rss_mib_after_first": rss_first, "rss_mib_after_last": health.get("rss_mib"),
    }


def report(r: dict) -> str:
    lat = r["latency_ms"]
    rss = ""
    if r["rss_mib_after_first"] is not None and r["rss_mib_after_last"] is not None:
        rss = (f"\nserver RSS: {r['rss_mib_after_first']:.1f} MiB after the first request, "
               f"{r['rss_mib_after_last']:.1f} MiB after {r['total'] + 1} requests "
               f"({r['rss_mib_after_last'] - r['rss_mib_after_first']:+.1f} MiB)")
    lines = (f"facefill load test: {r['clients']} clients x {r['requests_per_client']} requests, model "
             f"{r['model']}, {r['size']}x{r['size']} image, {r['url']}\n"
             f"requests {r['total']}, correct {r['correct']}, wrong or failed {r['total'] - r['correct']}; "
             f"wall {r['wall_s']:.2f} s, throughput {r['throughput_rps']:.1f} req/s\n"
             f"latency ms: p50 {lat[50]:.0f}, p90 {lat[90]:.0f}, p99 {lat[99]:.0f}, max {lat['max']:.0f}{rss}")
    for problem in r["problems"]:
        lines += f"\n  wrong: {problem}"
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facefill.web.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (threads)")
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--url", help="a running server (default: start one in this process on loopback)")
    parser.add_argument("--model", default="telea", help="model to request (default telea: needs no weights)")
    parser.add_argument("--size", type=int, default=256, help="side of the square test image, pixels")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    parser.add_argument("--untrained", action="store_true",
                        help="own server only: serve the model with fresh random weights (create_model), to "
                             "measure a network before its weights ship")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1 or args.size < 16:
        parser.error("--clients and --requests must be >= 1, --size >= 16")
    if args.url:
        server = nullcontext(args.url.rstrip("/"))
    else:
        from .server import create_app, running

        if args.untrained:
            import facefill

            app = create_app(models={args.model: facefill.create_model(args.model)}, names=[])
        else:
            app = create_app(names=[args.model], default=args.model)
        server = running(app)
    with server as url:
        result = run(url, args.clients, args.requests, args.model, args.size, args.timeout)
    print(report(result))
    return 0 if result["correct"] == result["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
