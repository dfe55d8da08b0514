"""Recall: the stored events nearest a query, by meaning, by words or both (`RECALL_MODES`), within a
scope. Every front end (the CLI, the MCP tools, the seed's HTTP tools, Python) recalls through `recall`.

A recall needs three things: the query's vector (when its mode needs one), the identity of the
embedding model and context whose vectors to search (`App.vector_key`), and the store's recall statement
(`resources/memory/recall.py`). A long-lived process gets them from its resources (the embedding
client, the store's connection pool). A one-shot command (`App.one_shot`) builds the same pieces the
light way, with no Dagster: the query embedded over one HTTP client and the statement run on one
connection. It takes the resources' way when the light one cannot answer: a query longer than one
server batch (the embedding client splits it), or a schema this version has not migrated yet (the
store migrates it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from athena_assets.api.app import App
from resources.llamacpp.embedding_request import embed_text
from resources.llamacpp.http import LlamaCppHttp, LlamaCppInputError
from resources.memory.recall import DEFAULT_MODE, MODES, RECALL_MODES, RecallQuery, mode_spec, run_recall
from resources.memory.recall_scope import SCOPE_FIELDS, RecallScope, scope_of
from resources.memory.records import RecallHit
from resources.memory.schema import DEFAULT_SCHEMA
from resources.settings import application_database_url

__all__ = [
    "DEFAULT_MODE",
    "MAX_K",
    "MODES",
    "RECALL_MODES",
    "SCOPE_FIELDS",
    "RecallScope",
    "hits_json",
    "recall",
    "scope_of",
]

MAX_K = 100
# How many of each branch's best events hybrid fuses.
CANDIDATES = 50
CONNECT_TIMEOUT_S = 3


def recall(
    app: App, query: str, k: int = 5, mode: str = DEFAULT_MODE, scope: RecallScope | None = None
) -> list[RecallHit]:
    """The `k` stored events of `scope` (all when None) nearest `query`, best first.

    `hybrid` (the default) fuses the meaning and the words of the query; `vector` finds paraphrases;
    `text` ranks by the query's words (rarer words weigh more) and embeds nothing."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query is empty; say what to look for")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    needs_vector = mode_spec(mode).needs_vector
    request = RecallQuery(None, app.vector_key(), 0, k, query, mode, CANDIDATES, scope)
    if app.one_shot:
        hits = _light_recall(app, request, needs_vector)
        if hits is not None:
            return hits
    resources = app.resources
    vector = resources.embeddings.embed_query(query) if needs_vector else None
    return resources.memory.recall(
        None if vector is None else list(vector.embedding),
        request.model_sha256,
        0 if vector is None else vector.dimension,
        k=k,
        query_text=query,
        mode=mode,
        candidates=CANDIDATES,
        scope=scope,
    )


def _light_recall(app: App, request: RecallQuery, needs_vector: bool) -> list[RecallHit] | None:
    """`recall` without Dagster or pools, or None where only the resources can answer (see above)."""
    settings = app.settings
    if needs_vector:
        http = LlamaCppHttp(settings.embeddings_urls, api_key=settings.api_key)
        try:
            vector, _, _ = embed_text(http, app.model("embedding").query_prefix + str(request.text))
        except LlamaCppInputError:
            return None
        finally:
            http.close()
        request = replace(request, vector=vector, dimension=len(vector))
    url = application_database_url(settings)
    with psycopg.connect(url, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        try:
            register_vector(conn)
            return run_recall(conn, DEFAULT_SCHEMA, request)
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.ProgrammingError):
            return None


def hits_json(hits: list[RecallHit]) -> list[dict[str, Any]]:
    """`hits` as JSON-ready dicts (what `--json` prints and the tools return)."""
    return [hit.to_json() for hit in hits]
