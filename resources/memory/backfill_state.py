"""What a range of days already holds in the store, on a plain connection (no Dagster): which (file,
day) pairs the current events code loaded, and how many events still lack a vector. `MemoryStore` and
`athena backfill`'s check for nothing new share these statements (any row factory: tuples are asked for)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from resources.memory.schema import EMBEDDINGS, EVENTS, LOADED_DAYS

_LOADED = """SELECT file_sha256, day FROM {loaded} WHERE file_sha256 = ANY(%s) AND day BETWEEN %s AND %s
    AND code_version = %s"""
_DUE = """SELECT count(*) AS n FROM {events} AS e WHERE e.day BETWEEN %s AND %s AND NOT EXISTS (
    SELECT 1 FROM {emb} AS x WHERE x.event_id = e.id AND x.model_sha256 = %s
    AND x.content_sha256 = e.content_sha256)"""


def loaded_days(
    conn: psycopg.Connection[Any],
    schema: str,
    file_sha256s: Sequence[str],
    start: date,
    end_inclusive: date,
    code_version: str,
) -> set[tuple[str, date]]:
    """The (file sha256, day) pairs of those files and days loaded by `code_version`."""
    query = sql.SQL(_LOADED).format(loaded=sql.Identifier(schema, LOADED_DAYS))
    params = (list(file_sha256s), start, end_inclusive, code_version)
    rows = conn.cursor(row_factory=tuple_row).execute(query, params).fetchall()
    return {(row[0], row[1]) for row in rows}


def due_for_embedding(
    conn: psycopg.Connection[Any], schema: str, start: date, end_inclusive: date, vectors_key: str
) -> int:
    """How many events of the range have no vector of their current content under `vectors_key`."""
    tables = {"events": sql.Identifier(schema, EVENTS), "emb": sql.Identifier(schema, EMBEDDINGS)}
    query = sql.SQL(_DUE).format(**tables)
    row = conn.cursor(row_factory=tuple_row).execute(query, (start, end_inclusive, vectors_key)).fetchone()
    return int(row[0]) if row is not None else 0
