"""The web editor and HTTP API (``facefill serve``); needs the ``web`` extra (FastAPI, uvicorn,
python-multipart)."""
