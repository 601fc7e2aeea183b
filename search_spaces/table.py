"""The ``table`` space: a precomputed benchmark (NAS-Bench style) where every trial is a lookup.

Options: ``path`` to a CSV (optionally gzipped) under the data directories; ``params`` (the
categorical parameter columns); ``metrics`` (numeric columns usable as objectives; default: every
other numeric column); ``filter`` (column -> value, e.g. ``{"dataset": "cora"}``).
"""

from __future__ import annotations

import csv
import gzip
import io
import threading
import zlib
from pathlib import Path
from typing import Any

from pydantic import Field

from search_spaces.base import (
    Arch,
    ArchError,
    ChoiceValue,
    Dim,
    EvalContext,
    MetricInfo,
    SearchSpace,
    SpaceError,
    SpaceOptions,
)
from search_spaces.paths import open_data_file, read_capped, resolve_data_path

_FIELD = "search_space.options.path"

_MINIMIZED_HINTS = ("latency", "params", "macs", "flops", "time", "energy", "size", "bytes")


class TableOptions(SpaceOptions):
    path: str = Field(description="CSV or CSV.gz under a data directory")
    params: list[str] = Field(min_length=1, description="parameter (dimension) columns")
    metrics: list[str] | None = Field(
        default=None, description="numeric metric columns (default: all other numeric columns)"
    )
    filter: dict[str, str | int | float] = Field(
        default_factory=dict, description="keep rows whose column equals the value"
    )


def _parse(value: str) -> ChoiceValue:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


class _Table:
    """A parsed table: dims and a lookup from parameter tuple to metric dict."""

    def __init__(self, path: Path, options: TableOptions):
        try:  # never blocks on a special file, never reads more than the size cap
            with open_data_file(path, field=_FIELD) as raw:
                if path.suffix == ".gz":
                    with gzip.GzipFile(fileobj=raw) as unzipped:
                        data = read_capped(unzipped, name=path.name, field=_FIELD)
                else:
                    data = read_capped(raw, name=path.name, field=_FIELD)
            reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
            header = list(reader.fieldnames or [])
            rows = list(reader)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
            raise SpaceError(f"path: cannot read {path.name} as CSV: {exc}") from exc
        wanted = list(options.params) + list(options.metrics or []) + list(options.filter)
        missing = [c for c in wanted if c not in header]
        if missing:
            raise SpaceError(f"{path.name} lacks column(s) {missing}; it has {header}")
        for col, val in options.filter.items():
            if isinstance(val, str):  # compare raw text: parsing 200k cells is slow
                rows = [r for r in rows if r[col] == val]
            else:
                rows = [r for r in rows if _parse(r[col]) == val]
        if not rows:
            raise SpaceError(f"filter: no row of {path.name} matches {options.filter}")
        metric_cols = options.metrics or [
            c for c in header if c not in options.params and c not in options.filter
            and all(isinstance(_parse(r[c]), int | float) for r in rows[:50])
        ]
        self.metric_names = metric_cols
        self.lookup: dict[tuple, dict[str, float]] = {}
        for i, row in enumerate(rows):
            key = tuple(_parse(row[p]) for p in options.params)
            try:
                self.lookup[key] = {m: float(row[m]) for m in metric_cols}
            except ValueError as exc:
                raise SpaceError(f"{path.name} row {i + 2}: non-numeric metric: {exc}") from exc
        self.dims: dict[str, Dim] = {}
        for j, p in enumerate(options.params):
            values = sorted({k[j] for k in self.lookup}, key=lambda v: (isinstance(v, str), v))
            numeric = all(isinstance(v, int | float) for v in values)
            self.dims[p] = Dim(tuple(values), ordinal=numeric)


_CACHE: dict[tuple, _Table] = {}
_CACHE_LOCK = threading.Lock()


def _load(path: Path, options: TableOptions) -> _Table:
    key = (str(path), path.stat().st_mtime_ns, options.model_dump_json())
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _Table(path, options)
        return _CACHE[key]


class TableSpace(SearchSpace):
    name = "table"
    Options = TableOptions
    has_models = False

    def __init__(self, options: TableOptions | dict[str, Any] | None = None):
        super().__init__(options)
        self.path = resolve_data_path(self.options.path, field=_FIELD, kind="file")
        self.table = _load(self.path, self.options)

    def dimensions(self) -> dict[str, Dim]:
        return self.table.dims

    def metrics(self) -> dict[str, MetricInfo]:
        return {
            m: MetricInfo(
                "minimize" if any(h in m for h in _MINIMIZED_HINTS) else "maximize",
                doc=f"column {m!r} of {self.path.name}",
            )
            for m in self.table.metric_names
        }

    def enumerate_archs(self) -> list[Arch]:
        params = self.options.params
        return [Arch(dict(zip(params, key, strict=True))) for key in self.table.lookup]

    def row(self, arch: Arch) -> dict[str, float] | None:
        return self.table.lookup.get(tuple(arch[p] for p in self.options.params))

    def is_valid(self, arch: Arch) -> bool:
        """Only archs with a row: the table may not cover the full product of its dims."""
        return self.row(arch) is not None

    def evaluate(
        self, arch: Arch, metrics: list[str], *, context: EvalContext | None = None
    ) -> dict[str, float]:
        if not all(m in self.table.metric_names for m in metrics):  # the hot path skips it
            self.check_metrics(metrics)
        row = self.row(arch)
        if row is None:
            raise ArchError(f"no row of {self.path.name} for arch {arch.to_dict()}")
        return {m: row[m] for m in metrics}
