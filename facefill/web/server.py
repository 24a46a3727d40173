"""``facefill serve``: the HTTP API and the web editor, one FastAPI app.

Endpoints (OpenAPI description at ``/docs`` and ``/openapi.json``):
  - ``POST /api/v1/inpaint``: multipart form with ``image`` and ``mask`` files, optional guidance files named
    after the model's ``inputs`` (``sketch``: a line drawing, on a transparent layer or either polarity on an
    opaque background; ``color``: colour strokes, RGBA or on black; read by ``facefill.guidance``), and
    optional fields ``model``, ``threshold`` (0 < t <= 1, default 0.5) and ``resize_mask`` (true/false).
    Returns the result as ``image/png`` (same size as the EXIF-oriented input, alpha kept).
  - ``GET /api/v1/models``: every model, with the ``inputs`` read from the model itself, whether it is loaded,
    and whether it can be used (loaded, or has weights).
  - ``GET /api/v1/health``: liveness, loaded models, queued requests, resident memory.
  - ``GET /``: the editor (``static/index.html``, plain JS, no build step).

Every error is JSON ``{"error": "..."}`` with a 4xx/5xx status; the server keeps serving afterwards.
Uploads go through ``facefill.imageio`` (the one gate: decoding, EXIF orientation, decompression bombs).

Models are loaded lazily, once per name, and kept. Inference runs in a worker thread (the event loop stays
free) under a per-model lock, so two requests never interleave on one model; requests beyond
``ServerConfig.max_pending`` get 503 instead of piling up decoded images in memory.
"""
from __future__ import annotations

import io
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .. import __version__, imageio
from ..align import ALIGN_MODES

STATIC_DIR = Path(__file__).parent / "static"

# The guidance upload fields (kinds, not model names); their images go to ``model.inpaint``, which reads them
# with ``facefill.guidance``.
GUIDANCE_FIELDS = ("sketch", "color")
FIELD_ALIASES = {"colour": "color"}
OPTION_FIELDS = ("model", "threshold", "resize_mask", "align")


@dataclass
class ServerConfig:
    """Limits of the HTTP API."""

    max_upload_bytes: int | None = None  # whole request body; None: ``default_upload_bytes(max_pixels)``
    max_pixels: int = 40_000_000  # per uploaded image (a 40 Mpx photo); imageio.MAX_PIXELS also applies
    max_pending: int = 8  # requests decoding, queued or running at once; more get 503 + Retry-After

    @property
    def body_limit(self) -> int:
        return default_upload_bytes(self.max_pixels) if self.max_upload_bytes is None else self.max_upload_bytes


def default_upload_bytes(max_pixels: int) -> int:
    """A request body that holds the largest accepted image even as the server's own result, an RGBA PNG, which
    a noisy photo barely compresses (~4 bytes a pixel), so a result can always be sent back for the next edit;
    plus 16 MiB for the mask and the guidance layers (mostly flat, they compress well)."""
    return 4 * max_pixels + 16 * 2**20


class _Revalidated(StaticFiles):
    """The editor's scripts and styles with ``Cache-Control: no-cache``: the browser revalidates them (a cheap
    304 by ETag) instead of guessing a freshness, so an upgraded facefill never pairs a new page with old JS."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


class ApiError(HTTPException):
    """An HTTP error whose ``detail`` is the message shown to the user."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(status_code=status, detail=message, headers=headers)


class ModelUnavailable(RuntimeError):
    """A known model that cannot be loaded (no weights, weights that do not fit, ...)."""


# ---------------------------------------------------------------------------------------------- models


