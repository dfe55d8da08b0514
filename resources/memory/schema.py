"""The memory store's SQL: DDL and upserts (its rows: `records.py`; recall queries:
`resources/memory/recall.py`).

`MemoryStore` (resources/memory/store.py) is the only owner of these tables and the only caller of this
SQL. Embeddings sit in a `vector` column without a fixed width, tagged with the model's sha256 and
dimension, so several models can coexist; each dimension gets its own partial HNSW index over
`embedding::vector(<dim>)`, the very expression the recall queries below order by.
"""

from __future__ import annotations

import numpy as np
from psycopg import sql

EVENTS = "episodic_events"
DEAD_LETTERS = "dead_letters"
EMBEDDINGS = "event_embeddings"
# The schema the stores use unless told otherwise (tests and benchmarks give their own).
DEFAULT_SCHEMA = "athena"
LOADED_DAYS = "loaded_days"
# pgvector's HNSW indexes `vector` up to 2,000 dimensions; the type itself stops at 16,000.
MAX_INDEXED_DIMENSION = 2000
MAX_DIMENSION = 16000


def checked_dimension(dimension: int, limit: int = MAX_DIMENSION) -> int:
    """`dimension` as a plain int in 1..limit; it is written into SQL type modifiers, so it is checked."""
    if isinstance(dimension, bool) or not isinstance(dimension, int | np.integer):
        raise ValueError(f"dimension must be an integer, not {dimension!r}")
    if not 1 <= int(dimension) <= limit:
        raise ValueError(f"dimension {dimension} is outside 1..{limit} (pgvector's limit for this use)")
    return int(dimension)


def vector_type(dimension: int) -> sql.Composable:
    """`vector(<dimension>)`, the fixed-width type of the per-dimension index expression."""
    return sql.SQL("vector({})").format(sql.Literal(checked_dimension(dimension)))


def schema_statements(schema: str) -> list[sql.Composable]:
    """The idempotent DDL of the store in `schema`, in execution order."""
    ident = sql.Identifier(schema)
    events = sql.Identifier(schema, EVENTS)
    dead = sql.Identifier(schema, DEAD_LETTERS)
    embeddings = sql.Identifier(schema, EMBEDDINGS)
    loaded = sql.Identifier(schema, LOADED_DAYS)
    return [
        sql.SQL("CREATE EXTENSION IF NOT EXISTS vector"),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident),
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                id text PRIMARY KEY,
                occurred_at timestamptz NOT NULL,
                -- Derived, so the partition column can never disagree with the timestamp.
                day date GENERATED ALWAYS AS ((occurred_at AT TIME ZONE 'UTC')::date) STORED,
                event_type text,
                source text,
                session_id text,
                content text NOT NULL,
                content_sha256 text NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
                source_file text NOT NULL,
                source_line integer NOT NULL,
                ingested_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            )"""
        ).format(events),
        sql.SQL("CREATE INDEX IF NOT EXISTS episodic_events_day_idx ON {} (day)").format(events),
        # Recall's word branch reads the lexemes of every candidate: stored once, not parsed per query.
        sql.SQL(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS content_tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', content)) STORED"
        ).format(events),
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, "episodic_events_content_fts_idx")),
        sql.SQL("CREATE INDEX IF NOT EXISTS episodic_events_tsv_idx ON {} USING gin (content_tsv)").format(
            events
        ),
        # Scoped recall (source, session, type, time range, metadata containment). A session's events in
        # order: the reply after an asking hit is one index probe (`adjacent_turns.py`). With the index on
        # session_id alone it replaces, a session's last turn that asks made PostgreSQL walk every later
        # event in time (measured: 28.6 ms -> 0.6 ms at 50,000 events).
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, "episodic_events_session_idx")),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS episodic_events_session_order_idx ON {} (session_id, occurred_at, id)"
        ).format(events),
        sql.SQL("CREATE INDEX IF NOT EXISTS episodic_events_source_idx ON {} (source)").format(events),
        sql.SQL("CREATE INDEX IF NOT EXISTS episodic_events_type_idx ON {} (event_type)").format(events),
        sql.SQL("CREATE INDEX IF NOT EXISTS episodic_events_occurred_idx ON {} (occurred_at)").format(events),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS episodic_events_metadata_idx ON {} "
            "USING gin (metadata jsonb_path_ops)"
        ).format(events),
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                file text NOT NULL,
                file_sha256 text NOT NULL,
                line integer NOT NULL,
                excerpt text NOT NULL,
                reason text NOT NULL,
                day date,
                recorded_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (file_sha256, line)
            )"""
        ).format(dead),
        sql.SQL("CREATE INDEX IF NOT EXISTS dead_letters_day_idx ON {} (day)").format(dead),
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                event_id text NOT NULL REFERENCES {} (id) ON DELETE CASCADE,
                model_sha256 text NOT NULL,
                content_sha256 text NOT NULL,
                dimension integer NOT NULL CHECK (dimension > 0),
                embedding vector NOT NULL,
                tokens integer NOT NULL,
                split boolean NOT NULL DEFAULT false,
                embedded_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (event_id, model_sha256),
                -- The partial HNSW indexes cast to vector(dimension): a mismatch would break them.
                CHECK (vector_dims(embedding) = dimension)
            )"""
        ).format(embeddings, events),
        # Which days of which inbox file (by content) are loaded, and by which code version of the
        # events asset: a backfill whose every pair is here has nothing to load (api/backfill.py).
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                file_sha256 text NOT NULL,
                day date NOT NULL,
                code_version text NOT NULL,
                loaded_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (file_sha256, day)
            )"""
        ).format(loaded),
    ]


