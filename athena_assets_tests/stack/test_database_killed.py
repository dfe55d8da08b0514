"""A part of the stack SIGKILLed in the middle of a backfill, on a private database and Dagster instance.

PostgreSQL (with the session's embedding server): one line naming the database and the fix, the run ends
FAILURE at the next command, and the re-run leaves every event with exactly one vector and the dead
letters as they were. The embedding server, or the reasoning server while patterns are consolidated (a
private one): one line naming the failed step and the server's URL, and after a restart the same command
finishes the work. Either way stderr holds that line and nothing else; the rest is in the run's log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psutil
import psycopg
import pytest

from athena_assets.api.instance import PID_TAG
from athena_assets_tests.helpers import StackHandle, write_jsonl
from resources.models.manifest import models_for_profile
from resources.settings import Settings
from resources.stack.llama_server import (
    LlamaServerConfig,
    ServerProcess,
    start_llama_server,
    stop_llama_server,
)
from resources.stack.local import LocalStack, private_stack_environment
from resources.stack.postgres import running_postgres

DAYS = ("2026-08-04", "2026-08-05")
EVENTS = 1500
WAIT_S = 240


def _athena(environ: dict[str, str], *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    athena = str(Path(sys.executable).with_name("athena"))
    return subprocess.run(
        [athena, *args], env=environ, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def _step_started(instance: dg.DagsterInstance, pid: int, step: str) -> bool:
    """Whether the run of the `athena` process `pid` has started `step`."""
    for run in instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(pid)})):
        started = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
        if any(entry.step_key == step for entry in started):
            return True
    return False


def _backfill_until(
    environ: dict[str, str], settings: Settings, step: str = "event_embeddings", *args: str
) -> subprocess.Popen[str]:
    """`athena backfill` of `DAYS` (and `args`) started, once its run has started `step`."""
    athena = str(Path(sys.executable).with_name("athena"))
    backfill = [athena, "backfill", "--from", DAYS[0], "--to", DAYS[1], *args]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    process = subprocess.Popen(backfill, env=environ, text=True, **pipes)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        deadline = time.monotonic() + WAIT_S
        while not _step_started(instance, process.pid, step):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"the step {step} never started"
            time.sleep(0.05)
    finally:
        instance.dispose()
    return process


def _one_line_naming(stderr: str, step: str, url: str) -> None:
    """stderr is exactly one error line naming the failed `step`, the server at `url` and the run's log."""
    [error] = stderr.splitlines()  # one line, nothing else
    assert error.startswith("athena: error: run ") and f"failed in {step}" in error, error
    assert url in error, error
    assert "run the same command again" in error and "(the run's log: " in error, error


@pytest.mark.timeout(900)
def test_postgresql_killed_mid_backfill(stack: StackHandle, tmp_path: Path) -> None:
    private = private_stack_environment(tmp_path / "home", models_dir=stack.settings.models_dir)
    private |= {
        "LLAMACPP_EMBEDDINGS_URL": stack.embeddings_url,
        "LLAMACPP_REASONING_URL": stack.reasoning_url,
    }
    settings = Settings.from_env(private)
    local = LocalStack(settings, models_for_profile(settings.model_profile))
    environ = {**os.environ, **private}
    local.start_database()
    try:
        assert _athena(environ, "models").returncode == 0  # the files exist: only recorded in the instance
        rows = [
            {
                "id": f"killed-{i}",
                "occurred_at": f"{DAYS[i % 2]}T{i % 24:02d}:{i % 60:02d}:00Z",
                "content": f"event {i}: the staging deploy {i} waited for the database migration {i % 17}",
            }
            for i in range(EVENTS)
        ]
        bad = ['{"id": "broken-1", "content": "no time"}', "not json at all"]
        ingested = _athena(environ, "ingest", str(write_jsonl(tmp_path / "many.jsonl", rows, bad)))
        assert "rejected 2 lines" in ingested.stdout, ingested.stdout + ingested.stderr
        dead_letters = "SELECT file, line, reason FROM athena.dead_letters ORDER BY line"
        with psycopg.connect(local.database_url()) as conn:
            dead_before = conn.execute(dead_letters).fetchall()
        assert len(dead_before) == 2
        process = _backfill_until(environ, settings)
        postmaster = running_postgres(local.pgdata)
        assert postmaster is not None
        os.kill(postmaster.pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=WAIT_S)

        assert process.returncode == 2, stderr
        # The whole of stderr is one line naming the database, the fix and the run's log; the pool's
        # retries and Dagster's failure to log them are in that log.
        [error] = stderr.splitlines()
        assert error.startswith("athena: error:"), stderr
        assert "does not answer" in error and str(settings.pg_port) in error, stderr
        assert "athena stack up" in error, error
        log = Path(error.rsplit("(the run's log: ", 1)[1].rstrip(")"))
        assert log.parent == settings.home / "logs" and log.name.startswith("backfill-"), error
        # What was kept off the terminal names the lost database (which of the pool's retries, its
        # discarding a broken connection, or Dagster's failure to log comes first depends on when the
        # kill lands).
        lost = (
            "Connection refused", "server closed the connection", "Exception while writing logger call",
            "discarding closed connection",
        )  # fmt: skip
        assert any(sign in log.read_text() for sign in lost), log.read_text()[-2000:]

        local.start_database()  # `athena stack up` would do the same
        assert _athena(environ, "metrics").returncode == 0
        instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        [run] = instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(process.pid)}))
        assert run.status == dg.DagsterRunStatus.FAILURE
        instance.dispose()

        again = _athena(environ, "backfill", "--from", DAYS[0], "--to", DAYS[1])
        assert again.returncode == 0, again.stdout + again.stderr
        with psycopg.connect(local.database_url()) as conn:
            counts = conn.execute(
                """SELECT count(*), count(DISTINCT e.id), count(x.event_id)
                   FROM athena.episodic_events e LEFT JOIN athena.event_embeddings x ON x.event_id = e.id"""
            ).fetchone()
            dead_after = conn.execute(dead_letters).fetchall()
        assert counts == (EVENTS, EVENTS, EVENTS), json.dumps(counts)  # one vector per event, no gap
        assert dead_after == dead_before  # the dead letters are the same as before
    finally:
        local.down()


