"""Training data: face folders, free-form and face-part masks, sketch and colour guidance maps (SC-FEGAN)."""
