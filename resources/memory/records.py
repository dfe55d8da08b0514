"""The memory store's rows as frozen records: events, dead letters, embeddings, recall hits, checks and
statistics (the tables and their SQL: `schema.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class UpsertCounts:
    """How many events an upsert inserted, changed, or found already identical."""

    new: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored in `episodic_events`."""

    id: str
    occurred_at: datetime
    day: date
    content: str
    content_sha256: str
    event_type: str | None
    source: str | None
    session_id: str | None
    metadata: dict[str, Any]
    source_file: str
    source_line: int


@dataclass(frozen=True)
class DeadLetter:
    """A rejected line as stored in `dead_letters`."""

    file: str
    file_sha256: str
    line: int
    excerpt: str
    reason: str
    day: date | None
    recorded_at: datetime


@dataclass(frozen=True)
class EmbeddingRow:
    """One vector to store for (event, model); `content_sha256` is the content it was computed from."""

    event_id: str
    model_sha256: str
    content_sha256: str
    embedding: Sequence[float] | np.ndarray
    tokens: int
    split: bool = False


@dataclass(frozen=True)
class EmbeddingCheck:
    """Vector coverage and health of a day range for one model (the asset checks' evidence)."""

    events: int
    with_vector: int
    missing_ids: list[str] = field(default_factory=list)
    wrong_dimension: int = 0
    non_finite: int = 0
    zero_norm: int = 0

    @property
    def missing(self) -> int:
        """Events without a vector of their current content for this model."""
        return self.events - self.with_vector

    @property
    def passed(self) -> bool:
        """Every event has a current vector, of the model's dimension, finite and non-zero."""
        return self.missing == 0 and self.wrong_dimension == self.non_finite == self.zero_norm == 0


# The event columns a recall hit carries, as the recall queries select them (events under alias `e`).
HIT_FIELDS = ("occurred_at", "content", "event_type", "source", "session_id", "metadata")
HIT_COLUMNS = ", ".join(f"e.{name}" for name in HIT_FIELDS)


@dataclass(frozen=True)
class RecallHit:
    """One recalled event: `score` is cosine similarity (vector mode), the BM25-style word score (text)
    or the fused score (hybrid, `fusion.py`: mostly 0..1, above 1 for a hit far ahead of the rest or
    from the period the question names); the ranks say where each branch placed it."""

    event_id: str
    score: float
    occurred_at: datetime
    content: str
    vector_rank: int | None
    text_rank: int | None
    event_type: str | None = None
    source: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this hit (CLI `--json`, the MCP tools)."""
        return {
            "event_id": self.event_id,
            "score": round(self.score, 6),
            "occurred_at": self.occurred_at.isoformat(),
            "content": self.content,
            "event_type": self.event_type,
            "source": self.source,
            "session_id": self.session_id,
            "metadata": self.metadata,
            "vector_rank": self.vector_rank,
            "text_rank": self.text_rank,
        }


@dataclass(frozen=True)
class RedactionSummary:
    """Stored events holding a `[REDACTED:<kind>]` placeholder, and how many placeholders in all."""

    events: int
    placeholders: int


@dataclass(frozen=True)
class StoreStats:
    """Row counts of the store, and the number of distinct event days."""

    events: int
    embeddings: int
    dead_letters: int
    days: int
