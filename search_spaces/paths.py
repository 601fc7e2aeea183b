"""Data paths given by users are only accepted under configured data directories.

``PARETONAS_DATA_DIRS`` (os.pathsep-separated) lists the roots; by default ``./data`` and the
tables that ship inside the package. Paths are resolved (symlinks followed) before the check, so
neither ``..`` nor a symlink can escape a root.
"""

from __future__ import annotations

import os
from pathlib import Path

from search_spaces.base import SpaceError

PACKAGED_DATA = Path(__file__).resolve().parent / "data"


def data_roots() -> list[Path]:
    raw = os.environ.get("PARETONAS_DATA_DIRS")
    roots = [Path(p) for p in raw.split(os.pathsep) if p] if raw else [Path("data")]
    return [r.expanduser().resolve() for r in roots] + [PACKAGED_DATA]


def resolve_data_path(path: str | os.PathLike[str], *, field: str = "path") -> Path:
    """Resolve ``path`` (relative paths are tried against each root) or raise SpaceError."""
    roots = data_roots()
    raw = Path(path).expanduser()
    candidates = [raw] if raw.is_absolute() else [root / raw for root in roots]
    escapes = False
    for candidate in candidates:
        resolved = candidate.resolve()
        if any(resolved.is_relative_to(root) for root in roots):
            if resolved.exists():
                return resolved
        elif candidate.exists() or raw.is_absolute() or ".." in raw.parts:
            escapes = True
    shown = ", ".join(str(r) for r in roots)
    if escapes:
        raise SpaceError(
            f"{field}: {str(path)!r} is outside the allowed data directories ({shown}); "
            "set PARETONAS_DATA_DIRS to allow another"
        )
    raise SpaceError(f"{field}: {str(path)!r} does not exist (looked under {shown})")