class ModelPool:
    """One model instance per name, loaded on first use and kept; a lock per name serialises its use.

    ``injected`` models are used as they are (tests, embedding); other names are loaded with ``loader``.
    """

    def __init__(self, loader: Callable[[str], object], names: Iterable[str], injected: Mapping[str, object]):
        self._loader = loader
        self._models: dict[str, object] = dict(injected)
        self.names = sorted(set(names) | set(injected))
        self._locks = {name: threading.Lock() for name in self.names}
        self._inputs: dict[str, tuple[str, ...]] = {}

    def loaded(self) -> list[str]:
        return sorted(self._models)

    def is_loaded(self, name: str) -> bool:
        return name in self._models

    def _get(self, name: str):
        """The model (loading it if needed); the caller holds ``name``'s lock."""
        model = self._models.get(name)
        if model is None:
            from ..pretrained import WeightsError

            try:
                model = self._loader(name)
            except WeightsError as exc:
                raise ModelUnavailable(f"model {name!r} has no usable weights: {exc}") from None
            except (OSError, RuntimeError, ValueError) as exc:
                raise ModelUnavailable(f"model {name!r} could not be loaded: {exc}") from None
            self._models[name] = model
        return model

    def run(self, name: str, fn: Callable):
        """``fn(model)`` with ``name``'s lock held: one request at a time per model."""
        with self._locks[name]:
            return fn(self._get(name))

    def inputs(self, name: str) -> tuple[str, ...]:
        """The model's ``inputs``, read from the model itself: the loaded instance, else one built from its
        registered config (no weights read), cached."""
        if name in self._models:
            return tuple(self._models[name].inputs)
        if name not in self._inputs:
            self._inputs[name] = _inputs_without_weights(name)
        return self._inputs[name]


def _inputs_without_weights(name: str) -> tuple[str, ...]:
    from ..pretrained import read_config
    from ..registry import create_model, weights_path

    overrides = {}
    if (weights_path(name) / "config.json").is_file():
        try:
            overrides = read_config(weights_path(name)).get("config", {})
        except (OSError, ValueError):
            overrides = {}
    return tuple(create_model(name, **overrides).inputs)


def _default_loader(device: str) -> Callable[[str], object]:
    def load(name: str):
        import facefill

        return facefill.load(name, device=device)

    return load


# ---------------------------------------------------------------------------------------------- schemas


class ErrorBody(BaseModel):
    error: str


class ModelEntry(BaseModel):
    name: str
    description: str
    inputs: list[str]
    loaded: bool
    has_weights: bool
    available: bool
    default: bool


class ModelsBody(BaseModel):
    default: str | None
    models: list[ModelEntry]


class HealthBody(BaseModel):
    status: str
    version: str
    models_loaded: list[str]
    pending: int
    rss_mib: float | None


_INPAINT_FORM = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["image", "mask"],
            "properties": {
                "image": {"type": "string", "format": "binary",
                          "description": "the photo (PNG, JPEG, WebP, ...; EXIF orientation is applied)"},
                "mask": {"type": "string", "format": "binary",
                         "description": "white (>= threshold) = hole; the image's size unless resize_mask"},
                "sketch": {"type": "string", "format": "binary",
                           "description": "line drawing: lines on a transparent layer (alpha = line), or dark "
                                          "on light / light on dark, for models whose inputs include 'sketch'"},
                "color": {"type": "string", "format": "binary",
                          "description": "colour strokes: RGBA (alpha = painted) or RGB with black = unpainted, "
                                         "for models whose inputs include 'color' (field name 'colour' is "
                                         "accepted too)"},
                "model": {"type": "string", "description": "model name (GET /api/v1/models); default: the "
                                                           "server's --model"},
                "threshold": {"type": "number", "default": 0.5,
                              "description": "mask values >= threshold x full range are holes"},
                "resize_mask": {"type": "boolean", "default": False,
                                "description": "resize a mask (and guidance) of another size to the image"},
            },
        }}},
    }
}

_ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in (
    (400, "unknown model, unknown field, or guidance the model does not take"),
    (413, "request body or image over the limits"),
    (415, "not multipart/form-data, or an upload that is not an image"),
    (422, "missing field, bad option, corrupt image, mask/image size mismatch"),
    (500, "the model failed on this input"),
    (503, "model without usable weights, or the server is busy (Retry-After)"),
)}


# ---------------------------------------------------------------------------------------------- app


