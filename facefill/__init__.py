"""facefill: face inpainting and editing.

    import facefill
    facefill.list_models()                  # [ModelInfo(name, description, has_weights), ...]
    model = facefill.load("deepfill_v2")    # shipped weights, CPU by default (device="cuda" to choose)
    result = model.inpaint(image, mask)     # image: PIL.Image or HxWx3 uint8; mask: HxW, white = hole
                                            # (>= threshold=0.5 of the full range; in a 0/1 mask, 1)
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["create_model", "list_models", "load", "__version__"]


def load(name: str = "deepfill_v2", device: str = "cpu", amp: str = "auto"):
    """A ready-to-use model: registered ``name`` with its shipped weights (or a weights folder path), on
    ``device``. ``amp``: the network's precision, ``"auto"`` (bf16 autocast where it is fast: CUDA, CPUs with
    native bf16), ``"bf16"`` or ``"off"`` (fp32); see ``facefill.precision``. Classical models ignore it."""
    from .precision import check_amp
    from .pretrained import load_pretrained

    check_amp(amp)
    model = load_pretrained(name, device=device)
    if hasattr(model, "amp"):
        model.amp = amp
    return model


def create_model(name: str, **overrides):
    """A registered model with fresh, untrained weights (for training)."""
    from .registry import create_model as _create

    return _create(name, **overrides)


def list_models():
    """Registered models: ``[ModelInfo(name, description, has_weights)]``."""
    from .registry import list_models as _list

    return _list()
