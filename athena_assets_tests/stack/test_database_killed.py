"""A part of the stack SIGKILLed in the middle of a backfill, on a private database and Dagster instance.

PostgreSQL (with the session's embedding server): one line naming the database and the fix, the run ends
FAILURE at the next command, and the re-run leaves every event with exactly one vector and the dead
letters as they were. The embedding server (a private one): one line naming the failed step and the
server's URL. Either way stderr holds that line and nothing else; the rest is in the run's log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import psycopg
import pytest

from athena_assets.api.instance import PID_TAG
from athena_assets_tests.helpers import StackHandle, write_jsonl
from resources.models.manifest import models_for_profile
from resources.settings import Settings
from resources.stack.llama_server import start_llama_server, stop_llama_server
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


def _embedding_started(instance: dg.DagsterInstance, pid: int) -> bool:
    """Whether the run of the `athena` process `pid` has started its embedding step."""
    for run in instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(pid)})):
        started = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
        if any(entry.step_key == "event_embeddings" for entry in started):
            return True
    return False


def _backfill_until_embedding(environ: dict[str, str], settings: Settings) -> subprocess.Popen[str]:
    """`athena backfill` of `DAYS` started, once its run has started its embedding step."""
    athena = str(Path(sys.executable).with_name("athena"))
    backfill = [athena, "backfill", "--from", DAYS[0], "--to", DAYS[1]]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    process = subprocess.Popen(backfill, env=environ, text=True, **pipes)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        deadline = time.monotonic() + WAIT_S
        while not _embedding_started(instance, process.pid):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the embedding step never started"
            time.sleep(0.05)
    finally:
        instance.dispose()
    return process


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
        process = _backfill_until_embedding(environ, settings)
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
        # What was kept off the terminal names the lost database (which of the pool's retries or
        # Dagster's failure to log comes first depends on when the kill lands).
        lost = ("Connection refused", "server closed the connection", "Exception while writing logger call")
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
    server = stack.private_embedding_server("lost-embeddings")
    run_dir = tmp_path / "servers"
    private = private_stack_environment(tmp_path / "home", models_dir=stack.settings.models_dir)
    private |= {"LLAMACPP_EMBEDDINGS_URL": server.url, "LLAMACPP_REASONING_URL": stack.reasoning_url}
    settings = Settings.from_env(private)
    local = LocalStack(settings, models_for_profile(settings.model_profile))
    environ = {**os.environ, **private}
    local.start_database()
    record = start_llama_server(server, run_dir, timeout_s=60)
    try:
        assert _athena(environ, "models").returncode == 0
        _ingest(environ, tmp_path)
        process = _backfill_until_embedding(environ, settings)
        [llama_server] = psutil.Process(record.pid).children()
        llama_server.kill()
        stdout, stderr = process.communicate(timeout=WAIT_S)

        assert process.returncode == 2, stdout + stderr
        [error] = stderr.splitlines()  # one line, nothing else
        assert error.startswith("athena: error: run ") and "failed in event_embeddings" in error, error
        assert server.url in error, error
        assert "run the same command again" in error and "(the run's log: " in error, error

        start_llama_server(server, run_dir, timeout_s=60)
        again = _athena(environ, "backfill", "--from", DAYS[0], "--to", DAYS[1])
        assert again.returncode == 0 and again.stderr == "", again.stdout + again.stderr
        with psycopg.connect(local.database_url()) as conn:
            vectors = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM athena.event_embeddings"
            ).fetchone()
        assert vectors == (EVENTS, EVENTS)  # one vector per event, none twice
    finally:
        stop_llama_server(server.name, run_dir)
        local.down()
