"""Training data: face folders, free-form masks, and (later) guidance maps."""
