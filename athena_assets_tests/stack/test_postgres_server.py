"""The embedded PostgreSQL: a data directory made by an earlier install keeps working."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import psycopg
import pytest

from resources.stack.llama_server import free_port
from resources.stack.postgres import (
    SYSTEM_USER_WHEN_ROOT,
    initialise_data_dir,
    passfile_of,
    start_postgres,
    stop_postgres,
)


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
