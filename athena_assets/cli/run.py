"""Running one parsed `athena` command: settings, the handler, and errors as one line each.

Kept free of Dagster imports, so the commands that need no Dagster (`athena recall`) start in a
fraction of a second; see `entry.py`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import psycopg

from athena_assets.api.app import Settings
from athena_assets.api.errors import database_down, database_unreachable


def quiet_dagster() -> None:
    """Import Dagster with its beta warnings silenced: the asset modules use beta APIs on purpose
    (backfill policies) and their decorators warn as they are imported, which a user cannot act on.
    Call it before importing anything that loads the asset modules."""
    import dagster as dg  # here, not at the top: `athena recall` must not pay for it

    warnings.filterwarnings("ignore", category=dg.BetaWarning)


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    on_failure: Callable[[Settings, datetime], None],
) -> int:
    """Parse `argv`, run the chosen handler (`handler(args, settings) -> exit code`) and print any
    expected error as one `athena: error:` line; `on_failure` explains what else went wrong (a crash)."""
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    try:
        settings = Settings.from_env()
    except ValueError as err:
        print(f"athena: error: {err}", file=sys.stderr)
        return 2
    try:
        code = int(args.handler(args, settings))
    except psycopg.OperationalError as err:
        print(f"athena: error: {database_down(settings, err)}", file=sys.stderr)
        code = 2
    except (RuntimeError, ValueError, OSError, psycopg.Error) as err:
        message = database_down(settings, err) if database_unreachable(err) else str(err)
        print(f"athena: error: {message}", file=sys.stderr)
        code = 2
    except Exception as err:
        # The database going away in the middle of a run surfaces from Dagster's storage (SQLAlchemy):
        # one line naming it and the fix, instead of a traceback through Dagster's internals.
        if not database_unreachable(err):
            raise
        print(f"athena: error: {database_down(settings, err)}", file=sys.stderr)
        code = 2
    if code != 0:
        on_failure(settings, started)
    return code
