"""User-given data paths: every bad one is a DataPathError naming the field, never another
exception and never a hang; data files are read with a size cap (issue 22)."""

from __future__ import annotations

import gzip
import os
import threading

import pytest

from search_spaces.paths import DataPathError, open_data_file, resolve_data_path
from search_spaces.table import TableSpace

FIELD = "search_space.options.path"

# data_dir: tests/conftest.py's (a small table under a data directory on PARETONAS_DATA_DIRS)


def refused(path: str, *, kind="any") -> str:
    with pytest.raises(DataPathError) as err:
        resolve_data_path(path, field=FIELD, kind=kind)
    assert err.value.field == FIELD
    assert str(err.value).startswith(FIELD + ": ")
    return str(err.value)


def test_unresolvable_paths_are_refused_not_raised(data_dir):
    assert "cannot be resolved" in refused("~nosuchuser_paretonas/x.csv")
    assert "5000 characters long" in refused("a" * 5000)
    assert "NUL" in refused("t\x00.csv")
    assert "not valid text" in refused("t\ud800.csv")
    # shorter than the cap, but one name over the file system's 255 bytes
    assert "cannot be resolved" in refused("b" * 600 + "/x.csv")


def test_symlink_loop_is_refused(data_dir):
    (data_dir / "loop").symlink_to(data_dir / "loop")
    refused("loop")


def test_special_files_are_refused_without_blocking(data_dir):
    os.mkfifo(data_dir / "fifo.csv")
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(refused("fifo.csv")), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "resolving a FIFO must not block"
    assert "FIFO" in result[0]


def test_kind_is_checked(data_dir):
    (data_dir / "sub").mkdir()
    assert "directory, not a file" in refused("sub", kind="file")
    assert "file, not a directory" in refused("t.csv", kind="dir")
    assert resolve_data_path("sub", field=FIELD) == data_dir / "sub"


def test_open_refuses_a_fifo_swapped_in_after_the_check(data_dir):
    checked = resolve_data_path("t.csv", field=FIELD, kind="file")
    checked.unlink()
    os.mkfifo(checked)  # no writer: a blocking open would wait forever
    with pytest.raises(DataPathError, match="FIFO"):
        open_data_file(checked, field=FIELD)


def test_size_cap(data_dir, monkeypatch):
    monkeypatch.setenv("PARETONAS_MAX_DATA_FILE_BYTES", "100")
    with pytest.raises(DataPathError, match="at most 100 bytes"):
        TableSpace({"path": "t.csv", "params": ["depth"]})


def test_size_cap_counts_uncompressed_bytes(data_dir, monkeypatch):
    raw = (data_dir / "t.csv").read_bytes() + b"\n" * 5000
    (data_dir / "big.csv.gz").write_bytes(gzip.compress(raw))
    assert (data_dir / "big.csv.gz").stat().st_size < 1000
    monkeypatch.setenv("PARETONAS_MAX_DATA_FILE_BYTES", "1000")
    with pytest.raises(DataPathError, match="more than 1000 bytes"):
        TableSpace({"path": "big.csv.gz", "params": ["depth"]})


def test_corrupt_gzip_is_a_space_error(data_dir):
    (data_dir / "bad.csv.gz").write_bytes(gzip.compress(b"depth,acc\n1,0.5\n")[:-6])
    with pytest.raises(DataPathError.__mro__[1], match="cannot read bad.csv.gz"):
        TableSpace({"path": "bad.csv.gz", "params": ["depth"]})
