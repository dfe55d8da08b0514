"""Getting events in: `ingest` (event files, as `athena ingest` takes them) and `remember` (one event,
as an assistant states it). Both keep the events in the inbox first, durably, so nothing is lost when
the database or a model server is down; the pipeline (the sensor, backfills) reads them from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from athena_assets.api.app import App
from athena_assets.defs.memory.embeddings import embed_events
from resources.llamacpp.http import LlamaCppError
from resources.memory.event_files import ParsedFile


@dataclass(frozen=True)
class IngestReport:
    """What `ingest` made of one file."""

    source: Path
    parsed: ParsedFile
    stored_as: Path | None
    already_in_inbox: bool


@dataclass(frozen=True)
class Remembered:
    """One remembered event: its id and day, and whether recall finds it already (else `note` says
    why not; the event is in the inbox either way)."""

    id: str
    day: str
    stored_in_inbox: bool
    recallable: bool
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The answer as the tools return it (`note` only when there is one)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


def ingest(app: App, files: Sequence[Path]) -> list[IngestReport]:
    """Validate `files`, record their rejected lines, and store those with valid events in the inbox
    (each file read, redacted and parsed once)."""
    resources = app.resources
    reports = []
    for source in files:
        ingested = resources.inbox.ingest(source)
        resources.memory.record_dead_letters(ingested.parsed.rejected, ingested.parsed.sha256)
        already = ingested.stored_as is not None and not ingested.is_new
        reports.append(IngestReport(source, ingested.parsed, ingested.stored_as, already))
    return reports


def remember(
    app: App,
    content: str,
    event_type: str | None = None,
    source: str | None = None,
    session_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    occurred_at: str | None = None,
) -> Remembered:
    """Keep one event: appended to the inbox (durable, idempotent on the event id), then stored and
    embedded at once by the steps the assets run, so `recall` finds it a moment later. The sensor and
    backfills later find it unchanged and its vector current: no work for them. A bad field is a
    ValueError naming it; nothing is written then."""
    record: dict[str, Any] = {
        "content": content,
        "occurred_at": occurred_at or datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    optional = {"event_type": event_type, "source": source, "session_id": session_id}
    record |= {name: value for name, value in optional.items() if value is not None}
    if metadata:
        record["metadata"] = dict(metadata)
    resources = app.resources
    event = resources.inbox.remember(record)
    kept = Remembered(event.id, event.day.isoformat(), stored_in_inbox=True, recallable=False)
    try:
        resources.memory.upsert_events([event])
        embed_events([event], resources.embeddings, resources.memory, app.vector_key())
    except (psycopg.Error, LlamaCppError, RuntimeError, OSError) as err:
        return replace(kept, note=f"kept in the inbox; the pipeline will index it later ({err})")
    return replace(kept, recallable=True)
