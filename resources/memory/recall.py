"""Recall queries: nearest events by meaning (pgvector HNSW), by words (a BM25-style ranking over
PostgreSQL full text), or both fused, optionally scoped to a source, a session, an event type, a time
range and metadata (`RecallScope`).

The vector branch orders by `embedding::vector(<dim>) <=> query` with `dimension = <dim>`, repeating the
partial HNSW index's expression and predicate exactly (the planner uses the index only then); with a
broad scope, pgvector's iterative index scan keeps reading the index until `k` rows pass the filter,
and a small scope (`exact`, chosen by the store) is searched by comparing each of its vectors.

The word branch matches a question the way BM25 does: any of its terms, each weighted by its rarity in
the scope (`ln(1 + (N - n + 0.5) / (n + 0.5))`) and damped by the event's length, rather than requiring
every word (`websearch_to_tsquery`), which a natural question almost never satisfies. Terms and
matches come from the stored `content_tsv` column and its GIN index.

Hybrid fetches each branch's best candidates with their scores and fuses them by score, weighting each
branch by how sure it is for this query (`fusion.py`); where the question names a date, month or year,
the candidates of that period are lifted (`time_mentions.py`), and the reply after a best hit that asks
a question is lifted with it (`adjacent_turns.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from resources.memory.adjacent_turns import LIFTING_HITS, lifted, reply_rows
from resources.memory.fusion import fused
from resources.memory.recall_scope import RecallScope
from resources.memory.records import HIT_COLUMNS, HIT_FIELDS, RecallHit
from resources.memory.schema import EMBEDDINGS, EVENTS, checked_dimension, vector_type
from resources.memory.time_mentions import named_period


@dataclass(frozen=True)
class RecallModeSpec:
    """One way to rank events: its name, whether the query must be embedded first, and what it is for
    (the CLI's help, the MCP tool's schema and the README derive from this table)."""

    name: str
    needs_vector: bool
    description: str


# The default first: hybrid is at least as good as the better branch on the recall benchmark's histories
# where a question has one answer in its scope (docs/benchmarks.md).
RECALL_MODES: tuple[RecallModeSpec, ...] = (
    RecallModeSpec("hybrid", True, "meaning and words fused; best when a query mixes both"),
    RecallModeSpec("vector", True, "meaning only (paraphrases, questions in other words)"),
    RecallModeSpec("text", False, "words only (error codes, identifiers, file names); no embedding"),
)
MODES: tuple[str, ...] = tuple(mode.name for mode in RECALL_MODES)
DEFAULT_MODE = MODES[0]


def mode_spec(mode: str) -> RecallModeSpec:
    """The table's entry for `mode`; an unknown one is a ValueError naming the choices."""
    for spec in RECALL_MODES:
        if spec.name == mode:
            return spec
    raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")


# BM25's usual constants: how fast a repeated match saturates, how much length matters.
_BM25_K1 = 1.2
_BM25_B = 0.75
# A word in this many events of the scope or more is common: counted no further, and it finds no
# candidates of its own while the query has rarer words.
_COMMON_WORD_EVENTS = 2000


_NEAREST = """SELECT x.event_id, x.embedding::{vtype} <=> %(q)s::{vtype} AS distance
    FROM {emb} AS x {join}
    WHERE x.model_sha256 = %(model)s AND x.dimension = {dim} {scope}
    ORDER BY {order} LIMIT {limit}"""
# The same distance without the cast the HNSW index is built on: the planner cannot use the index for
# it, so a small scope's rows (found through their own indexes) are compared one by one, exactly.
_EXACT_ORDER = "x.embedding <=> %(q)s::vector"
_INDEXED_ORDER = "x.embedding::{vtype} <=> %(q)s::{vtype}"

_VECTOR_RECALL = """SELECT n.event_id, (1 - n.distance)::float8 AS score, {columns},
       row_number() OVER (ORDER BY n.distance, n.event_id)::int AS vector_rank, NULL::int AS text_rank
FROM ({nearest}) AS n JOIN {events} AS e ON e.id = n.event_id
ORDER BY n.distance, n.event_id"""

