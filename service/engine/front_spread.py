"""Which front members to fine-tune, and in which order, so that any number of them covers the
front evenly (both extremes first), not only its accurate end.

The front is sorted by its first objective; ``even_positions(n, k)`` takes ``k`` equal steps
along that order (always both ends), and ``coarse_to_fine(n)`` orders all ``n`` positions so that
every prefix is spread evenly: the ends, the middle, the quarters, ... A time budget that stops
the stage after any candidate therefore still leaves an evenly covered front.
"""

from __future__ import annotations

from collections import deque


def even_positions(n: int, k: int) -> list[int]:
    """``k`` positions of ``0..n-1`` in equal steps, both ends included (all when k >= n)."""
    if k >= n:
        return list(range(n))
    if k <= 0:
        return []
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def coarse_to_fine(n: int) -> list[int]:
    """All positions of ``0..n-1``: the two ends, then the midpoint of each remaining gap,
    widest gaps first (breadth-first bisection)."""
    if n <= 0:
        return []
    order = [0] if n == 1 else [0, n - 1]
    gaps = deque([(0, n - 1)])
    while gaps:
        lo, hi = gaps.popleft()
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        order.append(mid)
        gaps.append((lo, mid))
        gaps.append((mid, hi))
    return order
