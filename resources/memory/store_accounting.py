"""What the memory store knows about its own contents: which inbox days are loaded by which code, how
many events still want a vector, how many secrets were redacted, and its row counts. `MemoryStore`
(`store.py`) is this plus the writes and reads of events, vectors and dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from psycopg import sql

from resources.memory.backfill_state import due_for_embedding, loaded_days
from resources.memory.postgres_store import PostgresStore
from resources.memory.records import RedactionSummary, StoreStats
from resources.memory.redaction import PLACEHOLDER_PREFIX
from resources.memory.schema import DEAD_LETTERS, EMBEDDINGS, EVENTS, LOADED_DAYS


class StoreAccounting(PostgresStore):
    """The memory store's accounting queries (see the module docstring)."""

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema_name, name)

    def record_loaded(self, file_sha256: str, days: Sequence[date], code_version: str) -> None:
        """Remember that `days` of the inbox file with `file_sha256` are loaded by `code_version`."""
        if not days:
            return
        query = sql.SQL(
            """INSERT INTO {} (file_sha256, day, code_version) SELECT %s, d, %s FROM unnest(%s::date[]) AS d
               ON CONFLICT (file_sha256, day) DO UPDATE
               SET code_version = EXCLUDED.code_version, loaded_at = now()"""
        ).format(self._table(LOADED_DAYS))
        with self._connect() as conn:
            conn.execute(query, (file_sha256, code_version, list(days)))

    def loaded(
        self, file_sha256s: Sequence[str], start: date, end_inclusive: date, code_version: str
    ) -> set[tuple[str, date]]:
        """The (file sha256, day) pairs of those files and days loaded by `code_version`."""
        with self._connect() as conn:
            return loaded_days(conn, self.schema_name, file_sha256s, start, end_inclusive, code_version)

    def due_for_embedding_count(self, start: date, end_inclusive: date, model_sha256: str) -> int:
        """How many events of the range have no vector of their current content for the model."""
        with self._connect() as conn:
            return due_for_embedding(conn, self.schema_name, start, end_inclusive, model_sha256)

    def redactions(self, since: date | None = None) -> RedactionSummary:
        """How many stored events (of days from `since` on) had secrets replaced, and how many."""
        marker = PLACEHOLDER_PREFIX
        query = sql.SQL(
            """SELECT count(*) FILTER (WHERE t.n > 0) AS events, coalesce(sum(t.n), 0) AS placeholders
               FROM (SELECT (length(e.content || e.metadata::text)
                             - length(replace(e.content || e.metadata::text, %(m)s, ''))) / length(%(m)s) AS n
                     FROM {} AS e WHERE %(since)s::date IS NULL OR e.day >= %(since)s) AS t"""
        ).format(self._table(EVENTS))
        with self._connect() as conn:
            row = conn.execute(query, {"m": marker, "since": since}).fetchone()
        return RedactionSummary(int(row["events"]), int(row["placeholders"]))

    def stats(self) -> StoreStats:
        """Row counts of events, embeddings and dead letters, and the number of distinct event days."""
        query = sql.SQL(
            """SELECT (SELECT count(*) FROM {events}) AS events, (SELECT count(*) FROM {emb}) AS embeddings,
                      (SELECT count(*) FROM {dead}) AS dead_letters,
                      (SELECT count(DISTINCT day) FROM {events}) AS days"""
        ).format(events=self._table(EVENTS), emb=self._table(EMBEDDINGS), dead=self._table(DEAD_LETTERS))
        with self._connect() as conn:
            return StoreStats(**conn.execute(query).fetchone())
