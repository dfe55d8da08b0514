"""The pattern store's rows as frozen records: event vectors to cluster, observations to write, patterns
with their evidence, known patterns and the store's checks (the tables and their SQL: `pattern_schema.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EventVector:
    """An event with the stored vector of its current content (for the current embedding model)."""

    id: str
    day: date
    occurred_at: datetime
    content: str
    vector: np.ndarray
    event_type: str | None = None


@dataclass(frozen=True)
class NewObservation:
    """One pattern the reasoning model found in one cluster of one partition day, ready to store.

    (`day`, `cluster_key`, `pattern_index`) is its key: the cluster key is the sha256 of the cluster's
    sorted member ids, so the same cluster on a re-run replaces exactly this row.
    """

    day: date
    cluster_key: str
    pattern_index: int
    title: str
    description: str
    kind: str
    confidence: float
    evidence_ids: tuple[str, ...]
    embedding: Sequence[float] | np.ndarray
    evidence_centroid: Sequence[float] | np.ndarray
    model_sha256: str
    prompt_version: str
    cluster_size: int
    # "llm": the reasoning model's answer passed the gate; "extractive": built from the events themselves.
    method: str = "llm"


@dataclass(frozen=True)
class DayWrite:
    """What storing one day's observations did to `semantic_patterns`."""

    observations: int
    new: int
    reinforced: int
    removed: int


@dataclass(frozen=True)
class EvidenceEvent:
    """An event cited as evidence of a pattern."""

    event_id: str
    occurred_at: datetime
    content: str


@dataclass(frozen=True)
class PatternRecord:
    """A stored semantic pattern with its evidence events (oldest first)."""

    pattern_id: str
    title: str
    description: str
    kind: str
    confidence: float
    support: int
    first_seen: datetime
    last_seen: datetime
    method: str = "llm"
    descriptions: list[dict[str, Any]] = field(default_factory=list)
    evidence: tuple[EvidenceEvent, ...] = ()

    @property
    def evidence_event_ids(self) -> list[str]:
        """The ids of the evidence events, oldest first."""
        return [event.event_id for event in self.evidence]

    def to_json(self) -> dict[str, Any]:
        """The `athena patterns --json` object of this pattern."""
        return {
            "pattern_id": self.pattern_id,
            "title": self.title,
            "description": self.description,
            "kind": self.kind,
            "confidence": self.confidence,
            "support": self.support,
            "method": self.method,
            "evidence_event_ids": self.evidence_event_ids,
        }


@dataclass(frozen=True)
class KnownPattern:
    """A pattern of earlier days and how many of the asked-about events it already cites."""

    pattern_id: str
    title: str
    description: str
    kind: str
    confidence: float
    method: str
    shared: int
    # The distinct events the pattern cites on those earlier days.
    evidence: int
    # Cosine similarity of the pattern's evidence centroid and the asked-about events' centroid.
    similarity: float


@dataclass(frozen=True)
class PatternCheck:
    """Provenance of the patterns (the asset checks' evidence)."""

    patterns: int
    without_evidence: int
    day_observations: int
    evidence_outside_window: int
    # Patterns of one cluster of the day citing exactly the evidence of another (the gate forbids it).
    same_evidence_duplicates: int = 0
