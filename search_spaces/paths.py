"""Data paths given by users are only accepted under configured data directories.

``PARETONAS_DATA_DIRS`` (os.pathsep-separated) lists the roots; by default ``./data`` and the
tables that ship inside the package. Paths are resolved (symlinks followed) before the check, so
neither ``..`` nor a symlink can escape a root.

A user's path never makes the check raise anything but ``DataPathError`` (a ``SpaceError``
naming the field): an unknown ``~user``, a name too long for the file system, a NUL, a symlink
loop or a FIFO are all refused as such. ``open_data_file`` opens without blocking (a FIFO would
otherwise hang the request) and refuses files over a size cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Literal

from search_spaces.base import SpaceError

PACKAGED_DATA = Path(__file__).resolve().parent / "data"
#: Longest path accepted from a user (Linux's PATH_MAX is 4096, a name at most 255 bytes).
MAX_PATH_CHARS = 1024
#: Largest data file read into memory (``PARETONAS_MAX_DATA_FILE_BYTES`` overrides).
DEFAULT_MAX_FILE_BYTES = 1 << 30

Kind = Literal["file", "dir", "any"]


class DataPathError(SpaceError):
    """A user-given data path that cannot be used; ``field`` is where it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def data_roots() -> list[Path]:
    raw = os.environ.get("PARETONAS_DATA_DIRS")
    roots = [Path(p) for p in raw.split(os.pathsep) if p] if raw else [Path("data")]
    return [r.expanduser().resolve() for r in roots] + [PACKAGED_DATA]


def max_file_bytes() -> int:
    raw = os.environ.get("PARETONAS_MAX_DATA_FILE_BYTES")
    return int(raw) if raw and raw.isdigit() else DEFAULT_MAX_FILE_BYTES


def _kind_problem(mode: int, kind: Kind) -> str | None:
    if stat.S_ISREG(mode):
        return None if kind != "dir" else "is a file, not a directory"
    if stat.S_ISDIR(mode):
        return None if kind != "file" else "is a directory, not a file"
    return "is not a regular file or directory (a FIFO, socket or device is not data)"


def _check_text(path: str, field: str) -> None:
    if "\x00" in path:
        raise DataPathError(field, "contains a NUL character (U+0000)")
    if len(path) > MAX_PATH_CHARS:
        raise DataPathError(field, f"is {len(path)} characters long; at most "
                                   f"{MAX_PATH_CHARS} are allowed")
    try:
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        raise DataPathError(field, "is not valid text for a file name") from exc


def resolve_data_path(path: str | os.PathLike[str], *, field: str = "path",
                      kind: Kind = "any") -> Path:
    """Resolve ``path`` (relative paths are tried against each root) or raise DataPathError.

    ``kind``: what it must be ("any": a regular file or a directory, never a special file).
    """
    text = os.fspath(path)
    if not isinstance(text, str):
        raise DataPathError(field, "must be text")
    _check_text(text, field)
    shown = ", ".join(str(r) for r in data_roots())
    try:
        return _resolve(text, field=field, kind=kind, shown=shown)
    except (OSError, RuntimeError, ValueError) as exc:
        # RuntimeError: unknown "~user"; OSError: name too long, symlink loop, permissions
        if isinstance(exc, SpaceError):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DataPathError(field, f"{text!r} cannot be resolved ({reason}); give a path "
                                   f"under the data directories ({shown})") from exc


def _resolve(text: str, *, field: str, kind: Kind, shown: str) -> Path:
    roots = data_roots()
    raw = Path(text).expanduser()
    candidates = [raw] if raw.is_absolute() else [root / raw for root in roots]
    escapes = False
    for candidate in candidates:
        resolved = candidate.resolve()
        if any(resolved.is_relative_to(root) for root in roots):
            if resolved.exists():  # stat, not open: no FIFO ever blocks here
                if problem := _kind_problem(resolved.stat().st_mode, kind):
                    raise DataPathError(field, f"{text!r} {problem}")
                return resolved
        elif candidate.exists() or raw.is_absolute() or ".." in raw.parts:
            escapes = True
    if escapes:
        raise DataPathError(
            field, f"{text!r} is outside the allowed data directories ({shown}); "
            "set PARETONAS_DATA_DIRS to allow another"
        )
    raise DataPathError(field, f"{text!r} does not exist (looked under {shown})")


def open_data_file(path: Path, *, field: str = "path",
                   max_bytes: int | None = None) -> BinaryIO:
    """Open a regular file for reading in binary mode, never blocking and never larger than
    ``max_bytes`` (default ``max_file_bytes()``). The type and size are checked on the open
    descriptor, so a file swapped for a FIFO after ``resolve_data_path`` is still refused."""
    cap = max_file_bytes() if max_bytes is None else max_bytes
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DataPathError(field, f"cannot open {path.name}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if problem := _kind_problem(info.st_mode, "file"):
            raise DataPathError(field, f"{path.name} {problem}")
        if info.st_size > cap:
            raise DataPathError(field, f"{path.name} is {info.st_size} bytes; this server reads "
                                       f"data files of at most {cap} bytes "
                                       "(PARETONAS_MAX_DATA_FILE_BYTES)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(fh: BinaryIO, *, name: str, field: str = "path",
                max_bytes: int | None = None) -> bytes:
    """Read all of ``fh`` (e.g. a gzip stream) but refuse more than ``max_bytes``."""
    cap = max_file_bytes() if max_bytes is None else max_bytes
    data = fh.read(cap + 1)
    if len(data) > cap:
        raise DataPathError(field, f"{name} holds more than {cap} bytes (uncompressed); this "
                                   "server's limit is PARETONAS_MAX_DATA_FILE_BYTES")
    return data
