"""What every table owner of the memory has in common: a PostgreSQL schema it creates once, and a pool
of connections to it.

A store creates (or migrates) its tables the first time it connects, or at the start of a Dagster run,
and never again in that process; callers (assets, the CLI) never create tables themselves. Its
connections come from a pool (psycopg_pool), one per database and process, shared by the stores of that
database (a pattern store made beside a memory store uses the same connections): each connection has
pgvector's types registered once when it is opened and is checked before it is handed out (a restarted
server leaves dead ones), so a long-lived process (the MCP server, a notebook) pays for a connection
once, not per call. Pools live until `close()` or the process's exit, never until a garbage collection
(which may run on one of the pool's own threads and cannot stop them from there).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import PrivateAttr

from resources.memory.schema import DEFAULT_SCHEMA

# Enough for a run's writer thread, its reader and a sensor; more callers wait for a free connection.
POOL_SIZE = 4


def _register_vector(conn: psycopg.Connection[Any]) -> None:
    """pgvector's types on a new pooled connection, which must be handed back idle (not in a transaction)."""
    register_vector(conn)
    conn.commit()


# (process id, database URL) -> its pool: a forked child never uses its parent's pool (or its threads).
_POOLS: dict[tuple[int, str], ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool_for(database_url: str, connect_timeout_s: int) -> ConnectionPool:
    key = (os.getpid(), database_url)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = ConnectionPool(
                database_url,
                min_size=1,
                max_size=POOL_SIZE,
                kwargs={"row_factory": dict_row, "connect_timeout": connect_timeout_s},
                configure=_register_vector,
                check=ConnectionPool.check_connection,
                timeout=connect_timeout_s,
                name="athena",
                open=True,
            )
            _POOLS[key] = pool
        return pool


def _close_pool(database_url: str) -> None:
    with _POOLS_LOCK:
        pool = _POOLS.pop((os.getpid(), database_url), None)
    if pool is not None:
        pool.close()


@atexit.register
def _close_all_pools() -> None:
    for _, url in [key for key in _POOLS if key[0] == os.getpid()]:
        _close_pool(url)


class PostgresStore(dg.ConfigurableResource):
    """A store of tables in schema `schema_name` of the database at `database_url`."""

    database_url: str
    schema_name: str = DEFAULT_SCHEMA
    connect_timeout_s: int = 10

    _schema_ready: bool = PrivateAttr(default=False)
    _schema_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Create the store's tables at the start of a run, so a database problem fails it at once."""
        self.ensure_schema()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the run's connections."""
        self.close()

    def close(self) -> None:
        """Close the pool of this store's database in this process (a later call opens a new one)."""
        _close_pool(self.database_url)

    def ensure_schema(self) -> None:
        """Create the store's schema and tables if missing, once per store object (idempotent and safe
        to run from several processes at once)."""
        with self._schema_lock:
            if not self._schema_ready:
                # A plain connection: pgvector's types can be registered only once the extension exists.
                with psycopg.connect(
                    self.database_url, connect_timeout=self.connect_timeout_s, row_factory=dict_row
                ) as conn:
                    # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalogs; serialise them.
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"athena-schema:{self.schema_name}",)
                    )
                    self._create_schema(conn)
                self._schema_ready = True

    def _create_schema(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """The store's own DDL (`CREATE ... IF NOT EXISTS`), run inside `ensure_schema`'s transaction."""
        raise NotImplementedError

    def _connection_pool(self) -> ConnectionPool:
        return _pool_for(self.database_url, self.connect_timeout_s)

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection (one transaction: committed on success, rolled back on error) to a
        database whose schema this store has ensured."""
        self.ensure_schema()
        with self._connection_pool().connection() as conn:
            yield conn  # type: ignore[misc]  # the pool's connections use dict_row
