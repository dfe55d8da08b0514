"""`athena recall`: the stored events nearest a query, from the shell, without loading Dagster.

A recall needs the query's vector, the sha256 of the embedding model whose vectors to search, and one
SQL statement. The model file the servers run is in the models directory, and its sha256 is remembered
beside it, so the command asks neither the Dagster instance nor any resource: it embeds the query over
HTTP and runs the recall statement the store runs (`resources/memory/recall.py`), on one connection.
It falls back to the full path (`memory_api.recall`, through the instance) when the model file is not
on this machine (a remote deployment), the schema predates this version (the full path migrates it) or
the query is longer than one server batch (the resource splits it).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from athena_assets.cli.run import quiet_dagster
from resources.llamacpp.embedding_request import embed_text
from resources.llamacpp.http import LlamaCppHttp, LlamaCppInputError
from resources.memory.recall import MODES, RecallMode, RecallQuery, RecallScope, run_recall, scope_of
from resources.memory.schema import DEFAULT_SCHEMA, RecallHit
from resources.models.file_sha import remembered_sha256
from resources.models.manifest import models_for_profile
from resources.settings import Settings, application_database_url

CANDIDATES = 50
CONNECT_TIMEOUT_S = 3


def _where(pairs: list[str]) -> dict[str, Any]:
    """`--where key=value` pairs as a metadata filter; a value that reads as JSON (3, true) is typed."""
    where: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--where {pair!r} must be key=value, e.g. --where repo=athena")
        try:
            where[key] = json.loads(value)
        except json.JSONDecodeError:
            where[key] = value
    return where


def quick_recall(
    settings: Settings, query: str, k: int = 5, mode: RecallMode = "vector", scope: RecallScope | None = None
) -> list[RecallHit] | None:
    """`memory_api.recall` without Dagster, or None when this machine cannot take the short path (the
    model file is elsewhere, or the schema needs the full path's migration)."""
    spec = models_for_profile(settings.model_profile)["embedding"]
    model_file = settings.models_dir / spec.file
    if not model_file.is_file():
        return None
    model_sha256 = remembered_sha256(model_file)
    vector: list[float] | None = None
    if mode != "text":
        http = LlamaCppHttp(settings.embeddings_urls, api_key=settings.api_key)
        try:
            vector, _, _ = embed_text(http, spec.query_prefix + query)
        except LlamaCppInputError:
            return None  # longer than one server batch: the resource splits it
        finally:
            http.close()
    url = application_database_url(settings)
    with psycopg.connect(url, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        try:
            register_vector(conn)
            request = RecallQuery(vector, model_sha256, len(vector or ()), k, query, mode, CANDIDATES, scope)
            return run_recall(conn, DEFAULT_SCHEMA, request)
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.ProgrammingError):
            return None  # a new database, or an older schema: the full path creates or migrates it


def _cmd_recall(args: argparse.Namespace, settings: Settings) -> int:
    scope = scope_of(args.source, args.session, args.type, args.since, args.until, _where(args.where))
    hits = quick_recall(settings, args.query, args.k, args.mode, scope)
    if hits is None:
        quiet_dagster()
        from athena_assets.cli import memory_api  # the full path: Dagster, the instance, the resources

        hits = memory_api.recall(args.query, k=args.k, mode=args.mode, settings=settings, scope=scope)
    if args.json:
        print(json.dumps([hit.to_json() for hit in hits], indent=2, ensure_ascii=False))
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(
            f"{rank}. [{hit.score:.3f}] {hit.occurred_at:%Y-%m-%d %H:%M} {hit.event_id}: {hit.content[:160]}"
        )
    return 0


def add_recall_parser(commands: Any) -> argparse.ArgumentParser:
    """Add `recall` to the `athena` sub-commands (`commands`: the parser's add_subparsers action)."""
    recall = commands.add_parser("recall", help="the stored events nearest in meaning to a query")
    recall.add_argument("query")
    recall.add_argument("-k", type=int, default=5, help="how many events")
    recall.add_argument("--mode", choices=MODES, default="vector")
    recall.add_argument("--source", help="only events from this source")
    recall.add_argument("--session", help="only events of this session id")
    recall.add_argument("--type", help="only events of this event type")
    recall.add_argument("--since", help="only events at or after this day or zoned timestamp")
    recall.add_argument("--until", help="only events at or before this day (inclusive) or zoned timestamp")
    recall.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE", help="metadata filter (repeatable)"
    )
    recall.add_argument("--json", action="store_true")
    recall.set_defaults(handler=_cmd_recall)
    return recall


def recall_parser() -> argparse.ArgumentParser:
    """An `athena` parser that knows only `recall` (what the script uses for it: see `entry.py`)."""
    parser = argparse.ArgumentParser(prog="athena")
    add_recall_parser(parser.add_subparsers(dest="command", required=True))
    return parser
