"""Archs as tuples of choice indices, and the candidate pools the surrogate strategy scores.

Working on index tuples (not ``Arch`` objects) keeps de-duplication and mutation cheap; the
space's own ``encode`` is still what the predictors see, cached per tuple.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from search_spaces.base import Arch, SearchSpace

Index = tuple[int, ...]


class IndexedSpace:
    """A ``SearchSpace`` seen as a grid of choice indices, with cached encodings.

    ``restrict`` limits every dimension to a subset of its choices, and optionally a group of
    dimensions to a list of allowed value combinations (a two-stage study's second stage takes
    the stage-1 dimensions as whole front configurations); random draws, neighbours and
    enumeration then stay inside it.
    """

    def __init__(self, space: SearchSpace):
        self.space = space
        self.dims = space.dimensions()
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
        self.restrict(None)

    def restrict(self, allowed: list[list[int]] | None,
                 combos: tuple[tuple[int, ...], list[Index]] | None = None) -> None:
        """Allowed choice indices per dimension (None: all); ``combos``: (positions of a group
        of dimensions, the allowed index tuples of that group) or None."""
        allowed = [list(a) for a in allowed] if allowed else [list(range(int(n)))
                                                              for n in self.sizes]
        if combos is not None:  # the group's dims take exactly the values its combos use
            positions, tuples = combos
            combos = (tuple(positions), list(dict.fromkeys(tuple(t) for t in tuples)))
            for k, j in enumerate(positions):
                allowed[j] = sorted({t[k] for t in combos[1]})
        if (allowed, combos) == (getattr(self, "allowed", None), getattr(self, "combos", None)):
            return
        self.allowed = allowed
        self.combos = combos
        self._allowed_sets = [set(a) for a in self.allowed]
        self._combo_set = set(combos[1]) if combos else None
        self.universe: list[Index] | None = None
        self._members: set[Index] | None = None
        if self._all is not None:
            self.universe = [i for i in self._all if self.contains(i)]
            self._members = set(self.universe)

    def contains(self, idx: Index) -> bool:
        if not all(v in s for v, s in zip(idx, self._allowed_sets, strict=True)):
            return False
        return self.combos is None or self._group(idx) in self._combo_set  # type: ignore[operator]

    def _group(self, idx: Index) -> Index:
        return tuple(idx[j] for j in self.combos[0])  # type: ignore[index]

    def _with_group(self, idx: Index, values: Index) -> Index:
        out = list(idx)
        for j, v in zip(self.combos[0], values, strict=True):  # type: ignore[index]
            out[j] = v
        return tuple(out)

    @property
    def size(self) -> int:
        if self.universe is not None:
            return len(self.universe)
        if self.combos is None:
            return int(np.prod([float(len(a)) for a in self.allowed]))
        free = [a for j, a in enumerate(self.allowed) if j not in self.combos[0]]
        return int(np.prod([float(len(a)) for a in free]) * len(self.combos[1]))

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
        out = [tuple(int(c[r]) for c in cols) for r in range(n)]
        if self.combos is not None:  # the group takes one of its combinations, uniformly
            picks = rng.integers(0, len(self.combos[1]), size=n)
            out = [self._with_group(i, self.combos[1][int(k)]) for i, k in zip(out, picks,
                                                                               strict=True)]
        return out

    def enumerate_all(self) -> list[Index]:
        if self.universe is not None:
            return list(self.universe)
        grids = np.meshgrid(*[np.asarray(a) for a in self.allowed], indexing="ij")
        if self.combos is None:
            flat = np.stack([g.ravel() for g in grids], axis=1)
            return [tuple(int(v) for v in row) for row in flat]
        # every combination of the free dims (the group's dims held at one value), then each
        # allowed combination of the group's
        first = [a[:1] if j in self.combos[0] else a for j, a in enumerate(self.allowed)]
        grids = np.meshgrid(*[np.asarray(a) for a in first], indexing="ij")
        flat = np.stack([g.ravel() for g in grids], axis=1)
        return [self._with_group(tuple(int(v) for v in row), c)
                for row in flat for c in self.combos[1]]

    def neighbours(self, idx: Index) -> list[Index]:
        """Every allowed (and evaluable) arch that differs from ``idx`` in one dimension."""
        out = []
        grouped = self.combos[0] if self.combos is not None else ()
        for j, choices in enumerate(self.allowed):
            if j in grouped:
                continue
            for v in choices:
                if v != idx[j]:
                    out.append(idx[:j] + (v,) + idx[j + 1 :])
        if self.combos is not None:  # the group moves as a whole, to another combination
            own = self._group(idx)
            out.extend(self._with_group(idx, c) for c in self.combos[1] if c != own)
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
