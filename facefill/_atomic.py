"""Writing files so that a reader never sees half of one: the files facefill replaces (images, weights, training
checkpoints and state, cached maps and scores, the log trimmed on resume, README blocks) go through
``atomic_write``; appends (``log.jsonl``) and a run's own fresh outputs (sample grids, reports) do not.

    with atomic_write(path) as tmp:      # a new, empty file beside ``path``
        image.save(tmp)                  # write it by name, any way you like
    # here ``path`` holds the complete new file; had the block raised, ``path`` would be as it was

Several files that must change together (weights and their config, the shards of a training state) are written
inside one ``contextlib.ExitStack``: nothing is replaced before every file has been written.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; when the block ends without an exception, the file written
    there is flushed to disk, given the permissions of the file it replaces (else ``0o666`` less the umask, as a
    plain ``open`` would) and renamed onto ``path`` in one step. On any exception (``KeyboardInterrupt``
    included) it is removed and ``path`` is untouched. ``suffix`` ends the temporary name (some writers pick
    the format from it). The folder must exist; ``tempfile.mkstemp``'s ``OSError`` says when it is not
    writable."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode(path))  # mkstemp makes the file private (0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace the file ``path`` by ``text`` (UTF-8) in one step (see ``atomic_write``)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def new_file_mode(path: Path) -> int:
    """Permissions for a file written to ``path``: those of the file it replaces, else ``0o666`` less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    try:  # Linux exposes the umask without having to change it (os.umask is not thread-safe to read)
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