# The query's lexemes (stemmed, stop words gone), each with its document frequency in the scope; the
# events holding any of them, scored by the BM25 sum over the terms they hold (presence, not counts).
# MATERIALIZED: inlined, the planner would count each term's documents again for every candidate.
_WORDS = """{scoped}terms AS MATERIALIZED (
    SELECT DISTINCT lexeme, to_tsquery('simple', quote_literal(lexeme)) AS query
    FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS lexeme
), scope_size AS MATERIALIZED (
    SELECT count(*)::float8 AS n FROM {rows} WHERE true {scope}
), weights AS MATERIALIZED (
    SELECT t.lexeme, t.query, d.n AS df,
           ln(1 + (s.n - d.n + 0.5) / (d.n + 0.5)) AS idf
    FROM terms AS t CROSS JOIN scope_size AS s
    CROSS JOIN LATERAL (
        -- Counted up to a cap: beyond it a word is common, and its exact count changes little.
        SELECT count(*)::float8 AS n FROM (
            SELECT 1 FROM {rows} WHERE e.content_tsv @@ t.query {scope} LIMIT {df_cap}
        ) AS capped
    ) AS d
), any_term AS (
    -- Candidates come from the selective words when the query has any: an event that holds only
    -- words common to the scope would rank below those anyway, and there can be tens of thousands.
    SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS query FROM weights
    WHERE df < {df_cap} OR NOT EXISTS (SELECT 1 FROM weights WHERE df < {df_cap})
), candidates AS MATERIALIZED (
    SELECT e.id, e.content_tsv, length(e.content_tsv)::float8 AS len
    FROM {rows}, any_term AS a WHERE e.content_tsv @@ a.query {scope}
), scored AS (
    SELECT c.id,
           sum(w.idf * {k1_plus_1} / (1 + {k1} * (1 - {b} + {b} * c.len / avg_len.v))) AS r
    FROM candidates AS c
    CROSS JOIN (SELECT greatest(avg(len), 1) AS v FROM candidates) AS avg_len
    JOIN weights AS w ON c.content_tsv @@ w.query
    GROUP BY c.id
), txt AS (
    SELECT id AS event_id, r, row_number() OVER (ORDER BY r DESC, id)::int AS rank
    FROM scored ORDER BY r DESC, id LIMIT %(n)s
)"""

_TEXT_RECALL = """WITH {words}
SELECT t.event_id, t.r::float8 AS score, {columns}, NULL::int AS vector_rank, t.rank AS text_rank
FROM txt AS t JOIN {events} AS e ON e.id = t.event_id
ORDER BY t.rank LIMIT %(k)s"""

# What a candidate from the period a question names gains on the fused scale (mostly 0..1). Measured on the
# conversation history's questions naming a month (recall@5, scoped, turns embedded with date and
# speaker): 0.417 without, 0.566 at 0.3, 0.658 at 0.5, 0.711 at 1.0; questions naming no time are
# untouched. At 0.5 a candidate of that period still needs words or meaning of the question to rank.
DATE_BOOST = 0.5

# Hybrid's candidates: each branch's best `n` with both scores; `fusion.py` ranks them (`hybrid_hits`).
# A vector candidate beyond the word branch's best `n` still gets its word score (`scored` holds every
# event with a selective query word): with many events tied in words, a cut at `n` would otherwise
# give copies of one statement different scores (docs/benchmarks.md). A NULL text score: no selective
# query word in it; a NULL vector score: beyond the vector branch's best `n`.
_HYBRID_CANDIDATES = """WITH vec AS (
    SELECT event_id, (1 - distance)::float8 AS score,
           row_number() OVER (ORDER BY distance, event_id)::int AS rank
    FROM ({nearest}) AS n
), {words}
SELECT coalesce(v.event_id, t.event_id) AS event_id, v.score AS vector_score,
       coalesce(t.r, s.r)::float8 AS text_score, {columns}, v.rank AS vector_rank, t.rank AS text_rank
FROM vec AS v FULL OUTER JOIN txt AS t ON t.event_id = v.event_id
LEFT JOIN scored AS s ON t.event_id IS NULL AND s.id = v.event_id
JOIN {events} AS e ON e.id = coalesce(v.event_id, t.event_id)"""


