"""The embedded PostgreSQL: a data directory made by an earlier install keeps working."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import psycopg
import pytest

from resources.stack.llama_server import free_port
from resources.stack.postgres import (
    SYSTEM_USER_WHEN_ROOT,
    initialise_data_dir,
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
