"""The compose deployment started for real: Docker Engine, the offline images, every service.

`athena deploy up --offline --run-containers --replicas` builds the images without a registry (a debootstrap
base, the host's wheelhouse), fills the models volume with the `local` profile and starts the six
services of docker/docker-compose.yml and a second embedding replica, each run in a container of
its own. The tests then use it as a
user would: an event file ingested in the code location container, the daemon's sensor run, recall
in the container, the UI in Chromium, `down` and `up` again, the embedding server lost mid-backfill,
and the logs searched for the secrets. The engine is started here when none answers (and only what
was started here is stopped); `scripts/install_test_tools.sh` installs it, and a missing engine
fails the tests rather than skipping them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster._core.storage.tags import DOCKER_IMAGE_TAG
from dagster_docker.docker_run_launcher import DOCKER_CONTAINER_ID_TAG
from playwright.sync_api import expect

from athena_assets.api.deploy.compose import Deployment
from athena_assets.api.deploy.docker_engine import engine_answers
from athena_assets.definitions import defs
from athena_assets_tests.browser import chromium_page
from resources.stack.llama_server import free_port

ATHENA = str(Path(sys.executable).with_name("athena"))
PROJECT = "athenatest"
CODE_LOCATION = "athena-assets"
EMBEDDINGS = ("llamacpp-embeddings", "llamacpp-embeddings-2")
FIRST_EVENT = {
    "id": "compose-redis",
    "occurred_at": "2026-11-30T10:00:00Z",
    "content": "Redis refused connections on port 6391 until maxclients was raised to 20000",
}
KILL_DAYS = (date(2026, 11, 3), date(2026, 11, 4))
KILL_EVENTS = 1500
DEADLINE_S = 300


@dataclass(frozen=True)
class Deployed:
    """The running test deployment and what a test needs to reach it."""

    deployment: Deployment
    secrets: tuple[str, ...]
    webserver: str
    embeddings: tuple[str, ...]
    api_key: str

    def exec(self, service: str, *command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`command` run in `service`'s container (Compose's exec, no TTY)."""
        return self.deployment.compose("exec", "-T", service, *command, stdin=stdin, check=False)

    def graphql(self, query: str) -> dict[str, Any]:
        """The webserver's answer to a GraphQL query."""
        answer = httpx.post(f"{self.webserver}/graphql", json={"query": query}, timeout=30)
        answer.raise_for_status()
        return answer.json()["data"]


def _cli_environ() -> dict[str, str]:
    """This process's environment without the test stack's ATHENA_* settings: the CLI keeps its build
    cache in the default ATHENA_HOME, so a second run reuses the wheelhouse."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ATHENA_")}


def _athena_deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATHENA, "deploy", *args],
        env=env or _cli_environ(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def _env_file(path: Path, project: str, **values: str) -> Path:
    lines = [f"COMPOSE_PROJECT_NAME={project}", *(f"{name}={value}" for name, value in values.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker engine that answers: the running one, else a dockerd started here and stopped after."""
    for tool in ("docker", "dockerd", "docker-compose", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run scripts/install_test_tools.sh (make test does)")
    if engine_answers():
        yield
        return
    log_path = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not engine_answers():
            assert process.poll() is None, f"dockerd exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"dockerd did not answer in 60 s:\n{log_path.read_text()[-3000:]}"
            )
            time.sleep(0.5)
        yield
    finally:
        process.terminate()
        process.wait(60)