@dataclass(frozen=True)
class _Private:
    """A private database and Dagster instance on the session's servers but one, a private server."""

    settings: Settings
    local: LocalStack
    environ: dict[str, str]
    server: LlamaServerConfig
    record: ServerProcess
    run_dir: Path

    def kill_server(self) -> None:
        """SIGKILL the private llama-server (the child of the recorded process)."""
        [llama_server] = psutil.Process(self.record.pid).children()
        llama_server.kill()

    def restart_server(self) -> None:
        """Start the private llama-server again (`athena stack up` would)."""
        start_llama_server(self.server, self.run_dir, timeout_s=120)


@contextmanager
def _private_with(stack: StackHandle, tmp_path: Path, server: LlamaServerConfig) -> Iterator[_Private]:
    """`_Private` with `server` in its role (the one the config's `embedding` flag names), started;
    the server and the database stopped after."""
    private = private_stack_environment(tmp_path / "home", models_dir=stack.settings.models_dir)
    private |= {
        "LLAMACPP_EMBEDDINGS_URL": stack.embeddings_url,
        "LLAMACPP_REASONING_URL": stack.reasoning_url,
    }
    private["LLAMACPP_EMBEDDINGS_URL" if server.embedding else "LLAMACPP_REASONING_URL"] = server.url
    settings = Settings.from_env(private)
    local = LocalStack(settings, models_for_profile(settings.model_profile))
    run_dir = tmp_path / "servers"
    local.start_database()
    try:
        record = start_llama_server(server, run_dir, timeout_s=120)
        yield _Private(settings, local, {**os.environ, **private}, server, record, run_dir)
    finally:
        stop_llama_server(server.name, run_dir)
        local.down()


def _ingest(environ: dict[str, str], tmp_path: Path) -> None:
    rows = [
        {"id": f"lost-{i}", "occurred_at": f"{DAYS[i % 2]}T{i % 24:02d}:{i % 60:02d}:00Z",
         "content": f"event {i}: the nightly export {i} streamed rows in batches of {i % 50}"}
        for i in range(EVENTS)
    ]  # fmt: skip
    ingested = _athena(environ, "ingest", str(write_jsonl(tmp_path / "lost.jsonl", rows)))
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr


@pytest.mark.timeout(900)
def test_the_embedding_server_killed_mid_backfill(stack: StackHandle, tmp_path: Path) -> None:
    with _private_with(stack, tmp_path, stack.private_embedding_server("lost-embeddings")) as private:
        environ = private.environ
        assert _athena(environ, "models").returncode == 0
        _ingest(environ, tmp_path)
        process = _backfill_until(environ, private.settings)
        private.kill_server()
        stdout, stderr = process.communicate(timeout=WAIT_S)

        assert process.returncode == 2, stdout + stderr
        _one_line_naming(stderr, "event_embeddings", private.server.url)

        private.restart_server()
        again = _athena(environ, "backfill", "--from", DAYS[0], "--to", DAYS[1])
        assert again.returncode == 0 and again.stderr == "", again.stdout + again.stderr
        with psycopg.connect(private.local.database_url()) as conn:
            vectors = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM athena.event_embeddings"
            ).fetchone()
        assert vectors == (EVENTS, EVENTS)  # one vector per event, none twice


@pytest.mark.timeout(900)
def test_the_reasoning_server_killed_mid_consolidation(stack: StackHandle, tmp_path: Path) -> None:
    with _private_with(stack, tmp_path, stack.private_reasoning_server("lost-reasoning")) as private:
        environ = private.environ
        assert _athena(environ, "models").returncode == 0
        # On each day, one subject said six ways: a cluster the reasoning model is asked about.
        failures = ("timed out after 30 s", "hit its 30 s timeout", "took over 30 s and was killed")
        rows = [
            {
                "id": f"slow-{day}-{i}",
                "occurred_at": f"{day}T{9 + i:02d}:00:00Z",
                "content": f"The db_session pytest fixture {failures[i % 3]} on the CI runner (attempt {i})",
            }
            for day in DAYS
            for i in range(6)
        ]
        ingested = _athena(environ, "ingest", str(write_jsonl(tmp_path / "slow.jsonl", rows)))
        assert ingested.returncode == 0, ingested.stdout + ingested.stderr
        embedded = _athena(environ, "backfill", "--from", DAYS[0], "--to", DAYS[1])
        assert embedded.returncode == 0, embedded.stdout + embedded.stderr

        step = "consolidated_patterns"
        process = _backfill_until(environ, private.settings, step, "--assets", step)
        private.kill_server()
        stdout, stderr = process.communicate(timeout=WAIT_S)

        assert process.returncode == 2, stdout + stderr
        _one_line_naming(stderr, "consolidated_patterns", private.server.url)

        private.restart_server()
        again = _athena(environ, "backfill", "--from", DAYS[0], "--to", DAYS[1], "--assets", step)
        assert again.returncode == 0 and again.stderr == "", again.stdout + again.stderr
        patterns = _athena(environ, "patterns", "--json")
        assert patterns.returncode == 0, patterns.stderr
        stored = json.loads(patterns.stdout)
        assert stored and any("fixture" in json.dumps(pattern).lower() for pattern in stored), stored
