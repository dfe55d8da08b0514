"""The `athena` command: parses arguments, calls the application layer (`athena_assets/api/`), prints.

Every command materialises through the Dagster instance the UI shows; none holds logic of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

from athena_assets.api import backfill as backfill_api
from athena_assets.api.app import App, Settings
from athena_assets.api.ingest import ingest
from athena_assets.api.metrics import format_stats, metrics, stats_frame
from athena_assets.api.patterns import patterns, patterns_json
from athena_assets.api.stack import (
    PartStatus,
    crashes_since,
    materialize_models,
    stack_down,
    stack_status,
    stack_up,
)
from athena_assets.cli.backfill_args import add_backfill_arguments, backfill_assets
from athena_assets.cli.demo import run_demo
from athena_assets.cli.deploy_command import add_deploy_parser
from athena_assets.cli.recall_command import add_recall_parser
from athena_assets.cli.run import run_command


def _print_status(parts: list[PartStatus], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(part) for part in parts], indent=2))
        return
    for part in parts:
        state = "up" if part.healthy else "DOWN"
        owner = "" if part.managed else " (external)"
        cpu = f"  cpu: {part.cpu}" if part.cpu else ""
        print(
            f"{part.name:<22} {state:<5} {part.address:<28} pid={part.pid or '-':<8} "
            f"model={part.model or '-'}  {part.detail}{owner}{cpu}"
        )


def _cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    app = App(settings)
    if args.action == "up":
        started = stack_up(app)
        for note in started.notes:
            print(f"note: {note}", file=sys.stderr)
        _print_status(started.parts, args.json)
        return 0 if all(part.healthy for part in started.parts) else 1
    if args.action == "down":
        stopped = stack_down(app)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    parts = stack_status(app)
    _print_status(parts, args.json)
    return 0 if all(part.healthy for part in parts) else 1


def _cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    for name, path in materialize_models(App(settings)).items():
        print(f"{name}: {path}")
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    return run_demo(settings)


def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    reports = ingest(App(settings), [Path(name) for name in args.files])
    for report in reports:
        parsed = report.parsed
        where = (
            "already in the inbox"
            if report.already_in_inbox
            else f"stored as {report.stored_as}"
            if report.stored_as
            else "nothing stored"
        )
        print(
            f"{report.source}: accepted {len(parsed.events)} events on {len(parsed.days)} days, "
            f"rejected {len(parsed.rejected)} lines ({where})"
        )
        for line in parsed.rejected[: args.show_rejected]:
            print(f"  {line.file}:{line.line}: {line.reason}")
        if len(parsed.rejected) > args.show_rejected:
            print(f"  ... and {len(parsed.rejected) - args.show_rejected} more (see the dead_letters table)")
    return 0 if all(report.parsed.events or not report.parsed.rejected for report in reports) else 1


def _cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    def progress(run: backfill_api.BackfillRun) -> None:
        if run.skipped:
            print(f"{run.first}..{run.last}: nothing new, no run (--force runs it anyway)", flush=True)
            return
        state = "ok" if run.success else "FAILED"
        print(f"run {run.run_id}: {run.first}..{run.last} {state}", flush=True)

    assets = backfill_assets(args)
    runs = backfill_api.backfill(App(settings), args.start, args.end, assets, progress, force=args.force)
    started = sum(not run.skipped for run in runs)
    print(f"{started} run(s) for {args.start}..{args.end}: {', '.join(assets)}")
    failed = next((run for run in runs if not run.success), None)
    if failed is not None:
        raise RuntimeError(
            f"run {failed.run_id} ({failed.first}..{failed.last}) failed in {failed.error or 'a step'}; "
            "fix that and run the same command again (finished days are kept)"
        )
    return 0


def _cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: the MCP SDK and uvicorn are not needed by any other command.
    from athena_assets.mcp.server import serve_http, serve_stdio
    from athena_assets.mcp.tools import MemoryTools

    tools = MemoryTools(App(settings))
    if args.http:
        print(
            f"athena mcp: streamable HTTP on http://{args.host}:{args.port}/mcp", file=sys.stderr, flush=True
        )
        serve_http(tools, args.host, args.port, settings.mcp_token)
    else:
        serve_stdio(tools)
    return 0


def _cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    report = metrics(App(settings), args.since)
    if args.csv:
        print(stats_frame(report.stats).to_csv(), end="")
    elif args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_stats(report.stats))
        redacted = report.redactions
        print(f"redactions: {redacted.placeholders} secrets replaced in {redacted.events} stored events")
    return 0


def _cmd_patterns(args: argparse.Namespace, settings: Settings) -> int:
    found = patterns(
        App(settings), since=args.since, as_of=args.as_of, include_superseded=args.include_superseded
    )
    if args.json:
        print(json.dumps(patterns_json(found), indent=2, ensure_ascii=False))
        return 0
    for pattern in found:
        print(
            f"{pattern.pattern_id} [{pattern.kind}, {pattern.method}] support={pattern.support} "
            f"confidence={pattern.confidence:.2f} "
            f"seen {pattern.first_seen:%Y-%m-%d}..{pattern.last_seen:%Y-%m-%d}"
        )
        print(f"  {pattern.title}: {pattern.description}")
        if pattern.valid_to is not None:
            print(
                f"  valid {pattern.valid_from:%Y-%m-%d}..{pattern.valid_to:%Y-%m-%d}, "
                f"superseded by {pattern.superseded_by}"
            )
        for event in pattern.evidence[: args.show_evidence]:
            print(f"    {event.occurred_at:%Y-%m-%d %H:%M} {event.event_id}: {event.content[:120]}")
        if len(pattern.evidence) > args.show_evidence:
            print(f"    ... and {len(pattern.evidence) - args.show_evidence} more evidence events")
    if not found:
        print("no patterns yet; run `athena backfill --from ... --to ... --assets consolidated_patterns`")
    return 0


def explain_crashes(settings: Settings, since: datetime) -> None:
    """Say which part of the local stack a signal killed while this command ran, if one did."""
    for crash in crashes_since(App(settings), since):
        print(f"athena: {crash.message()}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The `athena` argument parser (one sub-command per area)."""
    parser = argparse.ArgumentParser(prog="athena", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    stack = commands.add_parser("stack", help="start, stop or inspect the local stack")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--json", action="store_true", help="machine-readable output")
    stack.set_defaults(handler=_cmd_stack)

    models = commands.add_parser("models", help="materialise the model-file assets through Dagster")
    models.set_defaults(handler=_cmd_models)

    demo = commands.add_parser("demo", help="the main job: stack, sample history, backfill, recall")
    demo.set_defaults(handler=_cmd_demo)

    ingest = commands.add_parser("ingest", help="validate JSONL event files and store them in the inbox")
    ingest.add_argument("files", nargs="+", help="JSON Lines files, one event per line")
    ingest.add_argument("--show-rejected", type=int, default=20, help="rejected lines to print per file")
    ingest.set_defaults(handler=_cmd_ingest)

    backfill = commands.add_parser("backfill", help="materialise a range of days through Dagster")
    add_backfill_arguments(backfill)
    backfill.set_defaults(handler=_cmd_backfill, run_log=True)

    add_recall_parser(commands)
    add_deploy_parser(commands)

    patterns = commands.add_parser("patterns", help="semantic patterns with support, confidence and evidence")
    patterns.add_argument("--since", type=date.fromisoformat, help="last seen on or after YYYY-MM-DD")
    when = patterns.add_mutually_exclusive_group()
    when.add_argument(
        "--as-of", type=date.fromisoformat, help="what was current at the end of YYYY-MM-DD (default: now)"
    )
    when.add_argument(
        "--include-superseded",
        action="store_true",
        help="list replaced patterns too, with valid_from, valid_to and superseded_by",
    )
    patterns.add_argument("--json", action="store_true")
    patterns.add_argument("--show-evidence", type=int, default=5, help="evidence events printed per pattern")
    patterns.set_defaults(handler=_cmd_patterns)

    mcp = commands.add_parser("mcp", help="serve the memory to an assistant over MCP (stdio, or --http)")
    mcp.add_argument("--http", action="store_true", help="streamable HTTP at /mcp instead of stdio")
    mcp.add_argument(
        "--host", default="127.0.0.1", help="address to bind (not loopback: needs ATHENA_MCP_TOKEN)"
    )
    mcp.add_argument("--port", type=int, default=8765)
    mcp.set_defaults(handler=_cmd_mcp)

    metrics = commands.add_parser("metrics", help="model-call statistics of every run (the Dagster instance)")
    metrics.add_argument("--since", type=date.fromisoformat, help="calls from this UTC day on (YYYY-MM-DD)")
    metrics.add_argument(
        "--json",
        action="store_true",
        help="the get_all_stats() shape as JSON, with the seed's field names too",
    )
    metrics.add_argument("--csv", action="store_true", help="one row per call kind, as CSV (pandas)")
    metrics.set_defaults(handler=_cmd_metrics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `athena` command; returns the process exit code (see `entry.main` for the script)."""
    return run_command(build_parser(), argv, explain_crashes)
