"""Pure consolidation logic: clustering event vectors, fitting a cluster into the prompt budget, and
turning the model's answer (local labels) back into patterns with evidence event ids.

No I/O here, so every rule is tested with small arrays (athena_assets_tests/consolidation/test_clustering.py).
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from athena_assets.knowledge.cluster_prompt import CONFIDENCE_LEVELS, KINDS
from resources.numeric import unit_rows


@dataclass(frozen=True)
class Cluster:
    """Events similar enough to be consolidated together.

    `member_ids` keep the input (chronological) order; `by_centrality` lists the same ids, the one most
    similar to the cluster's mean direction first (what a too-small prompt budget keeps).
    """

    key: str
    member_ids: tuple[str, ...]
    by_centrality: tuple[str, ...]

    @property
    def seed(self) -> int:
        """A sampling seed derived from the members: the same cluster is always asked the same way."""
        return int(self.key[:8], 16)


@dataclass(frozen=True)
class PatternDraft:
    """A pattern as the model stated it, its evidence mapped back from labels to event ids, or as the
    extractive fallback built it from the events (`method`)."""

    title: str
    description: str
    kind: str
    confidence: float
    evidence_ids: tuple[str, ...]
    method: str = "llm"


@dataclass(frozen=True)
class MappedAnswer:
    """The usable patterns of one answer, and what was dropped on the way."""

    drafts: tuple[PatternDraft, ...]
    evidence_dropped: int
    discarded: int


def cluster_key(member_ids: Sequence[str]) -> str:
    """sha256 of the sorted member ids: the identity of a cluster across runs."""
    return hashlib.sha256("\n".join(sorted(member_ids)).encode()).hexdigest()


def evidence_centroid(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The unit-length mean direction of the evidence events' vectors (float32, as pgvector stores it)."""
    mean = unit_rows(np.stack(vectors)).sum(axis=0, keepdims=True)
    return unit_rows(mean)[0].astype(np.float32)


def joining(
    day_vectors: np.ndarray,
    earlier_vectors: np.ndarray,
    recent: np.ndarray,
    threshold: float,
    recurring_threshold: float,
) -> np.ndarray:
    """A mask of the earlier events that may join the day's clustering: a `recent` one (of the
    look-back) whose cosine similarity to some event of the day is >= `threshold`, and any one that
    near-repeats an event of the day (>= `recurring_threshold`).

    Only these can end up in a cluster with the day's events, so the window adds a handful of rows to
    the clustering instead of whole days.
    """
    if len(day_vectors) == 0 or len(earlier_vectors) == 0:
        return np.zeros(len(earlier_vectors), dtype=bool)
    closest = (unit_rows(earlier_vectors) @ unit_rows(day_vectors).T).max(axis=1)
    return ((closest >= threshold) & recent) | (closest >= recurring_threshold)


def cluster_events(
    ids: Sequence[str],
    vectors: np.ndarray,
    in_partition: Sequence[bool],
    threshold: float,
    min_size: int,
    days: Sequence[date] | None = None,
    recurring_threshold: float | None = None,
) -> list[Cluster]:
    """Clusters of at least `min_size` events whose average pairwise cosine similarity is >= `threshold`.

    With `days` and `recurring_threshold`, a smaller group of at least two events is kept too when its
    events fall on different days and are near-repeats of each other (average similarity >=
    `recurring_threshold`): the same fix applied again a week later, a preference stated twice. Such a
    pair recurs, so it is a theme; a one-off event never has a near-repeat.

    Average-linkage agglomerative clustering: unlike single linkage it does not chain a long path of
    loosely related events into one cluster, and unlike k-means it needs no number of clusters. Only
    clusters with at least one event of the partition (`in_partition`) are returned: clusters of look-back
    events alone belong to their own days. Deterministic for a given input order; clusters come out in
    the order of their earliest member.
    """
    lengths = {len(ids), len(vectors), len(in_partition), len(ids if days is None else days)}
    if len(lengths) != 1:
        raise ValueError("ids, vectors, in_partition and days must have the same length")
    if not 0.0 < threshold <= 1.0 or min_size < 2:
        raise ValueError(f"threshold must be in (0, 1] and min_size >= 2, got {threshold}, {min_size}")
    recurring = days is not None and recurring_threshold is not None
    if len(ids) < (2 if recurring else min_size):
        return []
    # Imported here: scikit-learn takes about 2 s to import, which every run loading the definitions
    # would pay (see `stop_words.py`).
    from sklearn.cluster import AgglomerativeClustering

    matrix = unit_rows(vectors)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=1.0 - threshold
    ).fit_predict(matrix)
    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(int(label), []).append(index)
    clusters = []
    for indices in sorted(members.values(), key=lambda rows: rows[0]):
        if not any(in_partition[i] for i in indices):
            continue
        if len(indices) < min_size and not (
            recurring and _recurs(indices, matrix, days, recurring_threshold)  # type: ignore[arg-type]
        ):
            continue
        member_ids = tuple(ids[i] for i in indices)
        centroid = unit_rows(matrix[indices].sum(axis=0, keepdims=True))[0]
        closeness = matrix[indices] @ centroid
        order = sorted(range(len(indices)), key=lambda j: (-round(float(closeness[j]), 9), member_ids[j]))
        clusters.append(Cluster(cluster_key(member_ids), member_ids, tuple(member_ids[j] for j in order)))
    return clusters


def _recurs(indices: Sequence[int], matrix: np.ndarray, days: Sequence[date], threshold: float) -> bool:
    """Whether the events at `indices` (at least two) span several days and nearly repeat each other."""
    if len(indices) < 2 or len({days[i] for i in indices}) < 2:
        return False
    similarity = matrix[indices] @ matrix[indices].T
    pairs = len(indices) * (len(indices) - 1)
    return float(similarity.sum() - np.trace(similarity)) / pairs >= threshold


def map_answer(parsed: Any, label_ids: Mapping[str, str]) -> MappedAnswer:
    """The patterns of a parsed answer with evidence labels mapped to event ids.

    Labels that are not in `label_ids` (not events of the cluster) are dropped and counted; a pattern with
    no evidence left, a blank title or description, or an unknown kind is discarded; a repeat of an
    earlier pattern (same title and description) is merged into it and counted as discarded too.
    """
    drafts: dict[tuple[str, str], PatternDraft] = {}
    dropped = discarded = 0
    items = parsed.get("patterns", []) if isinstance(parsed, dict) else []
    for item in items:
        labels = [str(label) for label in item.get("evidence", [])] if isinstance(item, dict) else []
        known = [label_ids[label] for label in labels if label in label_ids]
        dropped += len(labels) - len(known)
        title = " ".join(str(item.get("title", "")).split()) if isinstance(item, dict) else ""
        description = " ".join(str(item.get("description", "")).split()) if isinstance(item, dict) else ""
        kind = item.get("kind") if isinstance(item, dict) else None
        if not known or not title or not description or kind not in KINDS:
            discarded += 1
            continue
        key = (title.casefold(), description.casefold())
        confidence = CONFIDENCE_LEVELS.get(str(item.get("confidence")), CONFIDENCE_LEVELS["low"])
        if key in drafts:
            earlier = drafts[key]
            evidence = tuple(dict.fromkeys([*earlier.evidence_ids, *known]))
            drafts[key] = PatternDraft(
                earlier.title, earlier.description, earlier.kind, earlier.confidence, evidence
            )
            discarded += 1
            continue
        drafts[key] = PatternDraft(title, description, str(kind), confidence, tuple(dict.fromkeys(known)))
    return MappedAnswer(tuple(drafts.values()), dropped, discarded)
