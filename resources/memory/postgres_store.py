"""What every table owner of the memory has in common: a PostgreSQL schema it creates once, and
connections to it.

A store creates (or migrates) its tables the first time it connects, or at the start of a Dagster run,
and never again in that process; callers (assets, the CLI) never create tables themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from pydantic import PrivateAttr


class PostgresStore(dg.ConfigurableResource):
    """A store of tables in schema `schema_name` of the database at `database_url`."""

    database_url: str
    schema_name: str = "athena"
    connect_timeout_s: int = 10

    _schema_ready: bool = PrivateAttr(default=False)
    _schema_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Create the store's tables at the start of a run, so a database problem fails it at once."""
        self.ensure_schema()

    def ensure_schema(self) -> None:
        """Create the store's schema and tables if missing, once per store object (idempotent and safe
        to run from several processes at once)."""
        with self._schema_lock:
            if not self._schema_ready:
                with self._open(vectors=False) as conn:
                    # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalogs; serialise them.
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"athena-schema:{self.schema_name}",)
                    )
                    self._create_schema(conn)
                self._schema_ready = True

    def _create_schema(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """The store's own DDL (`CREATE ... IF NOT EXISTS`), run inside `ensure_schema`'s transaction."""
        raise NotImplementedError

    @contextmanager
    def _open(self, vectors: bool) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        # The connection context commits on success and rolls back on error: one transaction per call.
        with psycopg.connect(
            self.database_url, connect_timeout=self.connect_timeout_s, row_factory=dict_row
        ) as conn:
            if vectors:
                register_vector(conn)
            yield conn

    @contextmanager
    def _connect(self, vectors: bool = True) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A connection (one transaction) to a database whose schema this store has ensured."""
        self.ensure_schema()
        with self._open(vectors) as conn:
            yield conn