# A small scope's rows, read once: each query word is then counted over them rather than through the
# word's whole GIN posting list (measured at 100,000 events, a 1% scope: hybrid p95 45 ms -> see
# docs/benchmarks.md).
_SCOPED_ROWS = """scoped AS MATERIALIZED (
    SELECT e.id, e.content_tsv FROM {events} AS e WHERE true {scope}
), """


def _words(events: sql.Composable, scope: sql.Composable, small_scope: bool) -> sql.Composed:
    constants = {
        "k1": sql.Literal(_BM25_K1),
        "k1_plus_1": sql.Literal(_BM25_K1 + 1),
        "b": sql.Literal(_BM25_B),
        "df_cap": sql.Literal(_COMMON_WORD_EVENTS),
    }
    if small_scope:
        scoped = sql.SQL(_SCOPED_ROWS).format(events=events, scope=scope)
        rows, scope = sql.SQL("scoped AS e"), sql.SQL("")  # the scope is applied once, in `scoped`
        return sql.SQL(_WORDS).format(scoped=scoped, rows=rows, scope=scope, **constants)
    rows = sql.SQL("{} AS e").format(events)
    return sql.SQL(_WORDS).format(scoped=sql.SQL(""), rows=rows, scope=scope, **constants)


@dataclass(frozen=True)
class RecallQuery:
    """What one recall asks (see `MemoryStore.recall`): the query's vector (None in `text` mode) and
    words, the embedding model and width the vectors must match, how many hits, and the scope."""

    vector: Sequence[float] | np.ndarray | None
    model_sha256: str
    dimension: int
    k: int
    text: str | None
    mode: str
    candidates: int
    scope: RecallScope | None = None

    @property
    def branch_limit(self) -> int:
        """How many candidates each branch of a hybrid recall returns (at least `k`)."""
        return max(int(self.candidates), self.k)


def recall_statement(
    schema: str, request: RecallQuery, exact: bool = False
) -> tuple[sql.Composed, dict[str, Any]]:
    """The recall query and its parameters, after validating the inputs; `exact` (a small scope) compares
    every vector of the scope instead of walking the HNSW index, and counts words over its rows."""
    mode, k = request.mode, request.k
    mode_spec(mode)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a whole number of at least 1, not {k!r}")
    scope = request.scope or RecallScope()
    condition, params = scope.condition("e")
    params |= {"model": request.model_sha256, "k": k, "n": request.branch_limit}
    events = sql.Identifier(schema, EVENTS)
    parts = {"events": events, "columns": sql.SQL(HIT_COLUMNS)}
    if mode != "vector":
        if not request.text or not request.text.strip():
            raise ValueError(f"{mode} recall needs query_text (the words to match)")
        params["text"] = request.text
        parts["words"] = _words(events, condition, exact)
    if not mode_spec(mode).needs_vector:
        return sql.SQL(_TEXT_RECALL).format(**parts), params
    dim = checked_dimension(request.dimension)
    vector = np.asarray(request.vector, dtype=np.float32)
    if vector.shape != (dim,) or not np.isfinite(vector).all():
        raise ValueError(f"query vector must be {dim} finite numbers, got shape {vector.shape}")
    params["q"] = vector
    nearest = sql.SQL(_NEAREST).format(
        vtype=vector_type(dim),
        emb=sql.Identifier(schema, EMBEDDINGS),
        dim=sql.Literal(dim),
        # Unscoped recall never touches the events table before the LIMIT: the index alone answers it.
        join=sql.SQL("") if scope.empty else sql.SQL("JOIN {} AS e ON e.id = x.event_id").format(events),
        scope=condition,
        order=sql.SQL(_EXACT_ORDER if exact else _INDEXED_ORDER).format(vtype=vector_type(dim)),
        limit=sql.SQL("%(k)s" if mode == "vector" else "%(n)s"),
    )
    template = _VECTOR_RECALL if mode == "vector" else _HYBRID_CANDIDATES
    return sql.SQL(template).format(nearest=nearest, **parts), params


# A scope of at most this many events is searched exactly rather than through the HNSW index. Measured
# at 100,000 vectors: a 1% scope (1,000 events) exact 36 ms p50 vs 69 ms through the index; a 5% scope
# (5,000) 64 ms exact vs 26 ms through the index.
EXACT_SCOPE_ROWS = 2_000


