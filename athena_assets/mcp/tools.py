"""The memory as tools for an assistant: remember, recall, patterns, context.

Each tool maps its arguments onto one use case of the application layer (`athena_assets/api/`) and
returns JSON-ready values, shared by the MCP server (`server.py`) and the seed's HTTP tools
(`seed_http_tools.py`). Bad input raises `ValueError` whose message names the field and the fix;
nothing is written before the input is valid. When the database or the embedding server is down, a
remembered event is still kept in the inbox and the answer says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from athena_assets.api.app import App
from athena_assets.api.context import context
from athena_assets.api.ingest import remember
from athena_assets.api.patterns import patterns, patterns_json
from athena_assets.api.recall import DEFAULT_MODE, hits_json, recall, scope_of


@dataclass
class MemoryTools:
    """The tools over one deployment (`app`, whose resources a long-lived server builds once)."""

    app: App

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
        return remember(self.app, content, event_type, source, session_id, metadata, occurred_at).to_json()

    def recall(
        self,
        query: str,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        source: str | None = None,
        session_id: str | None = None,
        event_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The `k` events nearest to `query` within the scope, best first."""
        scope = scope_of(source, session_id, event_type, since, until, where)
        return hits_json(recall(self.app, query, k, mode, scope))

    def patterns(
        self,
        since: str | None = None,
        kind: str | None = None,
        source: str | None = None,
        session_id: str | None = None,
        event_type: str | None = None,
        where: Mapping[str, Any] | None = None,
        as_of: str | None = None,
        include_superseded: bool = False,
    ) -> list[dict[str, Any]]:
        """Current consolidated patterns last seen on or after `since`, of `kind`, with evidence in the
        scope; `as_of` a day: those current at its end; `include_superseded`: replaced ones too."""
        if as_of is not None and include_superseded:
            raise ValueError("as_of lists what was current on a day; leave out include_superseded")
        scope = scope_of(source, session_id, event_type, None, None, where)
        day = _day(as_of, "as_of")
        return patterns_json(patterns(self.app, _day(since, "since"), kind, scope, day, include_superseded))

    def context(self, day: str | None = None) -> dict[str, Any]:
        """The compressed Claude prompt of `day` (default: the latest day that has one) and its figures."""
        return context(self.app, _day(day, "day"))


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a day; write it as 2026-11-20") from None
