"""Archs as tuples of choice indices, and the candidate pools the surrogate strategy scores.

Working on index tuples (not ``Arch`` objects) keeps de-duplication and mutation cheap; the
space's own ``encode`` is still what the predictors see, cached per tuple.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np

from search_spaces.base import Arch, Dim

Index = tuple[int, ...]


class ArchSpace(Protocol):
    """What the surrogate strategy reads of a search space (a ``SearchSpace`` has it all)."""

    def dimensions(self) -> Mapping[str, Dim]: ...

    def encode(self, arch: Mapping[str, Any]) -> np.ndarray: ...

    def enumerate_archs(self) -> list[Arch] | None: ...


class IndexedSpace:
    """A space seen as a grid of choice indices, with cached encodings.

    ``restrict`` limits every dimension to a subset of its choices; random draws, neighbours and
    enumeration then stay inside it.
    """

    def __init__(self, space: ArchSpace):
        self.space = space
        self.dims = dict(space.dimensions())
        self.names = list(self.dims)
        self.sizes = np.array([len(d.choices) for d in self.dims.values()], dtype=np.int64)
        self._lookup = [
            {_hashable(c): i for i, c in enumerate(d.choices)} for d in self.dims.values()
        ]
        self._enc: dict[Index, np.ndarray] = {}
        # A finite list of evaluable archs (a table's rows), when the space has one.
        listed = space.enumerate_archs()
        self._all: list[Index] | None = None
        if listed is not None:
            found = (self.index_of(a) for a in listed)
            self._all = sorted({i for i in found if i is not None})
        self.allowed: list[list[int]] | None = None
        self.restrict(None)

    def restrict(self, allowed: list[list[int]] | None) -> None:
        """Allowed choice indices per dimension (None: all)."""
        allowed = [list(a) for a in allowed] if allowed else [list(range(int(n)))
                                                              for n in self.sizes]
        if allowed == self.allowed:
            return
        self.allowed = allowed
        self._allowed_sets = [set(a) for a in self.allowed]
        self.universe: list[Index] | None = None
        self._members: set[Index] | None = None
        if self._all is not None:
            self.universe = [i for i in self._all if self.contains(i)]
            self._members = set(self.universe)

    def contains(self, idx: Index) -> bool:
        return all(v in s for v, s in zip(idx, self._allowed_sets, strict=True))

    def evaluable(self, idx: Index) -> bool:
        """Allowed, and a row of the table when the space lists its archs."""
        return self.contains(idx) and (self._members is None or idx in self._members)

    @property
    def size(self) -> int:
        if self.universe is not None:
            return len(self.universe)
        return int(np.prod([float(len(a)) for a in self.allowed]))

    def index_of(self, params: Mapping[str, Any]) -> Index | None:
        """Index tuple of a params dict, or None when a value is not in the space."""
        try:
            return tuple(
                self._lookup[j][_hashable(params[n])] for j, n in enumerate(self.names)
            )
        except KeyError:
            return None

    def index_of_choice(self, dim: int, value: Any) -> int | None:
        return self._lookup[dim].get(_hashable(value))

    def arch(self, idx: Index) -> Arch:
        return Arch({n: d.choices[i] for (n, d), i in zip(self.dims.items(), idx, strict=True)})

    def params(self, idx: Index) -> dict[str, Any]:
        return self.arch(idx).to_dict()

    def encode(self, idxs: Iterable[Index]) -> np.ndarray:
        rows = []
        for idx in idxs:
            vec = self._enc.get(idx)
            if vec is None:
                vec = self._enc[idx] = np.asarray(self.space.encode(self.arch(idx)), float)
            rows.append(vec)
        return np.vstack(rows)

    def random(self, rng: np.random.Generator, n: int) -> list[Index]:
        if self.universe is not None:
            if not self.universe:
                return []
            picks = rng.integers(0, len(self.universe), size=n)
            return [self.universe[int(k)] for k in picks]
        cols = [np.asarray(a)[rng.integers(0, len(a), size=n)] for a in self.allowed]
        return [tuple(int(c[r]) for c in cols) for r in range(n)]

    def enumerate_all(self) -> list[Index]:
        if self.universe is not None:
            return list(self.universe)
        grids = np.meshgrid(*[np.asarray(a) for a in self.allowed], indexing="ij")
        flat = np.stack([g.ravel() for g in grids], axis=1)
        return [tuple(int(v) for v in row) for row in flat]

    def neighbours(self, idx: Index) -> list[Index]:
        """Every allowed (and evaluable) arch that differs from ``idx`` in one dimension."""
        out = []
        for j, choices in enumerate(self.allowed):
            for v in choices:
                if v != idx[j]:
                    out.append(idx[:j] + (v,) + idx[j + 1 :])
        if self._members is not None:
            out = [i for i in out if i in self._members]
        return out


def _hashable(value: Any) -> Any:
    # 1 and True hash alike; keep bools apart so a bool dim never matches an int.
    return (type(value) is bool, value)


def candidate_pool(
    ispace: IndexedSpace,
    parents: list[Index],
    *,
    exclude: set[Index],
    n_random: int,
    rng: np.random.Generator,
) -> list[Index]:
    """Neighbours of ``parents`` plus ``n_random`` random archs (the whole space when it is
    that small), minus ``exclude``, de-duplicated, in a stable order."""
    seen: set[Index] = set(exclude)
    pool: list[Index] = []

    def add(items: Iterable[Index]) -> None:
        for idx in items:
            if idx not in seen and ispace.contains(idx):
                seen.add(idx)
                pool.append(idx)

    for parent in parents:
        add(ispace.neighbours(parent))
    add(ispace.enumerate_all() if ispace.size <= n_random else ispace.random(rng, n_random))
    return pool
