"""Which events a recall (or a patterns listing) may consider: a source, a session, an event type, a
time range and metadata (`RecallScope`), and the scope that text arguments describe (`scope_of`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

SCOPE_FIELDS: tuple[str, ...] = ("source", "session_id", "event_type", "since", "until", "where")


@dataclass(frozen=True)
class RecallScope:
    """Which events a recall may return; every field left as None (or empty) matches all events.

    `since`/`until` bound `occurred_at` (inclusive, zone-aware); `where` is metadata containment
    (`metadata @> where`, e.g. `{"repo": "athena"}`).
    """

    source: str | None = None
    session_id: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    where: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} {value.isoformat()} has no time zone; add one, e.g. +00:00 or Z")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError(f"until {self.until.isoformat()} is before since {self.since.isoformat()}")
        for key, value in self.where.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"metadata filter keys must be non-empty strings, not {key!r}")
            if not isinstance(value, str | int | float | bool) and value is not None:
                raise ValueError(f"metadata filter {key!r} must be a string, number, boolean or null")

    @property
    def empty(self) -> bool:
        """True when the scope matches every event."""
        return self == RecallScope()

    def condition(self, alias: str = "e") -> tuple[sql.Composable, dict[str, Any]]:
        """`AND ...` clauses over the events table under `alias`, and their parameters."""
        column = {name: sql.Identifier(alias, name) for name in ("source", "session_id", "event_type")}
        parts: list[sql.Composable] = []
        params: dict[str, Any] = {}
        for name in ("source", "session_id", "event_type"):
            value = getattr(self, name)
            if value is not None:
                parts.append(sql.SQL("AND {} = {}").format(column[name], sql.Placeholder(f"scope_{name}")))
                params[f"scope_{name}"] = value
        at = sql.Identifier(alias, "occurred_at")
        if self.since is not None:
            parts.append(sql.SQL("AND {} >= %(scope_since)s").format(at))
            params["scope_since"] = self.since
        if self.until is not None:
            parts.append(sql.SQL("AND {} <= %(scope_until)s").format(at))
            params["scope_until"] = self.until
        if self.where:
            parts.append(sql.SQL("AND {} @> %(scope_where)s").format(sql.Identifier(alias, "metadata")))
            params["scope_where"] = Jsonb(dict(self.where))
        return sql.SQL(" ").join(parts), params


def instant(text: str, name: str, end_of_day: bool = False) -> datetime:
    """A scope bound from text: an ISO timestamp with a zone, or a day (its start, or its end with
    `end_of_day`, in UTC)."""
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{name} {text!r} is neither a day (2026-11-20) nor a timestamp with a zone"
        ) from None
    if value.utcoffset() is None:
        raise ValueError(f"{name} {text!r} has no time zone; add one, e.g. +00:00 or Z")
    return value


def scope_of(
    source: str | None = None,
    session_id: str | None = None,
    event_type: str | None = None,
    since: str | None = None,
    until: str | None = None,
    where: Mapping[str, Any] | None = None,
) -> RecallScope:
    """The scope that the CLI's and the tools' text arguments describe (see `instant` for the bounds)."""
    return RecallScope(
        source=source or None,
        session_id=session_id or None,
        event_type=event_type or None,
        since=instant(since, "since") if since else None,
        until=instant(until, "until", end_of_day=True) if until else None,
        where=dict(where or {}),
    )
