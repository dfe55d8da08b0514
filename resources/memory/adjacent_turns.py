"""Hybrid recall's question-and-reply pairs: a turn that asks something and the turn after it answer a
question together.

In a conversation the topic is often in one turn and the answer in the next: "How was the concert on
Friday?" then "Incredible, Moonfolk played for almost three hours." A question about the band shares
its words with the first turn and its answer with the second, so the branches find the first and miss
the second. Each of hybrid's best hits that asks (ends with "?") lifts the next event of its session
to `REPLY_SHARE` of the hit's score (never lowering it). Only events in the recall's scope are lifted.

Why only a reply after an asking hit (measured on the conversation history, docs/benchmarks.md):
lifting every neighbour of a hit lets the small talk around a fact crowd the top hits, and a reply
lifting the question before it cost a two-turn answer its second turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from resources.memory.recall_scope import RecallScope
from resources.memory.records import HIT_COLUMNS, RecallHit
from resources.memory.schema import EVENTS

# A lifted reply's score as a share of its question's (measured 0.3-0.9: 0.5 best; at 0.9 replies to
# small-talk questions crowd out facts).
REPLY_SHARE = 0.5
# How many of hybrid's best hits may lift their pair.
LIFTING_HITS = 10

# For each asking hit, the event right after it in its session.
_REPLIES = """SELECT h.id AS hit_id, e.id AS event_id, {columns}
FROM {events} AS h
CROSS JOIN LATERAL (
    SELECT n.id FROM {events} AS n
    WHERE n.session_id = h.session_id AND (n.occurred_at, n.id) > (h.occurred_at, h.id)
    ORDER BY n.occurred_at, n.id LIMIT 1
) AS r
JOIN {events} AS e ON e.id = r.id
WHERE h.id = ANY(%(hits)s) {scope}"""


def asks(content: str) -> bool:
    """Whether a turn asks something: its text ends with a question mark."""
    return content.rstrip().rstrip("\"')»”").endswith("?")


def reply_rows(
    conn: psycopg.Connection[dict[str, Any]], schema: str, hits: list[RecallHit], scope: RecallScope | None
) -> list[dict[str, Any]]:
    """The event after each of `hits` that asks, in its session and within `scope`: one row per reply,
    its hit's id beside the reply's columns."""
    asking = [hit.event_id for hit in hits if hit.session_id is not None and asks(hit.content)]
    if not asking:
        return []
    condition, params = (scope or RecallScope()).condition("e")
    events = sql.Identifier(schema, EVENTS)
    query = sql.SQL(_REPLIES).format(events=events, columns=sql.SQL(HIT_COLUMNS), scope=condition)
    return conn.execute(query, params | {"hits": asking}).fetchall()


def lifted(scores: Mapping[str, float], replies: list[dict[str, Any]]) -> dict[str, float]:
    """The replies (`reply_rows`) whose score their question lifts: `REPLY_SHARE` of the question's
    score where that is more than the reply's own (the higher where two questions lift one reply)."""
    raised: dict[str, float] = {}
    for reply in replies:
        share = REPLY_SHARE * scores[reply["hit_id"]]
        event_id = reply["event_id"]
        if share > max(scores.get(event_id, float("-inf")), raised.get(event_id, float("-inf"))):
            raised[event_id] = share
    return raised
