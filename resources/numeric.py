"""Small numeric helpers several parts share: nearest-rank percentiles, unit-length rows, and packing
items into a budget. Each is defined once here so the statistics and the prompts agree everywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def nearest_rank(count: int, share: float) -> int:
    """The 1-based rank of the nearest-rank percentile `share` (in (0, 1]) among `count` sorted values."""
    return max(1, math.ceil(share * count))


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with `share` of the values at or below it (0 if none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[nearest_rank(len(ordered), share) - 1])


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """`vectors` (one vector, or n x d) scaled to unit length along the last axis, as float64; zero rows
    stay zero."""
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def within_budget(costs: Sequence[int], budget: int) -> list[int]:
    """Positions of `costs` (taken in order, most wanted first) whose sum stays within `budget`.

    An item too large for what is left is skipped, so a later, smaller one can still fit.
    """
    kept, used = [], 0
    for position, cost in enumerate(costs):
        if used + cost <= budget:
            kept.append(position)
            used += cost
    return kept
