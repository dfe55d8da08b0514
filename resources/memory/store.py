"""The memory store: episodic events, dead letters and embeddings in PostgreSQL + pgvector.

A typed client usable from Dagster assets and plain scripts alike (`MemoryStore(database_url=...)`).
Each method opens its own connection and runs in one transaction; SQL is parameterised, identifiers go
through `psycopg.sql.Identifier`, and the only number written into SQL text is a validated dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from resources.memory.event_files import RejectedLine
from resources.memory.event_line import Event
from resources.memory.recall import RecallQuery, prepared_recall, recall_statement, run_recall
from resources.memory.recall_scope import RecallScope
from resources.memory.records import (
    DeadLetter,
    EmbeddingCheck,
    EmbeddingRow,
    RecallHit,
    StoredEvent,
    UpsertCounts,
)
from resources.memory.schema import (
    DEAD_LETTERS,
    EMBEDDINGS,
    EVENTS,
    UPSERT_DEAD_LETTERS,
    UPSERT_EMBEDDINGS,
    UPSERT_EVENTS,
    checked_dimension,
    schema_statements,
    vector_index_statement,
)
from resources.memory.store_accounting import StoreAccounting

_EVENT_COLUMNS = (
    "id, occurred_at, day, content, content_sha256, event_type, source, session_id, metadata, "
    "source_file, source_line"
)
_MISSING_IDS_SHOWN = 20
INDEX_BUILD_MEMORY = "512MB"


class MemoryStore(StoreAccounting):
    """PostgreSQL + pgvector storage of the episodic memory, in schema `schema_name`."""

    def _create_schema(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """The extension, schema, tables and indexes of events, embeddings and dead letters."""
        for statement in schema_statements(self.schema_name):
            conn.execute(statement)

    def ensure_vector_index(self, dimension: int) -> None:
        """Create the cosine HNSW index over rows of `dimension` (idempotent), then refresh the planner's
        statistics of the events and vectors (called after each bulk load)."""
        with self._connect() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"athena-schema:{self.schema_name}",))
            # pgvector builds the graph several times faster while it fits in maintenance_work_mem
            # (64 MB by default: about 30,000 vectors of 384 dimensions).
            conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
            conn.execute(vector_index_statement(self.schema_name, dimension))
            # Without statistics a fresh load looks empty, and a scoped recall probes every vector's
            # event (measured at 100,000 vectors: 221 ms for one session, 31 ms once analysed) until
            # autovacuum gets round to it.
            conn.execute(sql.SQL("ANALYZE {}, {}").format(self._table(EVENTS), self._table(EMBEDDINGS)))

    def upsert_events(self, events: Sequence[Event]) -> UpsertCounts:
        """Insert new events, update changed ones, leave identical ones untouched; one transaction.

        An id given twice keeps the last occurrence. An update rewrites `updated_at` and the provenance
        (`source_file`, `source_line`); if the content changed, its embeddings become due again.
        """
        latest = {event.id: event for event in events}
        if not latest:
            return UpsertCounts(0, 0, 0)
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE incoming_events (id text, occurred_at timestamptz, event_type text, "
                "source text, session_id text, content text, content_sha256 text, metadata jsonb, "
                "source_file text, source_line integer) ON COMMIT DROP"
            )
            with cur.copy("COPY incoming_events FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(
                    ["text", "timestamptz", "text", "text", "text", "text", "text", "jsonb", "text", "int4"]
                )
                for e in latest.values():
                    copy.write_row(
                        [e.id, e.occurred_at, e.event_type, e.source, e.session_id, e.content,
                         e.content_sha256, e.metadata, e.source_file, e.source_line]
                    )  # fmt: skip
            cur.execute(sql.SQL(UPSERT_EVENTS).format(events=self._table(EVENTS)))
            written = [row["inserted"] for row in cur.fetchall()]
        new = sum(written)
        return UpsertCounts(new=new, updated=len(written) - new, unchanged=len(latest) - len(written))

    def record_dead_letters(self, rejected: Sequence[RejectedLine], file_sha256: str) -> int:
        """Store rejected lines of the file with `file_sha256`; returns how many were new or changed."""
        if not rejected:
            return 0
        with self._connect() as conn, conn.cursor() as cur:
            cur.executemany(
                sql.SQL(UPSERT_DEAD_LETTERS).format(self._table(DEAD_LETTERS)),
                [(r.file, file_sha256, r.line, r.excerpt, r.reason, r.day) for r in rejected],
                returning=True,
            )
            changed = 0
            while True:
                changed += len(cur.fetchall())
                if not cur.nextset():
                    return changed

    def dead_letter_count(self, day: date) -> int:
        """Rejected lines whose timestamp fell on `day`."""
        query = sql.SQL("SELECT count(*) AS n FROM {} WHERE day = %s").format(self._table(DEAD_LETTERS))
        with self._connect() as conn:
            return int(conn.execute(query, (day,)).fetchone()["n"])

    def dead_letters(self, file_sha256: str | None = None) -> list[DeadLetter]:
        """Rejected lines, of one file or all, in file and line order."""
        query = sql.SQL(
            "SELECT file, file_sha256, line, excerpt, reason, day, recorded_at FROM {} "
            "WHERE %(sha)s::text IS NULL OR file_sha256 = %(sha)s ORDER BY file, file_sha256, line"
        ).format(self._table(DEAD_LETTERS))
        with self._connect() as conn:
            return [DeadLetter(**row) for row in conn.execute(query, {"sha": file_sha256})]

    def events_for_days(self, start: date, end_inclusive: date) -> list[StoredEvent]:
        """Events whose UTC day is in [start, end_inclusive], by time then id."""
        query = sql.SQL(
            "SELECT {cols} FROM {events} WHERE day BETWEEN %s AND %s ORDER BY occurred_at, id"
        ).format(cols=sql.SQL(_EVENT_COLUMNS), events=self._table(EVENTS))
        with self._connect() as conn:
            return [StoredEvent(**row) for row in conn.execute(query, (start, end_inclusive))]

    def event_count(self, start: date, end_inclusive: date) -> int:
        """How many events fall in [start, end_inclusive]."""
        query = sql.SQL("SELECT count(*) AS n FROM {} WHERE day BETWEEN %s AND %s").format(
            self._table(EVENTS)
        )
        with self._connect() as conn:
            return int(conn.execute(query, (start, end_inclusive)).fetchone()["n"])

    def events_due_for_embedding(
        self, start: date, end_inclusive: date, model_sha256: str
    ) -> list[StoredEvent]:
        """Events in the range with no vector of their current content for the model, by time then id."""
        query = sql.SQL(
            """SELECT {cols} FROM {events} AS e WHERE e.day BETWEEN %s AND %s AND NOT EXISTS (
                   SELECT 1 FROM {emb} AS x WHERE x.event_id = e.id AND x.model_sha256 = %s
                   AND x.content_sha256 = e.content_sha256)
               ORDER BY e.occurred_at, e.id"""
        ).format(cols=sql.SQL(_EVENT_COLUMNS), events=self._table(EVENTS), emb=self._table(EMBEDDINGS))
        with self._connect() as conn:
            return [StoredEvent(**row) for row in conn.execute(query, (start, end_inclusive, model_sha256))]

    def write_embeddings(self, rows: Sequence[EmbeddingRow]) -> int:
        """Upsert vectors via a binary COPY into a temporary table, in one transaction.

        Returns how many rows were new or changed (identical rewrites are skipped).

        Refuses (ValueError, nothing written) vectors that are empty, not one-dimensional or not finite,
        and rows whose event does not exist. A repeated (event, model) keeps the last row.
        """
        latest: dict[tuple[str, str], tuple[EmbeddingRow, np.ndarray]] = {}
        for row in rows:
            vector = np.asarray(row.embedding, dtype=np.float32)
            if vector.ndim != 1 or vector.size == 0 or not np.isfinite(vector).all():
                raise ValueError(
                    f"embedding of event {row.event_id!r} must be a non-empty 1-D finite vector; "
                    "re-embed it (NaN or Inf usually means an overflow in the model server)"
                )
            checked_dimension(vector.size)
            latest[(row.event_id, row.model_sha256)] = (row, vector)
        if not latest:
            return 0
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE incoming_embeddings (event_id text, model_sha256 text, "
                "content_sha256 text, dimension integer, embedding vector, tokens integer, split boolean) "
                "ON COMMIT DROP"
            )
            with cur.copy("COPY incoming_embeddings FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "text", "int4", "vector", "int4", "bool"])
                for row, vector in latest.values():
                    copy.write_row(
                        [row.event_id, row.model_sha256, row.content_sha256, vector.size, vector,
                         int(row.tokens), bool(row.split)]
                    )  # fmt: skip
            orphans = cur.execute(
                sql.SQL(
                    "SELECT i.event_id FROM incoming_embeddings i WHERE NOT EXISTS "
                    "(SELECT 1 FROM {} e WHERE e.id = i.event_id) ORDER BY 1 LIMIT 5"
                ).format(self._table(EVENTS))
            ).fetchall()
            if orphans:
                raise ValueError(
                    f"no stored event for embeddings of {[r['event_id'] for r in orphans]}; "
                    "upsert the events first (nothing was written)"
                )
            cur.execute(sql.SQL(UPSERT_EMBEDDINGS).format(self._table(EMBEDDINGS)))
            return cur.rowcount

    def embedding_check(
        self, start: date, end_inclusive: date, model_sha256: str, dimension: int
    ) -> EmbeddingCheck:
        """Coverage and health of the model's vectors for events in the range.

        A vector counts when it was computed from the event's current content. pgvector refuses NaN and
        Inf on input, so `non_finite` is a guard against a changed write path rather than an expected case.
        """
        query = sql.SQL(
            """SELECT e.id, x.event_id IS NOT NULL AS current, x.dimension, vector_norm(x.embedding) AS norm
               FROM {events} AS e LEFT JOIN {emb} AS x
                 ON x.event_id = e.id AND x.model_sha256 = %s AND x.content_sha256 = e.content_sha256
               WHERE e.day BETWEEN %s AND %s ORDER BY e.occurred_at, e.id"""
        ).format(events=self._table(EVENTS), emb=self._table(EMBEDDINGS))
        with self._connect() as conn:
            rows = conn.execute(query, (model_sha256, start, end_inclusive)).fetchall()
        present = [r for r in rows if r["current"]]
        return EmbeddingCheck(
            events=len(rows),
            with_vector=len(present),
            missing_ids=[r["id"] for r in rows if not r["current"]][:_MISSING_IDS_SHOWN],
            wrong_dimension=sum(r["dimension"] != dimension for r in present),
            non_finite=sum(not np.isfinite(r["norm"]) for r in present),
            zero_norm=sum(r["norm"] == 0 for r in present),
        )

    def recall(
        self,
        query_vector: Sequence[float] | np.ndarray | None,
        model_sha256: str,
        dimension: int,
        k: int = 5,
        query_text: str | None = None,
        mode: str = "vector",
        candidates: int = 50,
        scope: RecallScope | None = None,
    ) -> list[RecallHit]:
        """The `k` events of `scope` (all when None) nearest the query, best first.

        `vector` ranks by cosine similarity (score = 1 - cosine distance) through the HNSW index: use it
        for paraphrases and questions in other words. `text` ranks by the words of `query_text` (any of
        them, rarer words weighing more; no vector needed). `hybrid` (the application's default,
        `api.recall`) fuses the top `candidates` of both by score, each branch weighted by how sure it
        is for this query (`resources/memory/fusion.py`). See `resources/memory/recall.py`.
        """
        request = RecallQuery(query_vector, model_sha256, dimension, k, query_text, mode, candidates, scope)
        recall_statement(self.schema_name, request)  # bad arguments fail before any connection
        with self._connect() as conn:
            return run_recall(conn, self.schema_name, request)

    def explain_recall(
        self,
        query_vector: Sequence[float] | np.ndarray,
        model_sha256: str,
        dimension: int,
        k: int = 5,
        query_text: str | None = None,
        mode: str = "vector",
        force_index: bool = False,
        scope: RecallScope | None = None,
    ) -> str:
        """The plan PostgreSQL picks for the same `recall(...)`; `force_index` turns sequential scans and
        explicit sorts off, to show the HNSW index is usable on tables too small (and analysed) for the
        planner to prefer it over sorting every row (a scope of at most `EXACT_SCOPE_ROWS` events is
        still searched exactly)."""
        request = RecallQuery(query_vector, model_sha256, dimension, k, query_text, mode, 50, scope)
        with self._connect() as conn:
            query, params = prepared_recall(conn, self.schema_name, request)
            if force_index:
                conn.execute("SET LOCAL enable_seqscan = off")
                conn.execute("SET LOCAL enable_sort = off")
            rows = conn.execute(sql.SQL("EXPLAIN (COSTS OFF) ") + query, params).fetchall()
        return "\n".join(row["QUERY PLAN"] for row in rows)

    def in_scope(self, event_ids: Sequence[str], scope: RecallScope) -> set[str]:
        """The ids among `event_ids` of events inside `scope`."""
        condition, params = scope.condition("e")
        query = sql.SQL("SELECT e.id FROM {} AS e WHERE e.id = ANY(%(ids)s) {}").format(
            self._table(EVENTS), condition
        )
        with self._connect() as conn:
            return {row["id"] for row in conn.execute(query, {**params, "ids": list(event_ids)}).fetchall()}
