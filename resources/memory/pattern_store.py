"""The pattern store: semantic patterns consolidated from episodic events, in PostgreSQL + pgvector.

A typed client beside `MemoryStore`, in the same database schema (evidence rows reference the events).
Each partition day contributes observations keyed by (day, cluster key, index); `replace_day` swaps a
day's contributions in one transaction and recomputes every pattern it touched from the observations
that remain, so any number of re-runs of a day leave the same rows. SQL lives in
`resources.memory.pattern_schema`, parameterised, with identifiers through `psycopg.sql.Identifier`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from resources.memory.pattern_records import (
    DayWrite,
    EventVector,
    EvidenceEvent,
    KnownPattern,
    NewObservation,
    PatternCheck,
    PatternRecord,
)
from resources.memory.pattern_schema import (
    ANSWERS,
    EVENT_VECTORS,
    EVIDENCE,
    INSERT_EVIDENCE,
    INSERT_OBSERVATION,
    INSERT_PATTERN,
    INSERT_SUPERSESSION,
    KNOWN_PATTERN,
    LIST_EVIDENCE,
    LIST_PATTERNS,
    NEAREST_PATTERN,
    OBSERVATIONS,
    PATTERN_CHECK,
    PATTERNS,
    RECOMPUTE_PATTERNS,
    REPLACED_EVIDENCE,
    SUBJECT_PATTERNS,
    SUPERSESSIONS,
    VALIDITY,
    schema_statements,
)
from resources.memory.postgres_store import PostgresStore
from resources.memory.schema import EMBEDDINGS, EVENTS
from resources.memory.schema import schema_statements as memory_schema_statements
from resources.memory.store import MemoryStore


def pattern_id_for(day: date, cluster_key: str, pattern_index: int, attempt: int = 0) -> str:
    """The id a pattern founded by this observation gets (deterministic, so a re-run re-creates it)."""
    digest = hashlib.sha256(f"{day.isoformat()}|{cluster_key}|{pattern_index}|{attempt}".encode()).hexdigest()
    return f"pat_{digest[:16]}"


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


class PatternStore(PostgresStore):
    """Semantic patterns, their observations and evidence, in schema `schema_name`."""

    @classmethod
    def beside(cls, memory: MemoryStore) -> PatternStore:
        """The pattern store in the same database and schema as `memory` (evidence references its events)."""
        return cls(
            database_url=memory.database_url,
            schema_name=memory.schema_name,
            connect_timeout_s=memory.connect_timeout_s,
        )

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(
            patterns=sql.Identifier(self.schema_name, PATTERNS),
            observations=sql.Identifier(self.schema_name, OBSERVATIONS),
            evidence=sql.Identifier(self.schema_name, EVIDENCE),
            supersessions=sql.Identifier(self.schema_name, SUPERSESSIONS),
            answers=sql.Identifier(self.schema_name, ANSWERS),
            events=sql.Identifier(self.schema_name, EVENTS),
            emb=sql.Identifier(self.schema_name, EMBEDDINGS),
        )

    def _create_schema(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """The pattern tables, after the memory's own (evidence references its events), in the same
        transaction: a second connection would wait for this one's schema lock for ever."""
        for statement in [*memory_schema_statements(self.schema_name), *schema_statements(self.schema_name)]:
            conn.execute(statement)

    def event_vectors(self, start: date, end_inclusive: date, model_sha256: str) -> list[EventVector]:
        """Events of [start, end_inclusive] with their current vector of the model, by time then id.

        Events without such a vector (not embedded yet, or changed since) are left out.
        """
        with self._connect() as conn:
            rows = conn.execute(self._sql(EVENT_VECTORS), (model_sha256, start, end_inclusive)).fetchall()
        # The column has no fixed width, so pgvector hands back its `Vector` type rather than an array.
        return [
            EventVector(**{**row, "vector": np.asarray(row["vector"].to_numpy(), dtype=np.float32)})
            for row in rows
        ]

    def remembered_answer(self, request_sha256: str) -> Any | None:
        """The parsed answer stored for the request with this sha256, or None."""
        query = self._sql("SELECT answer FROM {answers} WHERE request_sha256 = %s")
        with self._connect() as conn:
            row = conn.execute(query, (request_sha256,)).fetchone()
        return None if row is None else row["answer"]

    def remember_answer(
        self, request_sha256: str, cluster_key: str, prompt_version: str, answer: Any, output_tokens: int
    ) -> None:
        """Keep the parsed answer to a request (a newer answer to the same request replaces it)."""
        query = self._sql(
            "INSERT INTO {answers} (request_sha256, cluster_key, prompt_version, answer, output_tokens) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (request_sha256) DO UPDATE SET "
            "answer = EXCLUDED.answer, output_tokens = EXCLUDED.output_tokens, recorded_at = now()"
        )
        with self._connect() as conn:
            conn.execute(query, (request_sha256, cluster_key, prompt_version, Jsonb(answer), output_tokens))

    def known_patterns(
        self, event_ids: Sequence[str], centroid: np.ndarray, before: date, model_sha256: str, limit: int = 3
    ) -> list[KnownPattern]:
        """Patterns observed on days before `before`, those citing most of `event_ids` first, then by the
        similarity of their evidence to `centroid` (the events' mean direction)."""
        params = {
            "ids": list(event_ids), "c": centroid, "day": before, "model": model_sha256,
            "dim": centroid.size, "limit": limit,
        }  # fmt: skip
        return self._known_rows(KNOWN_PATTERN, params)

    def subject_patterns(
        self,
        text_vector: np.ndarray,
        centroid: np.ndarray,
        before: date,
        model_sha256: str,
        threshold: float,
        limit: int = 3,
    ) -> list[KnownPattern]:
        """Current patterns observed on days before `before` whose text is as close to `text_vector`, or
        whose evidence to `centroid`, as `threshold` (cosine): the patterns a new one may replace."""
        params = {
            "ids": [], "v": text_vector, "c": centroid, "day": before, "model": model_sha256,
            "dim": centroid.size, "threshold": threshold, "limit": limit,
        }  # fmt: skip
        return self._known_rows(SUBJECT_PATTERNS, params)

    def replaced_evidence(self, event_ids: Sequence[str], before: date) -> set[str]:
        """Of `event_ids`, those cited by a pattern that an observation of a day before `before` replaced:
        what they state is no longer true."""
        with self._connect() as conn:
            rows = conn.execute(self._sql(REPLACED_EVIDENCE), {"ids": list(event_ids), "day": before})
            return {row["event_id"] for row in rows.fetchall()}

    def _known_rows(self, query: str, params: dict[str, Any]) -> list[KnownPattern]:
        with self._connect() as conn:
            return [KnownPattern.from_row(row) for row in conn.execute(self._sql(query), params).fetchall()]

    def replace_day(
        self,
        day: date,
        observations: Sequence[NewObservation],
        merge_threshold: float,
        evidence_threshold: float = -1.0,
    ) -> DayWrite:
        """Replace the contributions of partition `day` with `observations`, in one transaction.

        Each observation, in the given order, reinforces the nearest pattern of its embedding model whose
        text embedding has a cosine similarity of at least `merge_threshold` with it and whose evidence
        centroid one of at least `evidence_threshold`; otherwise it founds a new pattern. Patterns left
        without observations are removed; every touched pattern is recomputed.
        """
        for name, value in (("merge_threshold", merge_threshold), ("evidence_threshold", evidence_threshold)):
            if not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a cosine similarity in [-1, 1], not {value}")
        if any(item.day != day for item in observations):
            raise ValueError(f"every observation must belong to {day}")
        vectors = [item.checked_vectors() for item in observations]
        with self._connect() as conn, conn.cursor() as cur:
            # Two days stored at once could both found the same pattern; one writer at a time keeps merging
            # deterministic.
            lock = f"athena-patterns:{self.schema_name}"
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
            previous = self._sql("SELECT DISTINCT pattern_id FROM {observations} WHERE day = %s ORDER BY 1")
            affected = [row["pattern_id"] for row in cur.execute(previous, (day,)).fetchall()]
            cur.execute(self._sql("DELETE FROM {observations} WHERE day = %s"), (day,))
            orphans = self._sql(
                "DELETE FROM {patterns} AS p WHERE p.pattern_id = ANY(%s) AND NOT EXISTS "
                "(SELECT 1 FROM {observations} AS o WHERE o.pattern_id = p.pattern_id) RETURNING pattern_id"
            )
            removed = {row["pattern_id"] for row in cur.execute(orphans, (affected,)).fetchall()}
            cur.execute(self._sql(RECOMPUTE_PATTERNS), {"ids": [i for i in affected if i not in removed]})
            founded: list[str] = []
            reinforced = 0
            for item, (vector, centroid) in zip(observations, vectors, strict=True):
                nearest = cur.execute(
                    self._sql(NEAREST_PATTERN),
                    {"v": vector, "c": centroid, "model": item.model_sha256, "dim": vector.size,
                     "text": merge_threshold, "evidence": evidence_threshold, "day": day,
                     "replaced": [old.pattern_id for old in item.supersedes]},
                ).fetchone()  # fmt: skip
                if nearest is not None:
                    pattern_id = nearest["pattern_id"]
                    reinforced += 1
                else:
                    pattern_id = self._found(cur, item, vector, centroid)
                    founded.append(pattern_id)
                self._insert_observation(cur, item, vector, centroid, pattern_id)
                cur.execute(self._sql(RECOMPUTE_PATTERNS), {"ids": [pattern_id]})
            cur.execute(self._sql(VALIDITY))
        return DayWrite(
            observations=len(observations),
            new=len(founded),
            reinforced=reinforced,
            removed=len(removed - set(founded)),
            superseded=len({old.pattern_id for item in observations for old in item.supersedes}),
        )

    def _found(
        self,
        cur: psycopg.Cursor[dict[str, Any]],
        item: NewObservation,
        vector: np.ndarray,
        centroid: np.ndarray,
    ) -> str:
        exists = self._sql("SELECT 1 FROM {patterns} WHERE pattern_id = %s")
        attempt = 0
        pattern_id = pattern_id_for(item.day, item.cluster_key, item.pattern_index)
        # The id can still be taken by the pattern this observation founded on an earlier run, if other
        # days keep it alive and this run's answer went elsewhere; the next attempt is as deterministic.
        while cur.execute(exists, (pattern_id,)).fetchone() is not None:
            attempt += 1
            pattern_id = pattern_id_for(item.day, item.cluster_key, item.pattern_index, attempt)
        cur.execute(
            sql.SQL(INSERT_PATTERN).format(sql.Identifier(self.schema_name, PATTERNS)),
            (pattern_id, item.title, item.description, item.kind, item.confidence, item.model_sha256,
             vector.size, vector, centroid, item.method),
        )  # fmt: skip
        return pattern_id

    def _insert_observation(
        self,
        cur: psycopg.Cursor[dict[str, Any]],
        item: NewObservation,
        vector: np.ndarray,
        centroid: np.ndarray,
        pattern_id: str,
    ) -> None:
        cur.execute(
            sql.SQL(INSERT_OBSERVATION).format(sql.Identifier(self.schema_name, OBSERVATIONS)),
            (item.day, item.cluster_key, item.pattern_index, pattern_id, item.title, item.description,
             item.kind, item.confidence, item.model_sha256, vector.size, vector, centroid,
             item.prompt_version, item.cluster_size, item.method),
        )  # fmt: skip
        cur.executemany(
            sql.SQL(INSERT_EVIDENCE).format(sql.Identifier(self.schema_name, EVIDENCE)),
            [(item.day, item.cluster_key, item.pattern_index, event_id, pattern_id)
             for event_id in dict.fromkeys(item.evidence_ids)],
        )  # fmt: skip
        cur.executemany(
            sql.SQL(INSERT_SUPERSESSION).format(sql.Identifier(self.schema_name, SUPERSESSIONS)),
            [(item.day, item.cluster_key, item.pattern_index, old.pattern_id, old.changed_at, old.event_id)
             for old in item.supersedes],
        )  # fmt: skip

    def patterns(
        self, since: date | None = None, as_of: date | None = None, include_superseded: bool = False
    ) -> list[PatternRecord]:
        """Current patterns last seen on or after `since` (all when None), most supported first; with
        `as_of`, those that were current at the end of that day; with `include_superseded`, every one."""
        params = {
            "since": _midnight(since),
            "as_of": _midnight(as_of + timedelta(days=1)) if as_of is not None else None,
            "all": include_superseded,
        }
        with self._connect() as conn:
            rows = conn.execute(self._sql(LIST_PATTERNS), params).fetchall()
            ids = [row["pattern_id"] for row in rows]
            evidence: dict[str, list[EvidenceEvent]] = {pattern_id: [] for pattern_id in ids}
            for row in conn.execute(self._sql(LIST_EVIDENCE), (ids,)).fetchall():
                evidence[row.pop("pattern_id")].append(EvidenceEvent(**row))
        return [PatternRecord(**row, evidence=tuple(evidence[row["pattern_id"]])) for row in rows]

    def check(self, day: date, window_start: date) -> PatternCheck:
        """Patterns without evidence (all days), and evidence of `day`'s observations from outside the
        day's clustering window [window_start, day]."""
        with self._connect() as conn:
            row = conn.execute(self._sql(PATTERN_CHECK), {"day": day, "first": window_start}).fetchone()
        return PatternCheck(**row)
