"""The pattern store's rows as frozen records: event vectors to cluster, observations to write, patterns
with their evidence, known patterns and the store's checks (the tables and their SQL: `pattern_schema.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from resources.memory.schema import checked_dimension


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
class Supersession:
    """A stored pattern that a new observation replaces: the value changed, the tool was replaced, the
    decision reversed. `changed_at` is the time of `event_id`, the first event stating the change."""

    pattern_id: str
    changed_at: datetime
    event_id: str


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
    # The patterns this observation replaces (closed in the same transaction that stores it).
    supersedes: tuple[Supersession, ...] = ()

    def checked_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(embedding, evidence centroid) as float32 arrays; a ValueError naming the pattern when one is
        not a non-zero 1-D finite vector of a dimension the store accepts."""
        vectors = []
        for name in ("embedding", "evidence_centroid"):
            vector = np.asarray(getattr(self, name), dtype=np.float32)
            if vector.ndim != 1 or vector.size == 0 or not np.isfinite(vector).all() or not vector.any():
                raise ValueError(f"the {name} of pattern {self.title!r} must be a non-zero 1-D finite vector")
            checked_dimension(vector.size)
            vectors.append(vector)
        return vectors[0], vectors[1]


@dataclass(frozen=True)
class DayWrite:
    """What storing one day's observations did to `semantic_patterns`."""

    observations: int
    new: int
    reinforced: int
    removed: int
    superseded: int = 0


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
    # Valid from its first evidence (of a replacing pattern: the first event stating the change) until
    # the first event of the pattern that replaced it, `superseded_by`; `valid_to` None while current.
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    superseded_by: str | None = None

    @property
    def current(self) -> bool:
        """Whether nothing has replaced this pattern."""
        return self.valid_to is None

    def valid_at(self, moment: datetime) -> bool:
        """Whether the pattern was the current knowledge at `moment`."""
        started = self.valid_from or self.first_seen
        return started < moment and (self.valid_to is None or self.valid_to >= moment)

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
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
            "superseded_by": self.superseded_by,
            "evidence_event_ids": self.evidence_event_ids,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


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
    # Cosine similarity of the pattern's evidence centroid and the asked-about events' centroid (of a
    # subject candidate: the greater of that and its text's similarity to the new pattern's text).
    similarity: float
    # The events it cites on those earlier days, and the contents of the latest 20 (newest first).
    evidence_ids: tuple[str, ...] = ()
    recent_evidence: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> KnownPattern:
        """The record of a row of the store's known-pattern queries (arrays come back as lists)."""
        return cls(**(row | {name: tuple(row[name]) for name in ("evidence_ids", "recent_evidence")}))


@dataclass(frozen=True)
class PatternCheck:
    """Provenance of the patterns (the asset checks' evidence)."""

    patterns: int
    without_evidence: int
    day_observations: int
    evidence_outside_window: int
    # Patterns of one cluster of the day citing exactly the evidence of another (the gate forbids it).
    same_evidence_duplicates: int = 0