def _small_scope(conn: psycopg.Connection[dict[str, Any]], schema: str, scope: RecallScope | None) -> bool:
    """Whether a recall's scope holds at most `EXACT_SCOPE_ROWS` events: their vectors are then compared
    one by one (exact, and at 100,000 vectors faster than an HNSW walk that must pass ~100 rows outside
    a 1% scope for each row inside it), and the query's words counted over those rows."""
    if scope is None or scope.empty:
        return False
    condition, params = scope.condition("e")
    query = sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM {} AS e WHERE true {} LIMIT {}) AS s").format(
        sql.Identifier(schema, EVENTS), condition, sql.Literal(EXACT_SCOPE_ROWS + 1)
    )
    row = conn.execute(query, params).fetchone()
    return row is not None and row["n"] <= EXACT_SCOPE_ROWS


def _tune_index_scan(conn: psycopg.Connection[dict[str, Any]], candidates: int) -> None:
    # Vectors of other models share the index; iterative scans keep filling the LIMIT after the model
    # filter drops rows, and ef_search must cover the candidates hybrid fuses.
    conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(min(1000, max(40, candidates))),))


def prepared_recall(
    conn: psycopg.Connection[dict[str, Any]], schema: str, request: RecallQuery
) -> tuple[sql.Composed, dict[str, Any]]:
    """The recall statement for this connection's transaction: exact over a small scope, else through
    the index with its scan tuned (`SET LOCAL`, so only this transaction is affected)."""
    exact = _small_scope(conn, schema, request.scope)
    query, params = recall_statement(schema, request, exact=exact)
    _tune_index_scan(conn, params["n"])
    return query, params


def run_recall(
    conn: psycopg.Connection[dict[str, Any]], schema: str, request: RecallQuery
) -> list[RecallHit]:
    """The hits of a recall (see `MemoryStore.recall`) on `conn`: a connection with dict rows and the
    vector type registered, inside a transaction."""
    query, params = prepared_recall(conn, schema, request)
    rows = conn.execute(query, params).fetchall()
    if request.mode != "hybrid":
        return [RecallHit(**row) for row in rows]
    candidates = hybrid_hits(rows, str(request.text), request.branch_limit)
    replies = reply_rows(conn, schema, candidates[:LIFTING_HITS], request.scope)
    return with_replies(candidates, replies, request.k)


def hybrid_hits(rows: Sequence[dict[str, Any]], question: str, branch_limit: int) -> list[RecallHit]:
    """Hybrid's candidate rows (each branch's best `branch_limit`) as hits, best first by their fused
    score (`fusion.fused`), those that happened in the period `question` names (if any) lifted by
    `DATE_BOOST`."""
    vector = {row["event_id"]: row["vector_score"] for row in rows if row["vector_score"] is not None}
    text = {row["event_id"]: row["text_score"] for row in rows if row["text_score"] is not None}
    scores = fused(vector, text, branch_limit)
    period = named_period(question)
    if period is not None:
        for row in rows:
            if period[0] <= row["occurred_at"] < period[1]:
                scores[row["event_id"]] += DATE_BOOST
    best = sorted(rows, key=lambda row: (-scores[row["event_id"]], row["event_id"]))
    return [
        RecallHit(
            **{key: value for key, value in row.items() if key not in ("vector_score", "text_score")},
            score=scores[row["event_id"]],
        )
        for row in best
    ]


def with_replies(hits: list[RecallHit], replies: list[dict[str, Any]], k: int) -> list[RecallHit]:
    """The best `k` of `hits` once the replies to asking hits (`adjacent_turns.reply_rows`) are lifted
    (`adjacent_turns.lifted`); a reply neither branch found joins with no branch rank."""
    raised = lifted({hit.event_id: hit.score for hit in hits}, replies)
    if not raised:
        return hits[:k]
    found = {hit.event_id for hit in hits}
    joined = [
        RecallHit(**{key: reply[key] for key in ("event_id", *HIT_FIELDS)}, score=raised[reply["event_id"]],
                  vector_rank=None, text_rank=None)
        for reply in replies if reply["event_id"] in raised and reply["event_id"] not in found
    ]  # fmt: skip
    kept = [replace(hit, score=raised[hit.event_id]) if hit.event_id in raised else hit for hit in hits]
    return sorted(kept + joined, key=lambda hit: (-hit.score, hit.event_id))[:k]
