"""`athena backfill`'s arguments, and its answer when nothing is new, without loading Dagster: the
check reads the inbox's index and asks the store two questions (`api/backfill_plan.py`), so a re-run
answers in a fraction of a second. Anything else (work to do, `--force`, an error) goes the full way,
through Dagster (`main.py`); see `entry.py`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date

import psycopg

from athena_assets.api.app import App, Settings
from athena_assets.api.backfill_plan import BACKFILL_ASSET_NAMES, DEFAULT_BACKFILL, planned_ranges, up_to_date


def _asset_names(value: str) -> list[str]:
    """`--assets a,b c` as a user types it: names separated by commas as well as spaces."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKFILL_ASSET_NAMES]
    if unknown or not names:
        choices = ", ".join(BACKFILL_ASSET_NAMES)
        raise argparse.ArgumentTypeError(
            f"unknown asset {', '.join(unknown) or repr(value)}; choose from {choices}"
        )
    return names


def add_backfill_arguments(backfill: argparse.ArgumentParser) -> None:
    """The options of `athena backfill` (one definition for both of its paths)."""
    backfill.add_argument("--from", dest="start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    backfill.add_argument("--to", dest="end", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    backfill.add_argument(
        "--force", action="store_true", help="run every range, even one with nothing new to load or embed"
    )
    backfill.add_argument(
        "--assets",
        nargs="+",
        action="extend",
        type=_asset_names,
        metavar="ASSET",
        help="assets to materialise, separated by spaces or commas (default: the events and embeddings)",
    )


def backfill_assets(args: argparse.Namespace) -> tuple[str, ...]:
    """The assets `athena backfill` materialises: those named (each once, in order), else the events and
    their embeddings (the reasoning model runs only when asked for)."""
    named = [name for group in args.assets or () for name in group]
    return tuple(dict.fromkeys(named)) or DEFAULT_BACKFILL


def nothing_new(argv: Sequence[str]) -> int | None:
    """Print what `athena backfill ARGV` prints when no range has anything new, and return 0; None when
    it has work, is forced, or cannot be answered here (bad arguments, settings or database: the full
    path reports those)."""
    parser = argparse.ArgumentParser(prog="athena backfill", add_help=False)
    add_backfill_arguments(parser)
    try:
        args, rest = parser.parse_known_args(argv)
        settings = Settings.from_env()
        if rest or args.force or args.start < settings.history_start:
            return None
        app, assets = App(settings, one_shot=True), backfill_assets(args)
        ranges = planned_ranges(app, args.start, args.end)
        if not all(up_to_date(app, start, end, assets) for start, end in ranges):
            return None
    except (SystemExit, ValueError, OSError, psycopg.Error):
        return None
    for start, end in ranges:
        print(f"{start}..{end}: nothing new, no run (--force runs it anyway)", flush=True)
    print(f"0 run(s) for {args.start}..{args.end}: {', '.join(assets)}")
    return 0
