"""atomic_write: a file is replaced whole or not at all, alone or together with others."""
from __future__ import annotations

import contextlib
import os

import pytest

from facefill._atomic import atomic_write


def test_replaces_whole_and_keeps_the_mode(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    with atomic_write(path) as tmp:
        assert tmp.parent == tmp_path and tmp != path and path.read_text() == "old"
        tmp.write_text("new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["out.txt"]


def test_new_file_gets_the_umask_mode(tmp_path):
    reference = tmp_path / "plain"
    reference.write_text("")  # created the ordinary way: 0o666 less the umask
    with atomic_write(tmp_path / "new") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "new").stat().st_mode & 0o777 == reference.stat().st_mode & 0o777


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(type(error)):
        with atomic_write(path) as tmp:
            tmp.write_text("half")
            raise error
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_files_written_together_change_together(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("old a")
    with pytest.raises(RuntimeError):
        with contextlib.ExitStack() as stack:
            tmp_a = stack.enter_context(atomic_write(a))
            tmp_b = stack.enter_context(atomic_write(b))
            tmp_a.write_text("new a")
            tmp_b.write_text("new b")
            raise RuntimeError("the last write fails")
    assert a.read_text() == "old a" and not b.exists() and os.listdir(tmp_path) == ["a"]
    with contextlib.ExitStack() as stack:
        stack.enter_context(atomic_write(a)).write_text("new a")
        stack.enter_context(atomic_write(b)).write_text("new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b")


def test_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "nope" / "out.txt"):
            pass
