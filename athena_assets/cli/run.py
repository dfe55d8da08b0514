"""Running one parsed `athena` command: settings, the handler, and errors as one line each.

Kept free of Dagster imports, so the commands that need no Dagster (`athena recall`) start in a
fraction of a second; see `entry.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from athena_assets.api.app import Settings
from athena_assets.api.errors import database_down, database_unreachable


def quiet_dagster() -> None:
    """Import Dagster with its beta warnings silenced: the asset modules use beta APIs on purpose
    (backfill policies) and their decorators warn as they are imported, which a user cannot act on.
    Call it before importing anything that loads the asset modules."""
    import dagster as dg  # here, not at the top: `athena recall` must not pay for it

    warnings.filterwarnings("ignore", category=dg.BetaWarning)


@contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Send everything this process writes to its standard error (file descriptor 2: Python's logging,
    Dagster's console, a connection pool's retry warnings) to the end of `path` until the block ends.

    At the descriptor, not `sys.stderr`: Dagster's and the pool's handlers hold the stream they were
    created with."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("a", encoding="utf-8") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def one_command_parser(add: Callable[[Any], argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """An `athena` parser that knows only the sub-command `add` adds (`add(commands)`, the parser's
    add_subparsers action): what `entry.py` uses for the commands that must not import Dagster."""
    parser = argparse.ArgumentParser(prog="athena")
    add(parser.add_subparsers(dest="command", required=True))
    return parser


def run_log_path(settings: Settings, command: str, started: datetime) -> Path:
    """Where a command that runs Dagster writes its runs' log (`ATHENA_HOME/logs`)."""
    return settings.home / "logs" / f"{command}-{started:%Y%m%dT%H%M%S}.log"


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    on_failure: Callable[[Settings, datetime], None],
) -> int:
    """Parse `argv`, run the chosen handler (`handler(args, settings) -> exit code`) and print any
    expected error as one `athena: error:` line; `on_failure` explains what else went wrong (a crash).

    A command whose parser sets `run_log` (one that runs Dagster: its console, and the warnings of
    whatever fails under it) writes its standard error to `run_log_path`, named in its error line, so
    the terminal holds the command's own output and one line per error."""
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    try:
        settings = Settings.from_env()
    except ValueError as err:
        print(f"athena: error: {err}", file=sys.stderr)
        return 2
    log = run_log_path(settings, args.command, started) if getattr(args, "run_log", False) else None
    message = None
    try:
        with stderr_to(log) if log is not None else nullcontext():
            code = int(args.handler(args, settings))
    except psycopg.OperationalError as err:
        message, code = database_down(settings, err), 2
    except (RuntimeError, ValueError, OSError, psycopg.Error) as err:
        message = database_down(settings, err) if database_unreachable(err) else str(err)
        code = 2
    except Exception as err:
        # The database going away in the middle of a run surfaces from Dagster's storage (SQLAlchemy):
        # one line naming it and the fix, instead of a traceback through Dagster's internals.
        if not database_unreachable(err):
            raise
        message, code = database_down(settings, err), 2
    if log is not None and log.is_file() and log.stat().st_size == 0:
        log.unlink()  # nothing was said: no file to look at
    if message is not None:
        logged = f" (the run's log: {log})" if log is not None and log.is_file() else ""
        print(f"athena: error: {message}{logged}", file=sys.stderr)
    if code != 0:
        on_failure(settings, started)
    return code