# Upserts from the per-call temporary tables; each skips rows that would not change, so a re-run
# writes nothing (and pays for no new HNSW entries).
UPSERT_EVENTS = """INSERT INTO {events} AS e (id, occurred_at, event_type, source, session_id, content,
        content_sha256, metadata, source_file, source_line)
    SELECT * FROM incoming_events
    ON CONFLICT (id) DO UPDATE SET
        occurred_at = EXCLUDED.occurred_at, event_type = EXCLUDED.event_type,
        source = EXCLUDED.source, session_id = EXCLUDED.session_id,
        content = EXCLUDED.content, content_sha256 = EXCLUDED.content_sha256,
        metadata = EXCLUDED.metadata, source_file = EXCLUDED.source_file,
        source_line = EXCLUDED.source_line, updated_at = now()
    WHERE (e.occurred_at, e.event_type, e.source, e.session_id, e.content_sha256,
           e.metadata)
          IS DISTINCT FROM (EXCLUDED.occurred_at, EXCLUDED.event_type, EXCLUDED.source,
           EXCLUDED.session_id, EXCLUDED.content_sha256, EXCLUDED.metadata)
    -- xmax is 0 only on a freshly inserted row version: new vs updated.
    RETURNING (xmax = 0) AS inserted"""

# The file name stays the first one recorded: the user's own path at `athena ingest`, not the inbox
# copy's that the pipeline parses later (the same content, so the same file_sha256).
UPSERT_DEAD_LETTERS = """INSERT INTO {} AS d (file, file_sha256, line, excerpt, reason, day)
    VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT (file_sha256, line) DO UPDATE SET
        excerpt = EXCLUDED.excerpt, reason = EXCLUDED.reason, day = EXCLUDED.day, recorded_at = now()
    WHERE (d.excerpt, d.reason, d.day) IS DISTINCT FROM (EXCLUDED.excerpt, EXCLUDED.reason, EXCLUDED.day)
    RETURNING 1"""

UPSERT_EMBEDDINGS = """INSERT INTO {} AS x (event_id, model_sha256, content_sha256, dimension, embedding,
        tokens, split)
    SELECT * FROM incoming_embeddings
    ON CONFLICT (event_id, model_sha256) DO UPDATE SET
        content_sha256 = EXCLUDED.content_sha256, dimension = EXCLUDED.dimension,
        embedding = EXCLUDED.embedding, tokens = EXCLUDED.tokens, split = EXCLUDED.split,
        embedded_at = now()
    -- An identical rewrite (a re-run) must not pay for new HNSW index entries.
    WHERE (x.content_sha256, x.embedding, x.tokens, x.split)
          IS DISTINCT FROM (EXCLUDED.content_sha256, EXCLUDED.embedding, EXCLUDED.tokens,
                            EXCLUDED.split)"""


def vector_index_name(dimension: int) -> str:
    """The name of the HNSW index for `dimension` (one per width, since the column has none)."""
    return f"event_embeddings_hnsw_cosine_{checked_dimension(dimension, MAX_INDEXED_DIMENSION)}"


def vector_index_statement(schema: str, dimension: int) -> sql.Composable:
    """Idempotent DDL of the cosine HNSW index over rows of `dimension`."""
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON {table} "
        "USING hnsw ((embedding::{vtype}) vector_cosine_ops) WHERE dimension = {dim}"
    ).format(
        name=sql.Identifier(vector_index_name(dimension)),
        table=sql.Identifier(schema, EMBEDDINGS),
        vtype=vector_type(dimension),
        dim=sql.Literal(checked_dimension(dimension)),
    )
