"""The embedded PostgreSQL: a data directory made by an earlier install keeps working, and a killed
server starts again even where nobody reaps it."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from resources.stack.liveness import process_runs
from resources.stack.llama_server import free_port
from resources.stack.postgres import start_postgres, stop_postgres
from resources.stack.postgres_data_dir import SYSTEM_USER_WHEN_ROOT, initialise_data_dir, passfile_of


@pytest.mark.skipif(os.geteuid() != 0, reason="a hand-over between system users needs root")
@pytest.mark.timeout(120)
def test_a_data_directory_of_another_system_user_is_taken_over_with_its_data(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "pgdata", tmp_path / "postgres.log"
    info = start_postgres(data_dir, free_port(), log)
    with psycopg.connect(info.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int, v vector(3))")
        conn.execute("INSERT INTO kept VALUES (1, '[1,2,3]'), (2, '[3,2,1]')")
    stop_postgres(data_dir)
    # What the previous embedded package left: the same files, owned by its own system user.
    previous = pwd.getpwnam("nobody")
    for path in (data_dir, *data_dir.rglob("*")):
        os.chown(path, previous.pw_uid, previous.pw_gid, follow_symlinks=False)

    info = start_postgres(data_dir, free_port(), log)
    try:
        assert info.notes == (f"{data_dir} handed over to the system user {SYSTEM_USER_WHEN_ROOT}",)
        assert data_dir.stat().st_uid == pwd.getpwnam(SYSTEM_USER_WHEN_ROOT).pw_uid
        with psycopg.connect(info.url()) as conn:
            rows = conn.execute("SELECT id FROM kept ORDER BY v <=> '[1,2,3]'").fetchall()
        assert rows == [(1,), (2,)]
        assert start_postgres(data_dir, info.port, log).notes == (), "nothing to migrate the second time"
    finally:
        stop_postgres(data_dir)


def test_a_data_directory_of_another_major_version_is_refused_with_the_way_out(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    initialise_data_dir(data_dir)
    (data_dir / "PG_VERSION").write_text("16\n")
    with pytest.raises(
        RuntimeError, match=r"PostgreSQL 16 database, but the embedded server is PostgreSQL 18"
    ):
        initialise_data_dir(data_dir)


@pytest.mark.timeout(120)
def test_the_superuser_needs_the_generated_password_and_a_trusting_data_directory_gets_one(
    tmp_path: Path,
) -> None:
    data_dir, log = tmp_path / "pgdata", tmp_path / "postgres.log"
    info = start_postgres(data_dir, free_port(), log)
    try:
        passfile = passfile_of(data_dir)
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
        without_password = f"postgresql://postgres@127.0.0.1:{info.port}/athena?passfile=/nonexistent"
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(without_password, connect_timeout=5)
        with psycopg.connect(info.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept VALUES (7)")
        assert "password" not in info.url().split("?")[0] and passfile.read_text() not in info.url()
    finally:
        stop_postgres(data_dir)

    # What an install made before passwords has: `trust` for every local connection, no passfile.
    hba = data_dir / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    passfile.unlink()
    info = start_postgres(data_dir, free_port(), log)
    try:
        assert any("generated password (scram-sha-256)" in note for note in info.notes), info.notes
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{info.port}/athena?passfile=/nonexistent")
        with psycopg.connect(info.url()) as conn:
            assert conn.execute("SELECT id FROM kept").fetchall() == [(7,)]
    finally:
        stop_postgres(data_dir)


def test_a_zombie_is_not_a_running_process() -> None:
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        assert os.kill(child, 0) is None  # what the signal check used to take for a live server
        assert not process_runs(child)
        assert process_runs(os.getpid())
    finally:
        os.waitpid(child, 0)
    assert not process_runs(child)


# A process that adopts orphans and never collects them, as a CI harness or a container's first process
# may: the killed postmaster (pg_ctl's orphan) stays a zombie that still "answers" `kill -0`.
_KILLED_UNDER_A_SUBREAPER = """
import ctypes, json, os, signal, sys, time
from pathlib import Path
import psutil, psycopg
from resources.stack.postgres import start_postgres, stop_postgres
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
data_dir, log, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
first = start_postgres(data_dir, port, log)
with psycopg.connect(first.url(), autocommit=True) as conn:
    conn.execute("CREATE TABLE kept (id int)")
    conn.execute("INSERT INTO kept VALUES (7)")
os.kill(first.pid, signal.SIGKILL)
deadline = time.monotonic() + 30
while psutil.Process(first.pid).status() != psutil.STATUS_ZOMBIE:  # never reaped: waitpid would
    assert time.monotonic() < deadline
    time.sleep(0.01)
second = start_postgres(data_dir, port, log)
with psycopg.connect(second.url()) as conn:
    rows = conn.execute("SELECT id FROM kept").fetchall()
zombie = psutil.Process(first.pid).status()
stop_postgres(data_dir)
print(json.dumps({"first": first.pid, "second": second.pid, "zombie": zombie, "rows": rows,
                  "notes": list(second.notes)}))
"""


@pytest.mark.timeout(180)
def test_a_server_killed_under_a_parent_that_never_reaps_it_starts_again_with_its_data(
    tmp_path: Path,
) -> None:
    data_dir, log = tmp_path / "pgdata", tmp_path / "pg.log"
    script = [sys.executable, "-c", _KILLED_UNDER_A_SUBREAPER, str(data_dir), str(log), str(free_port())]
    result = subprocess.run(script, capture_output=True, text=True, timeout=150, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["zombie"] == psutil.STATUS_ZOMBIE, outcome  # the situation this test is about
    assert outcome["second"] != outcome["first"]
    assert outcome["rows"] == [[7]]  # crash recovery kept the committed row
    assert outcome["notes"] == [
        f"{data_dir}: removed the lock files of a server that had died (pid {outcome['first']})"
    ]
