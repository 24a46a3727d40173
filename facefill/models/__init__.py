"""One file per architecture; each registers its named variants with ``@register_model``."""