@pytest.fixture(scope="module")
def deployed(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """`athena deploy up --offline --run-containers --replicas` on free host ports with fresh secrets."""
    ports = {name: free_port() for name in ("web", "embeddings", "embeddings-2", "reasoning")}
    password, api_key = secrets.token_hex(16), secrets.token_hex(16)
    env_file = _env_file(
        tmp_path_factory.mktemp("deploy") / ".env",
        PROJECT,
        POSTGRES_PASSWORD=password,
        LLAMACPP_API_KEY=api_key,
        ATHENA_WEBSERVER_PORT=str(ports["web"]),
        ATHENA_EMBEDDINGS_PORT=str(ports["embeddings"]),
        ATHENA_EMBEDDINGS_2_PORT=str(ports["embeddings-2"]),
        ATHENA_REASONING_PORT=str(ports["reasoning"]),
    )
    deployment = Deployment(env_file, offline=True, run_containers=True, replicas=True)
    deployment.compose("down", "--volumes", check=False)  # what an interrupted run left
    try:
        up = _athena_deploy("up", "--offline", "--run-containers", "--replicas", "--env-file", str(env_file))
        assert up.returncode == 0, up.stdout + up.stderr
        yield Deployed(
            deployment=deployment,
            secrets=(password, api_key),
            webserver=f"http://127.0.0.1:{ports['web']}",
            embeddings=(
                f"http://127.0.0.1:{ports['embeddings']}",
                f"http://127.0.0.1:{ports['embeddings-2']}",
            ),
            api_key=api_key,
        )
    finally:
        deployment.compose("down", "--volumes", check=False)


def _recall(deployed: Deployed, query: str) -> list[str]:
    """The event ids `athena recall` prints in the code location container, best first."""
    done = deployed.exec(CODE_LOCATION, "athena", "recall", query, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return [hit["event_id"] for hit in json.loads(done.stdout)]


def _ingest(deployed: Deployed, name: str, rows: list[dict[str, Any]]) -> str:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    done = deployed.exec(
        CODE_LOCATION, "sh", "-c", f"cat > /tmp/{name} && athena ingest /tmp/{name}", stdin=text
    )
    assert done.returncode == 0 and f"accepted {len(rows)} events" in done.stdout, done.stdout + done.stderr
    return done.stdout


@pytest.mark.timeout(1800)
def test_every_service_is_healthy_and_published_on_loopback_only(deployed: Deployed) -> None:
    states = deployed.deployment.wait_healthy(timeout_s=60)
    assert set(states) >= {"postgres", *EMBEDDINGS, "llamacpp-reasoning", CODE_LOCATION, "dagster-daemon"}
    assert all(state == "healthy" for state in states.values()), states
    published = deployed.deployment.compose("ps").stdout
    assert re.findall(r"(\d+\.\d+\.\d+\.\d+):\d+->", published), published
    assert set(re.findall(r"(\d+\.\d+\.\d+\.\d+):\d+->", published)) == {"127.0.0.1"}, published


@pytest.mark.timeout(600)
def test_an_ingested_event_is_embedded_by_the_sensors_run_in_a_container_of_its_own(
    deployed: Deployed,
) -> None:
    stored = _ingest(deployed, "redis.jsonl", [FIRST_EVENT])
    inbox_file = stored.rsplit("/", 1)[1].rstrip(")\n")
    query = "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"  # newest first
    deadline = time.monotonic() + DEADLINE_S
    while True:
        runs = deployed.graphql(query)["runsOrError"]["results"]
        ours = [run for run in runs if {"key": "athena/inbox_file", "value": inbox_file} in run["tags"]]
        if ours and ours[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        assert time.monotonic() < deadline, f"no finished sensor run for {inbox_file}: {runs}"
        time.sleep(2)
    [run] = ours
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS", run
    assert tags["dagster/sensor_name"] == "new_events_sensor" and tags["dagster/partition"] == "2026-11-30"
    # Launched by the daemon into a container of its own, from the offline image.
    assert tags[DOCKER_IMAGE_TAG] == "athena-assets:offline" and tags[DOCKER_CONTAINER_ID_TAG], tags
    assert _recall(deployed, "Redis maxclients connection refused")[0] == FIRST_EVENT["id"]


@pytest.mark.timeout(600)
def test_the_webserver_draws_every_asset_group(deployed: Deployed, tmp_path: Path) -> None:
    assert httpx.get(f"{deployed.webserver}/server_info", timeout=10).status_code == 200
    specs = list(defs.resolve_all_asset_specs())
    groups = sorted({spec.group_name for spec in specs if spec.group_name})
    with chromium_page(tmp_path / "profile") as page:
        page.goto(f"{deployed.webserver}/asset-groups")
        for group in groups:
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        # Groups open collapsed; ⌥E expands them all (remembered), the reload fits the graph to the page.
        page.keyboard.press("Alt+KeyE")
        page.reload()
        expect(page.get_by_text("event_embeddings", exact=True).first).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Loading|fetching statuses"))).to_have_count(0)
        shot = tmp_path / "compose-lineage.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        page.goto(f"{deployed.webserver}/assets")
        for spec in specs:
            expect(page.get_by_text(spec.key.to_user_string(), exact=True).first).to_be_visible()


@pytest.mark.timeout(900)
def test_down_and_up_keep_the_data(deployed: Deployed) -> None:
    deployed.deployment.compose("down", timeout_s=300)
    assert deployed.deployment.container_ids() == []
    deployed.deployment.compose("up", "-d", "--no-build", timeout_s=600)
    deployed.deployment.wait_healthy(timeout_s=DEADLINE_S)
    assert _recall(deployed, "Redis maxclients connection refused")[0] == FIRST_EVENT["id"]


def _prompt_tokens(deployed: Deployed) -> list[float]:
    """Each embedding replica's count of prompt tokens processed (its Prometheus metrics)."""
    return [_prompt_tokens_of(url, deployed.api_key) for url in deployed.embeddings]


def _prompt_tokens_of(url: str, api_key: str) -> float:
    answer = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {api_key}"}, timeout=5)
    answer.raise_for_status()
    [value] = re.findall(r"^llamacpp:prompt_tokens_total (\S+)$", answer.text, flags=re.MULTILINE)
    return float(value)


@pytest.mark.timeout(900)
def test_the_embedding_containers_lost_mid_backfill_fail_naming_one_and_the_rerun_uses_both(
    deployed: Deployed,
) -> None:
    # The sensor would start runs of its own for the file below; the backfill is the one under test.
    stop = deployed.exec(
        "dagster-daemon",
        "dagster",
        "sensor",
        "stop",
        "new_events_sensor",
        "-w",
        "/opt/dagster/dagster_home/workspace.yaml",
    )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    rows = [
        {
            "id": f"kill-{i}",
            "occurred_at": f"{KILL_DAYS[i % 2]}T{i % 24:02d}:00:00Z",
            "content": f"deployment note {i}: the build of service {i % 37} took {i % 11} minutes",
        }
        for i in range(KILL_EVENTS)
    ]
    _ingest(deployed, "kill.jsonl", rows)
    days = [str(KILL_DAYS[0]), str(KILL_DAYS[1])]
    backfill = deployed.deployment.command(
        "exec", "-T", CODE_LOCATION, "athena", "backfill", "--from", days[0], "--to", days[1]
    )
    before = _prompt_tokens(deployed)
    process = subprocess.Popen(
        backfill, env=deployed.deployment.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + DEADLINE_S
    while _prompt_tokens(deployed) == before:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the backfill never reached the embedding server"
        time.sleep(0.05)
    deployed.deployment.compose("kill", *EMBEDDINGS)
    stdout, stderr = process.communicate(timeout=DEADLINE_S)

    assert process.returncode == 2, stdout + stderr
    [error] = stderr.splitlines()  # one line, nothing else
    logged = re.search(r"\(the run's log: (\S+)\)$", error)
    assert logged, error
    run_log = deployed.exec(CODE_LOCATION, "tail", "-c", "4000", logged.group(1)).stdout
    assert error.startswith("athena: error: run ") and "failed in event_embeddings" in error, error + run_log
    assert re.search(r"http://llamacpp-embeddings(-2)?:8001", error) and "run the same command again" in error

    deployed.deployment.compose("start", *EMBEDDINGS)
    deployed.deployment.wait_healthy(timeout_s=DEADLINE_S)
    restarted = _prompt_tokens(deployed)
    again = deployed.exec(CODE_LOCATION, "athena", "backfill", "--from", days[0], "--to", days[1])
    assert again.returncode == 0 and again.stderr == "", again.stdout + again.stderr
    counted = deployed.exec(
        "postgres",
        "psql",
        "-U",
        "athena",
        "-d",
        "athena",
        "-tAc",
        "SELECT count(*), count(DISTINCT event_id) FROM athena.event_embeddings WHERE event_id LIKE 'kill-%'",
    )
    assert counted.stdout.strip() == f"{KILL_EVENTS}|{KILL_EVENTS}", counted.stdout + counted.stderr
    # The code location spread the re-run over both replicas.
    assert all(now > then for now, then in zip(_prompt_tokens(deployed), restarted, strict=True))


@pytest.mark.timeout(300)
def test_no_secret_in_any_container_log(deployed: Deployed) -> None:
    logs = deployed.deployment.compose("logs", "--no-color", timeout_s=120).stdout
    assert "dagster.daemon" in logs and "llama" in logs  # the logs are there to search
    for secret in deployed.secrets:
        assert secret not in logs


def test_an_empty_secret_is_one_line_naming_it(tmp_path: Path) -> None:
    env_file = _env_file(tmp_path / ".env", "athenanosecret", POSTGRES_PASSWORD="", LLAMACPP_API_KEY="x")
    done = _athena_deploy("up", "--offline", "--env-file", str(env_file))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"athena: error: POSTGRES_PASSWORD is empty in {env_file}: set it (e.g. openssl rand -hex 24)"
    ]


def test_no_docker_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    env_file = _env_file(tmp_path / ".env", "athenanodocker", POSTGRES_PASSWORD="p", LLAMACPP_API_KEY="k")
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    done = _athena_deploy("up", "--env-file", str(env_file), env={**_cli_environ(), "PATH": str(empty_path)})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("athena: error: Docker is not installed: install Docker Engine"), line


def test_a_taken_port_is_one_line_naming_the_variable(engine: None, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env_file = _env_file(
            tmp_path / ".env",
            "athenaportcheck",
            POSTGRES_PASSWORD="p",
            LLAMACPP_API_KEY="k",
            ATHENA_WEBSERVER_PORT=str(port),
            ATHENA_EMBEDDINGS_PORT=str(free_port()),
            ATHENA_REASONING_PORT=str(free_port()),
        )
        done = _athena_deploy("up", "--offline", "--env-file", str(env_file))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"athena: error: port 127.0.0.1:{port} is already taken by another program: stop it, or set "
        f"ATHENA_WEBSERVER_PORT to a free port in {env_file}"
    ]
