"""Patterns: the knowledge consolidation found (title, kind, description, support, confidence), each with
the events that are its evidence, read from the store the asset writes (`athena patterns`, the MCP
`patterns` tool). Knowledge changes: a pattern a later one replaced is kept with its validity
(`valid_from`, `valid_to`, `superseded_by`) and shown only when asked for, or as of a day it held."""

from __future__ import annotations

from datetime import date
from typing import Any

from athena_assets.api.app import App
from resources.memory.pattern_records import PatternRecord
from resources.memory.pattern_store import PatternStore
from resources.memory.recall_scope import RecallScope


def patterns(
    app: App,
    since: date | None = None,
    kind: str | None = None,
    scope: RecallScope | None = None,
    as_of: date | None = None,
    include_superseded: bool = False,
) -> list[PatternRecord]:
    """Current patterns last seen on or after `since` (all when None), of `kind` (any when None), with
    evidence in `scope` (any when None), most supported first. `as_of` gives those current at the end of
    that day instead; `include_superseded` every pattern, replaced ones too (see `valid_to`)."""
    memory = app.resources.memory
    stored = PatternStore.beside(memory).patterns(since, as_of, include_superseded)
    found = [p for p in stored if kind in (None, p.kind)]
    if scope is not None and not scope.empty:
        inside = memory.in_scope(sorted({i for p in found for i in p.evidence_event_ids}), scope)
        found = [p for p in found if inside.intersection(p.evidence_event_ids)]
    return found


def patterns_json(found: list[PatternRecord]) -> list[dict[str, Any]]:
    """`found` as JSON-ready dicts, each with its evidence events' ids and contents."""
    return [
        pattern.to_json()
        | {"evidence": [{"event_id": e.event_id, "content": e.content} for e in pattern.evidence]}
        for pattern in found
    ]
