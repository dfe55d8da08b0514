"""The memory as tools for an assistant: remember, recall, patterns, context.

Plain Python over the code location's resources, shared by the MCP server (`server.py`) and the seed's
HTTP tools (`legacy.py`); every result is JSON-ready. Bad input raises `ValueError` whose message names
the field and the fix; nothing is written before the input is valid.

`remember` appends the event to the inbox (durable, idempotent on the event id) and then stores and
embeds it at once, so `recall` finds it a moment later; the sensor and backfills later process it like
any other event (an unchanged event and its current vector are no work for them). When the database or
the embedding server is down, the event is still kept in the inbox and the answer says so.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from athena_assets.cli.instance import open_instance
from athena_assets.cli.memory_api import recall_with
from athena_assets.defs.memory.embeddings import embed_events
from athena_assets.defs.models.assets import model_sha256
from athena_assets.defs.resources import AthenaResources
from resources.llamacpp.http import LlamaCppError
from resources.memory.pattern_store import PatternStore
from resources.memory.recall import MODES, scope_of
from resources.settings import Settings

MAX_K = 100


@dataclass
class MemoryTools:
    """The tools over one deployment's resources; the embedding model's sha256 is looked up once."""

    settings: Settings
    resources: AthenaResources = field(init=False)
    pattern_store: PatternStore = field(init=False)
    _model_sha256: str | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.resources = AthenaResources.for_direct_use(self.settings)
        self.pattern_store = PatternStore.beside(self.resources.memory)

    def embedding_model(self) -> str:
        """The sha256 of the embedding model the stored vectors belong to (read once)."""
        with self._lock:
            if self._model_sha256 is None:
                with open_instance(self.settings) as instance:
                    self._model_sha256 = model_sha256(instance, "embedding")
            return self._model_sha256

    def remember(
        self,
        content: str,
        event_type: str | None = None,
        source: str | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        occurred_at: str | None = None,
    ) -> dict[str, Any]:
        """Keep one event; returns its id, day, and whether it can be recalled already."""
        record: dict[str, Any] = {
            "content": content,
            "occurred_at": occurred_at or datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        optional = {"event_type": event_type, "source": source, "session_id": session_id}
        record |= {name: value for name, value in optional.items() if value is not None}
        if metadata:
            record["metadata"] = dict(metadata)
        event = self.resources.inbox.remember(record)
        answer = {"id": event.id, "day": event.day.isoformat(), "stored_in_inbox": True, "recallable": False}
        memory = self.resources.memory
        try:
            memory.upsert_events([event])
            embed_events([event], self.resources.embeddings, memory, self.embedding_model())
        except (psycopg.Error, LlamaCppError, RuntimeError) as err:
            answer["note"] = f"kept in the inbox; the pipeline will index it later ({err})"
            return answer
        answer["recallable"] = True
        return answer

    def recall(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        source: str | None = None,
        session_id: str | None = None,
        event_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The `k` events nearest to `query` within the scope, best first."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query is empty; say what to look for")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        scope = scope_of(source, session_id, event_type, since, until, where)
        model = self.embedding_model()
        hits = recall_with(self.resources, model, query, k, mode, scope)  # type: ignore[arg-type]  # checked
        return [hit.to_json() for hit in hits]

    def patterns(
        self,
        since: str | None = None,
        kind: str | None = None,
        source: str | None = None,
        session_id: str | None = None,
        event_type: str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Consolidated patterns last seen on or after `since`, of `kind`, with evidence in the scope."""
        first = _day(since, "since") if since else None
        scope = scope_of(source, session_id, event_type, None, None, where)
        memory = self.resources.memory
        found = [p for p in self.pattern_store.patterns(first) if kind in (None, p.kind)]
        if not scope.empty:
            ids = {event_id for pattern in found for event_id in pattern.evidence_event_ids}
            inside = memory.in_scope(sorted(ids), scope)
            found = [p for p in found if inside.intersection(p.evidence_event_ids)]
        return [
            pattern.to_json()
            | {"evidence": [{"event_id": e.event_id, "content": e.content} for e in pattern.evidence]}
            for pattern in found
        ]

    def context(self, day: str | None = None) -> dict[str, Any]:
        """The compressed Claude prompt of `day` (default: the latest day that has one) and its figures."""
        wanted = _day(day, "day") if day else None
        found = self.resources.prompt_store.compressed(wanted)
        if found is None:
            which = f"for {wanted}" if wanted else "yet"
            raise ValueError(f"no compressed prompt {which}; run the compressed_prompts asset for that day")
        text, figures = found
        return {
            "day": figures.day.isoformat(),
            "prompt": text,
            "original_tokens": figures.original_tokens,
            "compressed_tokens": figures.compressed_tokens,
            "tokens_saved": figures.tokens_saved,
            "dollars_saved": figures.dollars_saved,
            "method": figures.method,
        }


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a day; write it as 2026-11-20") from None