def create_app(models: Mapping[str, object] | None = None, *, default: str | None = None,
               loader: Callable[[str], object] | None = None, names: Iterable[str] | None = None,
               device: str = "cpu", config: ServerConfig | None = None) -> FastAPI:
    """The facefill web app.

    - ``models``: ready model instances by name, used as they are (e.g. ``{"deepfill_v2_tiny": model}``);
    - ``loader``: ``name -> model`` for the other names, called once per name on first use
      (default ``facefill.load(name, device=device)``);
    - ``names``: the model names offered (default: every registered model); injected names are always offered;
    - ``default``: the model used when a request names none (default: the first injected model, else
      ``deepfill_v2``).
    """
    from ..registry import list_models

    config = config or ServerConfig()
    infos = {info.name: info for info in list_models()}
    injected = dict(models or {})
    offered = list(names) if names is not None else list(infos)
    pool = ModelPool(loader or _default_loader(device), offered, injected)
    if default is None:
        default = next(iter(injected), "deepfill_v2" if "deepfill_v2" in pool.names else None)
    if default is not None and default not in pool.names:
        raise ValueError(f"default model {default!r} is not offered; offered: {', '.join(pool.names)}")

    app = FastAPI(title="facefill", version=__version__,
                  description="Face inpainting and editing: send a photo and a mask (white = hole), get the "
                              "filled photo back as PNG. The editor is at `/`.")
    app.state.pool = pool
    app.state.config = config
    app.state.default = default
    app.state.pending = 0
    app.add_middleware(_BodyLimit, limit=config.body_limit)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # the server keeps serving; the client gets JSON
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/api/v1/health", response_model=HealthBody, tags=["api"])
    async def health():
        """Liveness: loaded models, requests in flight, resident memory of the server process."""
        return HealthBody(status="ok", version=__version__, models_loaded=pool.loaded(),
                          pending=app.state.pending, rss_mib=rss_mib())

    @app.get("/api/v1/models", response_model=ModelsBody, tags=["api"])
    def models_():
        """Every offered model with its inputs (read from the model), loaded or not, usable or not."""
        entries = []
        for name in pool.names:
            info = infos.get(name)
            inst = injected.get(name)
            description = info.description if info else ((type(inst).__doc__ or "").strip().splitlines() or [""])[0]
            has_weights = bool(info.has_weights) if info else True
            try:
                inputs = list(pool.inputs(name))
            except Exception:  # a model that cannot even be built is listed, but not usable
                inputs, has_weights = ["image", "mask"], False
            loaded = pool.is_loaded(name)
            entries.append(ModelEntry(name=name, description=description, inputs=inputs, loaded=loaded,
                                      has_weights=has_weights, available=loaded or has_weights,
                                      default=name == default))
        return ModelsBody(default=default, models=entries)

    @app.post("/api/v1/inpaint", tags=["api"], response_class=Response, openapi_extra=_INPAINT_FORM,
              responses={200: {"content": {"image/png": {}}, "description": "the result, PNG"}, **_ERRORS})
    async def inpaint(request: Request):
        """Fill the white region of ``mask`` in ``image``; pixels outside the hole are returned exactly.

        Example: ``curl -F image=@face.jpg -F mask=@mask.png -F model=telea http://127.0.0.1:8080/api/v1/inpaint
        -o out.png``
        """
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            raise ApiError(415, "send a multipart/form-data form (fields image, mask, ...), not "
                                f"{ctype or 'a body without content type'}")
        if app.state.pending >= config.max_pending:
            raise ApiError(503, f"the server is busy ({app.state.pending} requests in progress); try again",
                           headers={"Retry-After": "1"})
        app.state.pending += 1
        try:
            async with request.form(max_files=8, max_fields=16, max_part_size=64 * 1024) as form:
                req = await _read_form(form, pool, default)
            return await run_in_threadpool(_handle, pool, req, config)
        finally:
            app.state.pending -= 1

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", _Revalidated(directory=STATIC_DIR), name="static")
    return app


# ---------------------------------------------------------------------------------------------- requests


@dataclass
class _Upload:
    field: str
    filename: str
    data: bytes


@dataclass
class _InpaintRequest:
    model: str
    image: _Upload
    mask: _Upload
    guidance: dict[str, _Upload]
    threshold: float
    resize_mask: bool
    align: str = "auto"


_IMAGE_TYPES = ("image/", "application/octet-stream")


