"""The Docker engine and Compose as `athena deploy` finds them, each failure one line naming the fix."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess


class DeployError(RuntimeError):
    """A deployment step that cannot go on; the message is one line that says what to do."""


INSTALL_DOCKER = (
    "Docker is not installed: install Docker Engine (Debian: apt-get install docker.io docker-compose; "
    "elsewhere https://docs.docker.com/engine/install/), then run this again"
)


def docker_command() -> list[str]:
    """The docker CLI, or a DeployError saying how to install it."""
    binary = shutil.which("docker")
    if binary is None:
        raise DeployError(INSTALL_DOCKER)
    return [binary]


@functools.cache
def compose_command() -> tuple[str, ...]:
    """Compose v2 (`docker compose`) where the CLI has the plugin, else docker-compose 1.29+ (asked
    once per process: `wait_healthy` runs Compose every two seconds)."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return (docker, "compose")
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return (legacy,)
    if docker is None:
        raise DeployError(INSTALL_DOCKER)
    raise DeployError(
        "Docker Compose is not installed: apt-get install docker-compose (or the compose plugin)"
    )


def engine_answers() -> bool:
    """Whether a Docker engine answers the CLI (the daemon is running and this user may use it)."""
    done = subprocess.run(
        [*docker_command(), "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0


def require_engine() -> None:
    """Raise a one-line DeployError unless a Docker engine answers."""
    if not engine_answers():
        raise DeployError(
            "the Docker engine does not answer: start it (systemctl start docker, or dockerd as root) "
            "and check that this user may use it (the docker group), then run this again"
        )


def image_label(image: str, label: str) -> str | None:
    """The value of `label` on a local image, or None when the image or the label is missing."""
    done = subprocess.run(
        [*docker_command(), "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    labels = json.loads(done.stdout.strip() or "null") or {}
    return labels.get(label)
