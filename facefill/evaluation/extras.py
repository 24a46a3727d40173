"""The optional metric families of the quality benchmark (the ``eval`` extra), gathered image by image.

``fid`` and ``kid`` (``fid.py``) compare distributions: per model and bucket, the Inception features of all the
results against those of all the ground truths (each truth once, also for ``all``, whose results pool every
bucket). ``st_lpips`` (``perceptual.py``) and ``identity`` (``identity.py``: ``id_cosine``, ``id_distance``,
``id_match``) are per-image scores averaged like the base metrics; identity skips the images where no face is found
in the truth. Every network runs once per truth image, however many models and buckets are scored.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

from .._optional import MissingDependencyError

EXTRA_METRICS: tuple[str, ...] = ("fid", "kid", "st_lpips", "identity")  # the families ``evaluate(metrics=)`` takes

# metric name -> whether a higher value is better (the records these families add)
EXTRA_HIGHER_IS_BETTER: dict[str, bool] = {
    "fid": False, "kid": False, "st_lpips": False, "id_cosine": True, "id_distance": False, "id_match": True,
}
IDENTITY_METRICS = ("id_cosine", "id_distance", "id_match")


def check_family(name: str) -> None:
    """``MissingDependencyError`` (naming the pip command) when family ``name``'s package or weights are missing."""
    if name in ("fid", "kid"):
        from .fid import inception_path

        inception_path()
    elif name == "st_lpips":
        from .perceptual import weights_path

        weights_path()
    elif name == "identity":
        from .identity import check_installed

        check_installed()
    else:
        raise ValueError(f"unknown metric family {name!r}; valid: {', '.join(EXTRA_METRICS)}")


def select(metrics: Iterable[str] | None) -> tuple[list[str], dict[str, str]]:
    """``(families to compute, {skipped family: why})``. ``None``: every family whose package is installed, the
    others skipped with the pip command that installs them. A list: exactly those; a missing package raises
    ``MissingDependencyError``, an unknown name ``ValueError``."""
    if metrics is None:
        chosen, skipped = [], {}
        for name in EXTRA_METRICS:
            try:
                check_family(name)
                chosen.append(name)
            except MissingDependencyError as exc:
                skipped[name] = str(exc)
        return chosen, skipped
    if isinstance(metrics, str):
        raise TypeError(f"metrics must be a list of family names, got the string {metrics!r}; e.g. [{metrics!r}]")
    chosen = list(dict.fromkeys(metrics))
    unknown = [m for m in chosen if m not in EXTRA_METRICS]
    if unknown:
        raise ValueError(f"unknown metric famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(EXTRA_METRICS)}")
    for name in chosen:
        check_family(name)
    return chosen, {}


class ExtraMetrics:
    """Scores the extra families image by image and pools them over an evaluation.

    >>> extra = ExtraMetrics(["fid", "st_lpips"])
    >>> face, truth_feature, scores = extra.score(truth, [out_a, out_b])   # uint8 HxWx3 arrays
    >>> extra.add_truth(face, truth_feature)
    >>> extra.add("telea", "10-20%", *scores[0])
    >>> extra.records("telea", ["10-20%"])      # [(metric, value, n), ...] for that bucket; several buckets pool

    ``score`` runs each network once on the truth and once per result; ``add_truth`` / ``add`` also take scores
    read back from ``facefill.evaluation.cache``.
    """

    def __init__(self, families: Sequence[str], device: str = "cpu"):
        self.families = list(families)
        self.device = device
        self.images = 0
        # truth images without a detected face (skipped by identity); None when identity is not computed
        self.no_face: int | None = 0 if "identity" in self.families else None
        self._truth_features: list[np.ndarray] = []
        self._features: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        self._values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        self._lpips = self._identity = None
        if "st_lpips" in self.families:
            from .perceptual import STLPIPSScorer

            self._lpips = STLPIPSScorer(device)
        if "identity" in self.families:
            from .identity import IdentityScorer

            self._identity = IdentityScorer()

    @property
    def distribution(self) -> bool:
        return "fid" in self.families or "kid" in self.families

    def score(self, truth: np.ndarray, outs: Sequence[np.ndarray]
              ) -> tuple[float, np.ndarray | None, list[tuple[dict[str, float], np.ndarray | None]]]:
        """``(face, truth feature, [(values, feature) per result])`` for one truth and its results: ``face`` is 1.0
        when dlib finds a face in the truth, 0.0 when not, NaN without identity; features (float32 Inception pool3)
        are None without FID/KID; ``values`` has ``st_lpips`` and the identity metrics that apply."""
        outs = list(outs)
        values: list[dict[str, float]] = [{} for _ in outs]
        truth_feature, features = None, [None] * len(outs)
        if self.distribution:
            from .fid import inception_features

            feats = inception_features([truth] + outs, device=self.device).astype(np.float32)
            truth_feature, features = feats[0], list(feats[1:])
        if self._lpips is not None and outs:
            self._lpips.set_truth(truth)
            for v, d in zip(values, self._lpips.score(outs)):
                v["st_lpips"] = float(d)
        face = float("nan")
        if self._identity is not None:
            face = float(self._identity.set_truth(truth))
            if face and outs:
                for v, scores in zip(values, self._identity.score(outs)):
                    v.update(scores)
        return face, truth_feature, list(zip(values, features))

    def add_truth(self, face: float, feature: np.ndarray | None) -> None:
        """Count one truth image: its feature (FID/KID reference) and whether it has a face (identity)."""
        self.images += 1
        if self.distribution:
            if feature is None:
                raise ValueError("FID/KID need the truth's Inception feature")
            self._truth_features.append(feature)
        if self.no_face is not None and face == 0.0:
            self.no_face += 1

    def add(self, model: str, bucket: str, values: dict[str, float], feature: np.ndarray | None) -> None:
        """Add one result's scores (``score``'s, or cached ones: NaN and missing values are left out)."""
        if self.distribution:
            if feature is None:
                raise ValueError("FID/KID need every result's Inception feature")
            self._features[model, bucket].append(feature)
        for metric in self._names():
            value = values.get(metric)
            if value is not None and not np.isnan(value):
                self._values[model, bucket, metric].append(float(value))

    def _names(self) -> list[str]:
        return (["st_lpips"] if self._lpips is not None else []) + \
            (list(IDENTITY_METRICS) if self._identity is not None else [])

    def records(self, model: str, buckets: Sequence[str]) -> list[tuple[str, float, int]]:
        """``(metric, value, n)`` of ``model`` over the results of ``buckets`` pooled (one bucket, or all of them for
        the ``all`` row): FID/KID of their features against every truth, means of the per-image scores."""
        out = []
        if self.distribution:
            from .fid import fid, kid

            feats = np.array([f for b in buckets for f in self._features[model, b]], np.float64)
            truths = np.array(self._truth_features, np.float64)
            if "fid" in self.families:
                out.append(("fid", fid(feats, truths), len(feats)))
            if "kid" in self.families:
                out.append(("kid", kid(feats, truths), len(feats)))
        for metric in self._names():
            values = [v for b in buckets for v in self._values[model, b, metric]]
            if values:
                out.append((metric, float(np.mean(values)), len(values)))
        return out