async def _read_form(form, pool: ModelPool, default: str | None) -> _InpaintRequest:
    """Check the form's fields and read its files; decoding happens later, in a worker thread."""
    fields: dict[str, object] = {}
    for key, value in form.multi_items():
        key = FIELD_ALIASES.get(key, key)
        if key in fields:
            raise ApiError(422, f"field {key!r} is given twice")
        fields[key] = value
    name = fields.pop("model", None) or default
    if name is None:
        raise ApiError(422, "no model named and the server has no default; add a 'model' field")
    if not isinstance(name, str):
        raise ApiError(422, "field 'model' must be a text field (a model name)")
    if name not in pool.names:
        raise ApiError(400, f"unknown model {name!r}; available: {', '.join(pool.names)}")
    threshold = _float_field(fields.pop("threshold", None), "threshold", 0.5)
    if not 0.0 < threshold <= 1.0:
        raise ApiError(422, f"threshold must be in (0, 1], got {threshold:g}")
    resize_mask = _bool_field(fields.pop("resize_mask", None), "resize_mask")
    align = str(fields.pop("align", None) or "auto")
    if align not in ALIGN_MODES:
        raise ApiError(422, f"align must be one of {', '.join(ALIGN_MODES)}, got {align!r}")
    try:
        inputs = await run_in_threadpool(pool.inputs, name)
    except Exception as exc:  # a registered model that cannot even be built: say so, keep serving
        raise ApiError(503, f"model {name!r} cannot be built: {type(exc).__name__}: {exc}") from None
    files = {}
    for key, value in fields.items():
        if key not in ("image", "mask") and key not in GUIDANCE_FIELDS:
            raise ApiError(400, f"unknown field {key!r}; fields: image, mask, {', '.join(GUIDANCE_FIELDS)}, "
                                f"{', '.join(OPTION_FIELDS)}")
        if key in GUIDANCE_FIELDS and key not in inputs:
            raise ApiError(400, f"model {name!r} does not take {key!r}; it takes {', '.join(inputs)}")
        if isinstance(value, str):
            raise ApiError(422, f"field {key!r} must be a file upload (curl: -F {key}=@file.png)")
        ctype = (value.content_type or "application/octet-stream").lower()
        if not ctype.startswith(_IMAGE_TYPES):
            raise ApiError(415, f"{key} is sent as {ctype!r}; send an image (image/png, image/jpeg, ...)")
        data = await value.read()
        if not data:
            raise ApiError(422, f"{key} is an empty file")
        files[key] = _Upload(key, value.filename or key, data)
    for key in ("image", "mask"):
        if key not in files:
            raise ApiError(422, f"missing file field {key!r}: send the photo as 'image' and the hole (white) as "
                                "'mask'")
    guidance = {k: v for k, v in files.items() if k in GUIDANCE_FIELDS}
    return _InpaintRequest(name, files["image"], files["mask"], guidance, threshold, resize_mask, align)


def _float_field(value, name: str, default: float) -> float:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ApiError(422, f"field {name!r} must be a number, not a file")
    try:
        return float(value)
    except ValueError:
        raise ApiError(422, f"field {name!r} must be a number, got {value[:40]!r}") from None


def _bool_field(value, name: str) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ApiError(422, f"field {name!r} must be true or false")


