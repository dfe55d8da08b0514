"""`athena deploy`: the compose deployment (docker/) built, started, inspected and stopped.

Dagster-free like `recall_command.py`: it drives Docker, and its own parser imports nothing else (see
`entry.py`). Errors are one `athena: error:` line naming the fix (api/deploy/docker_engine.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from athena_assets.api.app import Settings
from athena_assets.api.deploy.compose import DOCKER_DIR, Deployment, up
from athena_assets.api.deploy.offline_images import build_offline_images


def _deployment(args: argparse.Namespace) -> Deployment:
    return Deployment(
        env_file=Path(args.env_file),
        offline=args.offline,
        run_containers=args.run_containers,
        replicas=args.replicas,
    )


def _cache(settings: Settings) -> Path:
    """Where the offline build keeps its wheelhouse between builds."""
    return settings.home / "deploy"


def _cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    deployment = _deployment(args)
    if args.action == "build":
        built = build_offline_images(_cache(settings))
        for image in (built.base, built.deps, built.project):
            print(f"{image}: {'built' if image in built.rebuilt else 'up to date'}")
    elif args.action == "up":
        states = up(deployment, _cache(settings))
        print(" ".join(f"{name}={state}" for name, state in sorted(states.items())))
    elif args.action == "status":
        states = deployment.health()
        if not states:
            print(f"no container of this deployment exists ({args.env_file}): `athena deploy up` starts it")
            return 1
        print(
            json.dumps(states, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in states.items())
        )
        return 0 if states and all(state == "healthy" for state in states.values()) else 1
    else:
        deployment.compose("down", *(["--volumes"] if args.volumes else []), timeout_s=300)
    return 0


def add_deploy_parser(commands: Any) -> argparse.ArgumentParser:
    """Add `deploy` to the `athena` sub-commands (`commands`: the parser's add_subparsers action)."""
    deploy = commands.add_parser("deploy", help="build, start, inspect or stop the Docker Compose deployment")
    deploy.add_argument("action", choices=["build", "up", "status", "down"])
    deploy.add_argument(
        "--offline",
        action="store_true",
        help="images built here without a registry (docker/docker-compose.offline.yml); `build` implies it",
    )
    deploy.add_argument(
        "--run-containers",
        action="store_true",
        help="each run in a container of its own (docker/docker-compose.run-containers.yml)",
    )
    deploy.add_argument(
        "--replicas",
        action="store_true",
        help="a second embedding server, requests spread over both (profile `replicas`)",
    )
    deploy.add_argument(
        "--env-file", default=str(DOCKER_DIR / ".env"), help="Compose's env file (docker/.env)"
    )
    deploy.add_argument("--volumes", action="store_true", help="down: also delete the data volumes")
    deploy.add_argument("--json", action="store_true", help="status: as JSON")
    deploy.set_defaults(handler=_cmd_deploy)
    return deploy
