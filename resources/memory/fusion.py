"""Hybrid recall's fusion of its two branches, by score and by how sure each branch is.

Each branch's scores are put on one scale by their own distribution (the mean three standard deviations
either side maps to 0..1: cosine similarities and BM25 sums are not comparable raw), then added with a
weight per query: the branch's prior times its confidence, the z-score of its best hit among its first
`CONFIDENCE_DEPTH`. A branch whose best hit stands out from the rest weighs more for that query; one
whose hits are all alike (a question that matches only common words, or only generic small talk in
meaning) weighs less. An event only one branch found gets 0 from the other.

Why not reciprocal-rank fusion with equal weights (what hybrid did before): ranks throw away how far
ahead a branch's best hit is; on conversations embedded without their speaker the word branch was the
stronger one, and RRF pulled hybrid below it (0.312 vs 0.434 recall@5 on `benchmarks/recall_quality.py`'s
conversation history). The prior and the depth were chosen on this project's own histories, all of them
reported in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

# The word branch's share when both branches are as sure: neither is favoured. Measured with turns
# embedded with their speaker and date (the default), conversation scoped recall@5 / @10: 0.3 0.718 /
# 0.791, 0.4 0.725 / 0.791, 0.5 0.737 / 0.810, 0.65 0.741 / 0.807, 0.8 0.731 / 0.797; above 0.5 the
# word branch's sure hit (the friend's question) pushes the reply that answers below the vector branch's
# rank (exchange questions @5: 0.361 at 0.5 as vector alone, 0.306 at 0.8). 0.8 was best while turns were
# embedded without their speaker, when the vector branch was the weaker one.
TEXT_PRIOR = 0.5
# How many of a branch's best hits its confidence looks at.
CONFIDENCE_DEPTH = 10
# A branch with no hit that stands out still counts a little: its weight never reaches zero.
_MIN_CONFIDENCE = 1e-3


def _observed(scores: Mapping[str, float]) -> list[float]:
    """A branch's scores, and 0 (found nothing) for each of its first `CONFIDENCE_DEPTH` places it left
    empty: a word branch that found one event found it among nothing, the surest a branch can be
    (measured: neutral on the conversation history, +0.006 / +0.010 recall@5 on facts / turns)."""
    values = list(scores.values())
    return values + [0.0] * (CONFIDENCE_DEPTH - len(values))


def normalised(scores: Mapping[str, float]) -> dict[str, float]:
    """`scores` mapped so the mean of the branch's observations (`_observed`) minus three standard
    deviations is 0 and plus three is 1."""
    if not scores:
        return {}
    values = _observed(scores)
    mean, spread = statistics.fmean(values), statistics.pstdev(values)
    if spread == 0:
        return dict.fromkeys(scores, 0.5)
    return {key: (value - mean + 3 * spread) / (6 * spread) for key, value in scores.items()}


def confidence(scores: Mapping[str, float]) -> float:
    """How far a branch's best score stands above its first `CONFIDENCE_DEPTH` (`_observed`), in
    standard deviations: at most 3, for one hit among nothing."""
    best = sorted(_observed(scores), reverse=True)[:CONFIDENCE_DEPTH]
    spread = statistics.pstdev(best)
    if spread == 0:
        return _MIN_CONFIDENCE
    return max(_MIN_CONFIDENCE, (best[0] - statistics.fmean(best)) / spread)


def text_weight(vector: Mapping[str, float], text: Mapping[str, float]) -> float:
    """The word branch's weight for this query (the vector branch has the rest)."""
    if not text:
        return 0.0
    if not vector:
        return 1.0
    weighted_text = TEXT_PRIOR * confidence(text)
    return weighted_text / (weighted_text + (1 - TEXT_PRIOR) * confidence(vector))


def fused(vector: Mapping[str, float], text: Mapping[str, float]) -> dict[str, float]:
    """Every candidate's fused score from its vector and text scores (by event id; absent: not found
    by that branch)."""
    weight = text_weight(vector, text)
    by_vector, by_text = normalised(vector), normalised(text)
    return {
        key: (1 - weight) * by_vector.get(key, 0.0) + weight * by_text.get(key, 0.0)
        for key in by_vector.keys() | by_text.keys()
    }
