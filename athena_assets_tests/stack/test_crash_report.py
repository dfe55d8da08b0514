"""A part of the stack killed by a signal is named, with the signal and what it was doing.

Real processes, real signals: a PostgreSQL backend and a llama-server get SIGILL (what a binary built
for a newer CPU gets), and the logs they leave are read back into one sentence a user can act on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import psycopg
import pytest

from athena_assets_tests.helpers import StackHandle
from resources.stack.cpu import describe_vector_extensions
from resources.stack.crash_report import Crash, llama_server_crash, postgres_crashes
from resources.stack.liveness import process_runs
from resources.stack.llama_server import (
    free_port,
    read_pid_file,
    start_llama_server,
    stop_llama_server,
)
from resources.stack.postgres import start_postgres, stop_postgres


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def _accepts_connections(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.mark.timeout(120)
def test_a_postgres_backend_killed_by_sigill_is_named_with_its_query(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "pgdata", tmp_path / "postgres.log"
    info = start_postgres(data_dir, free_port(), log)
    try:
        before = datetime.now(UTC) - timedelta(seconds=1)
        assert postgres_crashes(log, before) == []
        with psycopg.connect(info.url(), autocommit=True) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            threading.Timer(0.5, os.kill, (backend, signal.SIGILL)).start()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT pg_sleep(30) /* building the index */")
        crashes = _wait_for(lambda: postgres_crashes(log, before), 20, "the postmaster's crash report")
        _wait_for(lambda: _accepts_connections(info.url()), 30, "the server to recover")
    finally:
        stop_postgres(data_dir)
    [crash] = crashes
    assert crash.signal == signal.SIGILL
    assert crash.part == "PostgreSQL client backend"
    assert crash.doing == "SELECT pg_sleep(30) /* building the index */"
    message = crash.message()
    assert "killed by signal 4 (SIGILL: illegal instruction)" in message
    assert "while running SELECT pg_sleep(30)" in message
    assert "a binary built for a newer CPU" in message and describe_vector_extensions() in message
    # A crash before the command started is not this command's.
    assert postgres_crashes(log, datetime.now(UTC) + timedelta(seconds=1)) == []


@pytest.mark.timeout(120)
def test_a_llama_server_killed_by_sigill_is_named(stack: StackHandle, tmp_path: Path) -> None:
    config = stack.private_embedding_server("doomed")
    before = datetime.now(UTC) - timedelta(seconds=1)
    record = start_llama_server(config, tmp_path, timeout_s=60)
    try:
        [server] = psutil.Process(record.pid).children()
        assert server.name() == "llama-server"
        server.send_signal(signal.SIGILL)
        log = Path(record.log_path)
        crash = _wait_for(lambda: llama_server_crash("doomed", log, before), 20, "the exit line in the log")
    finally:
        stop_llama_server("doomed", tmp_path)
    assert crash.signal == signal.SIGILL
    assert "llama-server doomed was killed by signal 4 (SIGILL" in crash.message()
    assert read_pid_file(tmp_path / "doomed.pid.json") is None
    assert llama_server_crash("doomed", log, datetime.now(UTC) + timedelta(seconds=2)) is None


@pytest.mark.timeout(120)
def test_stopping_a_server_ends_its_shell_and_server(stack: StackHandle, tmp_path: Path) -> None:
    config = stack.private_embedding_server("stopped")
    record = start_llama_server(config, tmp_path, timeout_s=60)
    group = [psutil.Process(record.pid), *psutil.Process(record.pid).children()]
    assert stop_llama_server("stopped", tmp_path) is True
    # Ended: gone, or a zombie its parent has not collected yet (psutil's `is_running` counts those).
    assert not any(process_runs(process.pid) for process in group)
    # Stopped on purpose: not a crash.
    assert (
        llama_server_crash("stopped", Path(record.log_path), datetime.now(UTC) - timedelta(minutes=1)) is None
    )


def test_the_message_for_the_oom_killer() -> None:
    crash = Crash("llama-server x", signal.SIGKILL, datetime.now(UTC), "", Path("x.log"))
    assert "out-of-memory killer" in crash.message()
    assert "signal 9 (SIGKILL: killed)" in crash.message()
