"""Hybrid recall's fusion of its two branches, by score and by how sure each branch is.

Each branch's scores are put on a 0..1 scale of their own (cosine similarities and BM25 sums are not
comparable raw), then added with a weight per query: the branch's prior times its confidence, the
z-score of its best hit among its first `CONFIDENCE_DEPTH`. A branch whose best hit stands out from the
rest weighs more for that query; one whose hits are all alike (a question that matches only common
words, or only generic small talk in meaning) weighs less.

The scales differ because the scores do. A word score of 0 means no word in common, so word scores are
shares of the best one: an event that holds only a word many events share stays near 0. Cosine
similarity has no such zero, so vector scores are mapped by their distribution (the mean three standard
deviations either side maps to 0..1). An event beyond the vector branch's candidates gets the last of
them, not 0: meaning has not judged it. These two replaced a rule that mapped word scores by their
distribution too and gave 0 beyond the vector candidates: events holding only common words sat near the
middle of the word scale and outranked one whose rare words the question repeats (a question's second
turn of evidence, on the echoed conversation history). The word branch judges every candidate: a vector
candidate beyond its best carries its word score too (`recall._HYBRID_CANDIDATES`), so copies of one
statement that the word branch's limit cut apart score alike, and 0 from it means no query word.

Why not reciprocal-rank fusion with equal weights (what hybrid did before): ranks throw away how far
ahead a branch's best hit is; on conversations embedded without their speaker the word branch was the
stronger one, and RRF pulled hybrid below it (0.312 vs 0.434 recall@5 on `benchmarks/recall_quality.py`'s
conversation history). The prior and the depth were chosen on this project's own histories, all of them
reported in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

# The word branch's share when both branches are as sure: neither is favoured. Measured with word scores
# as shares of the best and the last vector candidate's value beyond them, on four histories (facts,
# turns, the conversation and the same conversation asked in the evidence's words), conversation / echoed
# scoped recall@5: 0.4 0.744 / 0.962, 0.5 0.759 / 0.968, 0.6 0.750 / 0.972, 0.7 0.744 / 0.975. At 0.5 one
# kind of question is below its better branch (echoed multi-turn, 0.889 vs 0.917: one turn of 72); at
# 0.6 none scoped, but unscoped conversation multi-turn questions fall below vector (0.694 vs 0.778), and
# the demo's "the embedding server refused an input that was too long" ranks "ruff: a line too long"
# above the batch-size fix (docs/benchmarks.md).
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
    """Vector `scores` mapped so the mean of the branch's observations (`_observed`) minus three
    standard deviations is 0 and plus three is 1."""
    if not scores:
        return {}
    values = _observed(scores)
    mean, spread = statistics.fmean(values), statistics.pstdev(values)
    if spread == 0:
        return dict.fromkeys(scores, 0.5)
    return {key: (value - mean + 3 * spread) / (6 * spread) for key, value in scores.items()}


def shares_of_best(scores: Mapping[str, float]) -> dict[str, float]:
    """Word `scores` as shares of the best (1 for the best, 0 for no word in common)."""
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return dict.fromkeys(scores, 0.0)
    return {key: value / best for key, value in scores.items()}


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


def fused(vector: Mapping[str, float], text: Mapping[str, float], vector_limit: int) -> dict[str, float]:
    """Every candidate's fused score from its vector and text scores (by event id; absent: not found
    by that branch). `vector_limit` is how many candidates the vector branch was asked for: when it
    returned that many, an event beyond them gets the last one's scale value; when fewer, it returned
    every vector of the scope, and an event without one gets 0."""
    weight = text_weight(vector, text)
    by_vector, by_text = normalised(vector), shares_of_best(text)
    beyond = min(by_vector.values()) if len(by_vector) >= vector_limit else 0.0
    return {
        key: (1 - weight) * by_vector.get(key, beyond) + weight * by_text.get(key, 0.0)
        for key in by_vector.keys() | by_text.keys()
    }