def _decode(upload: _Upload, max_pixels: int) -> Image.Image:
    """Bytes -> PIL image through ``imageio.read_image`` (EXIF, bombs, truncation), after a header-only check
    of the format and the pixel count against the server's limit."""
    try:
        with Image.open(io.BytesIO(upload.data)) as probe:
            w, h = probe.size
    except UnidentifiedImageError:
        raise ApiError(415, f"{upload.field} ({upload.filename!r}) is not an image this server can read; "
                            "send PNG, JPEG, WebP, BMP or TIFF") from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"{upload.field} ({upload.filename!r}) claims more pixels than can be decoded safely; "
                            f"this server accepts at most {max_pixels:,}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ApiError(422, f"{upload.field} ({upload.filename!r}) could not be read: {exc}") from None
    if w * h > max_pixels:
        raise ApiError(413, f"{upload.field} is {w}x{h} = {w * h:,} pixels, over this server's limit of "
                            f"{max_pixels:,}; downscale it first")
    # imageio's reader takes a path: it stays the one gate for decoding, so the bytes go through a file
    with tempfile.TemporaryDirectory(prefix="facefill-upload-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(upload.data)
        try:
            return imageio.read_image(path, upload.field)
        except imageio.ImageError as exc:
            raise ApiError(422, str(exc).replace(str(path), repr(upload.filename))) from None


def _api_message(exc: imageio.ImageError) -> str:
    """An input error in the API's words: the Python / CLI resize hints name the ``resize_mask`` field."""
    return (str(exc).replace("--resize-mask / resize=True", "resize_mask=true")
            .replace("resize_mask=True", "resize_mask=true"))


def _handle(pool: ModelPool, req: _InpaintRequest, config: ServerConfig) -> Response:
    """Decode, run the model under its lock, encode: all in a worker thread."""
    image = _decode(req.image, config.max_pixels)
    mask = _decode(req.mask, config.max_pixels)
    try:
        hole = imageio.to_mask(mask, image.size, threshold=req.threshold, resize=req.resize_mask)
    except imageio.ImageError as exc:
        raise ApiError(422, _api_message(exc)) from None
    guidance = {k: _decode(u, config.max_pixels) for k, u in req.guidance.items()}  # read by facefill.guidance
    headers = {"X-Facefill-Model": req.model, "Cache-Control": "no-store"}
    if not hole.any():
        headers["X-Facefill-Warning"] = "the mask is empty: nothing to inpaint, the input is returned unchanged"
        rgb, alpha = imageio.to_rgb(image)
        return _png(imageio.to_pil(rgb, alpha), headers)
    if hole.all():
        headers["X-Facefill-Warning"] = "the mask covers the whole image: there is no context, the result is a guess"

    def run(model):
        start = time.perf_counter()
        from ..align import FaceNotFoundError, decisions
        from .._optional import MissingDependencyError

        try:
            with decisions() as notes:
                out = model.inpaint(image, hole, resize_mask=req.resize_mask, align=req.align, **guidance)
            if notes:
                headers["X-Facefill-Align"] = "; ".join(notes)[:1000]
        except FaceNotFoundError as exc:
            raise ApiError(422, str(exc)) from None
        except MissingDependencyError as exc:
            raise ApiError(503, str(exc)) from None
        except imageio.ImageError as exc:  # a drawing of the wrong size or kind; the message names it
            raise ApiError(422, _api_message(exc)) from None
        except (TypeError, ValueError) as exc:
            raise ApiError(422, f"model {req.model!r} cannot use this input: {exc}") from None
        headers["X-Facefill-Seconds"] = f"{time.perf_counter() - start:.3f}"
        return out

    try:
        result = pool.run(req.model, run)
    except ModelUnavailable as exc:
        raise ApiError(503, str(exc)) from None
    except ApiError:
        raise
    except Exception as exc:  # a model bug must not take the server down; say what happened
        raise ApiError(500, f"model {req.model!r} failed: {type(exc).__name__}: {exc}") from None
    return _png(result, headers)


def _png(image: Image.Image, headers: dict) -> Response:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=3)  # level 3: ~size of 6 at a fraction of the time
    return Response(buf.getvalue(), media_type="image/png", headers=headers)


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread (port 0: a free one); yields its base URL and stops
    the server on exit. For the load test, the browser test and embedding."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="facefill-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)


def rss_mib() -> float | None:
    """Resident memory of this process in MiB (Linux ``/proc``), or ``None`` elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------- body limit


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes under ``/api/``: at once from ``Content-Length``, else while
    streaming (chunked uploads), so an oversized upload is never read into memory.

    Before answering 413 the rest of the body (up to ``drain`` bytes) is read and discarded: a server that
    answers and closes while the client is still sending makes the client's kernel reset the connection, and a
    browser or ``requests`` then reports "connection reset" instead of the 413 message. A client that sent
    ``Expect: 100-continue`` has not sent the body yet and gets the answer at once."""

    def __init__(self, app, limit: int, drain: int | None = None):
        self.app = app
        self.limit = limit
        self.drain = max(4 * limit, 256 * 2**20) if drain is None else drain

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        waiting = b"100-continue" in headers.get(b"expect", b"").lower()
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                return await _send_json(send, 400, "the Content-Length header is not a number")
            if too_big:
                if not waiting and int(length) <= self.drain:
                    await self._discard(receive, 0)
                return await _send_json(send, 413, self._message())
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if message.get("more_body", False):
                        await self._discard(receive, seen)
                    raise ApiError(413, self._message())  # handled by the app's HTTPException handler
            return message

        return await self.app(scope, limited, send)

    async def _discard(self, receive, seen: int) -> None:
        """Read and drop the rest of the body (never kept), up to ``drain`` bytes in all."""
        while seen <= self.drain:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _message(self) -> str:
        return f"the upload is over this server's limit of {self.limit / 2**20:g} MiB; send a smaller image"


async def _send_json(send, status: int, message: str) -> None:
    import json

    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
