"""`athena recall`: the stored events nearest a query, from the shell, without loading Dagster (the
one-shot path of `api/recall.py`); its parser imports nothing else, see `entry.py`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from athena_assets.api.app import App, Settings
from athena_assets.api.recall import DEFAULT_MODE, MAX_K, RECALL_MODES, hits_json, recall, scope_of


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


def _cmd_recall(args: argparse.Namespace, settings: Settings) -> int:
    scope = scope_of(args.source, args.session, args.type, args.since, args.until, _where(args.where))
    hits = recall(App(settings, one_shot=True), args.query, args.k, args.mode, scope)
    if args.json:
        print(json.dumps(hits_json(hits), indent=2, ensure_ascii=False))
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(
            f"{rank}. [{hit.score:.3f}] {hit.occurred_at:%Y-%m-%d %H:%M} {hit.event_id}: {hit.content[:160]}"
        )
    return 0


def add_recall_parser(commands: Any) -> argparse.ArgumentParser:
    """Add `recall` to the `athena` sub-commands (`commands`: the parser's add_subparsers action)."""
    modes = "; ".join(f"{mode.name}: {mode.description}" for mode in RECALL_MODES)
    recall_cmd = commands.add_parser("recall", help="the stored events nearest in meaning to a query")
    recall_cmd.add_argument("query")
    recall_cmd.add_argument("-k", type=int, default=5, help=f"how many events (1 to {MAX_K})")
    recall_cmd.add_argument(
        "--mode", choices=[mode.name for mode in RECALL_MODES], default=DEFAULT_MODE, help=modes
    )
    recall_cmd.add_argument("--source", help="only events from this source")
    recall_cmd.add_argument("--session", help="only events of this session id")
    recall_cmd.add_argument("--type", help="only events of this event type")
    recall_cmd.add_argument("--since", help="only events at or after this day or zoned timestamp")
    recall_cmd.add_argument(
        "--until", help="only events at or before this day (inclusive) or zoned timestamp"
    )
    recall_cmd.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE", help="metadata filter (repeatable)"
    )
    recall_cmd.add_argument("--json", action="store_true")
    recall_cmd.set_defaults(handler=_cmd_recall)
    return recall_cmd
