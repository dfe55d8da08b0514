"""The `athena` command: the local stack, model files and (as later issues land) the memory pipeline.

Every command calls the same functions the assets and the tests call, and materialises through the
Dagster instance the UI shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from athena_assets.instance import materialize, open_instance
from athena_assets.models import model_file_assets
from resources.local_stack import LocalStack, PartStatus
from resources.manifest import models_for_profile
from resources.settings import Settings


def _stack(settings: Settings) -> LocalStack:
    return LocalStack(settings, models_for_profile(settings.model_profile))


def _print_status(parts: list[PartStatus], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(part) for part in parts], indent=2))
        return
    for part in parts:
        state = "up" if part.healthy else "DOWN"
        owner = "" if part.managed else " (external)"
        print(
            f"{part.name:<22} {state:<5} {part.address:<28} pid={part.pid or '-':<8} "
            f"model={part.model or '-'}  {part.detail}{owner}"
        )


def materialize_models(settings: Settings) -> None:
    """Materialise both model-file assets through Dagster (fast when the files are already right)."""
    stack = _stack(settings)
    stack.start_database()
    with open_instance(settings) as instance:
        result = materialize(settings, model_file_assets, instance)
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        print(f"{materialization.asset_key.to_user_string()}: {materialization.metadata['path'].value}")


def stack_up(settings: Settings) -> list[PartStatus]:
    """Database, Dagster instance, model files (through Dagster, if missing) and both llama-servers."""
    stack = _stack(settings)
    stack.start_database()
    if stack.missing_models():
        materialize_models(settings)
    stack.start_llama_servers()
    return stack.status()


def _cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    stack = _stack(settings)
    if args.action == "up":
        parts = stack_up(settings)
        _print_status(parts, args.json)
        return 0 if all(part.healthy for part in parts) else 1
    if args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    parts = stack.status()
    _print_status(parts, args.json)
    return 0 if all(part.healthy for part in parts) else 1


def _cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    materialize_models(settings)
    return 0


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `athena` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.handler(args, settings))
    except (RuntimeError, ValueError, OSError) as err:
        print(f"athena: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
