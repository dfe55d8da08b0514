"""The compose deployment driven from Python: checks before `up`, `up`, health, `down`.

`athena deploy` (cli/deploy_command.py) and the deployment test use it. Everything a user would trip
over first (no Docker, an empty secret, a host port already taken) is checked before Compose runs and
reported as one DeployError line naming the fix.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from athena_assets.api.deploy.docker_engine import (
    DeployError,
    compose_command,
    docker_command,
    require_engine,
)
from athena_assets.api.deploy.offline_images import build_offline_images

DOCKER_DIR = Path(__file__).resolve().parents[3] / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
OFFLINE_FILE = DOCKER_DIR / "docker-compose.offline.yml"
RUN_CONTAINERS_FILE = DOCKER_DIR / "docker-compose.run-containers.yml"
DOCKER_SOCKET = Path("/var/run/docker.sock")
SECRETS = ("POSTGRES_PASSWORD", "LLAMACPP_API_KEY")
# Host ports the deployment publishes on 127.0.0.1: the variable that moves each, and its default.
HOST_PORTS = {"ATHENA_WEBSERVER_PORT": 3000, "ATHENA_EMBEDDINGS_PORT": 8001, "ATHENA_REASONING_PORT": 8002}
REPLICA_PORT = {"ATHENA_EMBEDDINGS_2_PORT": 8003}
# The services `up` starts (the one-shot `models` is run apart, before them).
SERVICES = (
    "postgres",
    "llamacpp-embeddings",
    "llamacpp-reasoning",
    "athena-assets",
    "dagster-webserver",
    "dagster-daemon",
)
EMBEDDING_REPLICAS = ("llamacpp-embeddings", "llamacpp-embeddings-2")


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of a Compose env file (comments and blank lines skipped, no quoting rules)."""
    if not path.is_file():
        raise DeployError(
            f"{path} does not exist: cp docker/.env.example {path} and fill in {', '.join(SECRETS)}"
        )
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Deployment:
    """One compose project: its env file, whether it runs the offline images, whether each run gets
    a container of its own and whether a second embedding replica serves beside the first."""

    env_file: Path
    offline: bool = False
    run_containers: bool = False
    replicas: bool = False

    @property
    def env(self) -> dict[str, str]:
        """The env file's values."""
        return read_env_file(self.env_file)

    def files(self) -> list[str]:
        """The compose files, in override order."""
        optional = ((OFFLINE_FILE, self.offline), (RUN_CONTAINERS_FILE, self.run_containers))
        return [str(COMPOSE_FILE), *(str(file) for file, wanted in optional if wanted)]

    def command(self, *args: str) -> list[str]:
        """The Compose command line for `args` on this project."""
        command = [*compose_command(), "--env-file", str(self.env_file)]
        for file in self.files():
            command += ["-f", file]
        if self.replicas:
            command += ["--profile", "replicas"]
        return [*command, *args]

    def compose(
        self,
        *args: str,
        timeout_s: float = 600,
        check: bool = True,
        stdin: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run Compose on this project; a failure raises DeployError with Compose's last line."""
        read_env_file(self.env_file)  # a missing file: the copy to make, before Compose's own words
        try:
            done = subprocess.run(
                self.command(*args),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                env=self.environ(environ),
            )
        except subprocess.TimeoutExpired as err:
            raise DeployError(f"docker compose {args[0]} took longer than {timeout_s:.0f} s") from err
        if check and done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()] or ["no output"]
            raise DeployError(f"docker compose {args[0]} failed: {_last_error(lines)}")
        return done

    def environ(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Compose's environment: `environ` (default: ours), with the socket's group for run containers."""
        env = dict(os.environ if environ is None else environ)
        if self.run_containers and "DOCKER_GID" not in env and DOCKER_SOCKET.exists():
            env["DOCKER_GID"] = str(DOCKER_SOCKET.stat().st_gid)
        if self.replicas:
            env.setdefault(
                "ATHENA_EMBEDDINGS_URLS", ",".join(f"http://{name}:8001" for name in EMBEDDING_REPLICAS)
            )
        return env

    @property
    def services(self) -> tuple[str, ...]:
        """The services `up` starts."""
        return (*SERVICES, *EMBEDDING_REPLICAS[1:]) if self.replicas else SERVICES

    def container_ids(self) -> list[str]:
        """The ids of this project's containers, running or not."""
        return self.compose("ps", "-q", timeout_s=60).stdout.split()

    def check(self) -> None:
        """Before `up`: an engine answers, both secrets are set, no published host port is taken."""
        env = self.env
        for name in SECRETS:
            if not env.get(name):
                raise DeployError(f"{name} is empty in {self.env_file}: set it (e.g. openssl rand -hex 24)")
        require_engine()
        if self.container_ids():
            return  # ours already hold the ports; `up` keeps or recreates them
        for name, default in {**HOST_PORTS, **(REPLICA_PORT if self.replicas else {})}.items():
            port = int(env.get(name) or default)
            if _port_taken(port):
                raise DeployError(
                    f"port 127.0.0.1:{port} is already taken by another program: stop it, or set {name} "
                    f"to a free port in {self.env_file}"
                )

    def health(self) -> dict[str, str]:
        """Each started service's state: its health check's status, else the container's state."""
        containers = self.container_ids()
        if not containers:
            return {}
        done = subprocess.run(
            [*docker_command(), "inspect", "--format", "{{json .}}", *containers],
            capture_output=True,
            text=True,
            check=False,
        )
        states: dict[str, str] = {}
        # A container removed between `ps` and `inspect` is left out (inspect prints the others).
        for line in done.stdout.splitlines():
            info = json.loads(line)
            state = info["State"]
            service = info["Config"]["Labels"].get("com.docker.compose.service", info["Id"])
            states[service] = (state.get("Health") or {}).get("Status") or state["Status"]
        return states

    def wait_healthy(self, timeout_s: float = 600) -> dict[str, str]:
        """Wait until every service is healthy; a DeployError names those that are not by the deadline."""
        services = self.services
        deadline = time.monotonic() + timeout_s
        while True:
            states = self.health()
            waiting = {
                name: states.get(name, "missing") for name in services if states.get(name) != "healthy"
            }
            if not waiting:
                return states
            if time.monotonic() > deadline:
                detail = ", ".join(f"{name} {state}" for name, state in waiting.items())
                raise DeployError(
                    f"not healthy after {timeout_s:.0f} s: {detail}; see docker compose logs SERVICE"
                )
            time.sleep(2)


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _last_error(lines: list[str]) -> str:
    """Compose's most telling line: the last that says error, else its last line."""
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines)[-1].strip()


def up(deployment: Deployment, cache: Path, log: Callable[[str], None] = print) -> dict[str, str]:
    """Check, build the offline images when asked, fill the models volume, start and wait for health."""
    deployment.check()
    if deployment.offline:
        build_offline_images(cache, log)
    log("models into the models volume (verified; present files are kept)")
    deployment.compose("--profile", "models", "run", "--rm", "models", timeout_s=1800)
    log("docker compose up -d")
    deployment.compose("up", "-d", *(["--no-build"] if deployment.offline else []), timeout_s=1200)
    return deployment.wait_healthy()
