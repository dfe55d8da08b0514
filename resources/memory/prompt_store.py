"""Where compressed Claude prompts are kept: a PostgreSQL table and a Markdown file per day.

One row per day (upserted, so re-running a day replaces its prompt), and `<prompts_dir>/<day>.md`
written atomically, so a user can paste or send the file while the pipeline runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from resources.compression.compressor import CompressionResult
from resources.memory.postgres_store import PostgresStore

TABLE = "compressed_prompts"
_CREATE = """
CREATE TABLE IF NOT EXISTS {} (
    day date PRIMARY KEY,
    original_prompt text NOT NULL,
    compressed_prompt text NOT NULL,
    original_tokens int NOT NULL,
    compressed_tokens int NOT NULL,
    ratio double precision NOT NULL,
    tokens_saved int NOT NULL,
    dollars_saved double precision NOT NULL,
    method text NOT NULL,
    fallback_reason text,
    patterns int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)"""
_COLUMNS = (
    "day",
    "original_prompt",
    "compressed_prompt",
    "original_tokens",
    "compressed_tokens",
    "ratio",
    "tokens_saved",
    "dollars_saved",
    "method",
    "fallback_reason",
    "patterns",
)


def _upsert(table: sql.Identifier) -> sql.Composed:
    """INSERT ... ON CONFLICT (day) DO UPDATE of every column: a re-run replaces the day's prompt."""
    columns = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
    values = sql.SQL(", ").join(sql.Placeholder() * len(_COLUMNS))
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(name), sql.Identifier(name))
        for name in _COLUMNS[1:]
    )
    return sql.SQL(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (day) DO UPDATE SET {}, created_at = now()"
    ).format(table, columns, values, updates)


@dataclass(frozen=True)
class StoredPrompt:
    """A day's prompt as stored."""

    day: date
    original_tokens: int
    compressed_tokens: int
    ratio: float
    tokens_saved: int
    dollars_saved: float
    method: str
    file: Path


class PromptStore(PostgresStore):
    """The `compressed_prompts` table (in `schema_name`) and the folder of prompt files."""

    prompts_dir: str

    def _table(self) -> sql.Identifier:
        return sql.Identifier(self.schema_name, TABLE)

    def _create_schema(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        """The schema and the `compressed_prompts` table."""
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema_name)))
        conn.execute(sql.SQL(_CREATE).format(self._table()))

    def file_for(self, day: date) -> Path:
        """Where the prompt of `day` is written."""
        return Path(self.prompts_dir).expanduser() / f"{day.isoformat()}.md"

    def save(
        self, day: date, original: str, compressed: str, result: CompressionResult, patterns: int
    ) -> StoredPrompt:
        """Upsert the day's row and write its Markdown file; both describe the same prompt."""
        with self._connect() as conn:
            conn.execute(
                _upsert(self._table()),
                (
                    day,
                    original,
                    compressed,
                    result.original_tokens,
                    result.compressed_tokens,
                    result.ratio,
                    result.tokens_saved,
                    result.dollars_saved,
                    result.method,
                    result.fallback_reason,
                    patterns,
                ),
            )
        path = self.file_for(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".md.part")
        partial.write_text(compressed, encoding="utf-8")
        partial.replace(path)
        return StoredPrompt(
            day,
            result.original_tokens,
            result.compressed_tokens,
            result.ratio,
            result.tokens_saved,
            result.dollars_saved,
            result.method,
            path,
        )

    def compressed(self, day: date | None = None) -> tuple[str, StoredPrompt] | None:
        """The compressed prompt of `day` (the latest day when None) and its figures, or None when
        there is none."""
        query = sql.SQL(
            "SELECT * FROM {} WHERE day = %s OR %s::date IS NULL ORDER BY day DESC LIMIT 1"
        ).format(self._table())
        with self._connect() as conn:
            row = conn.execute(query, (day, day)).fetchone()
        if row is None:
            return None
        figures = StoredPrompt(
            row["day"], row["original_tokens"], row["compressed_tokens"], row["ratio"], row["tokens_saved"],
            row["dollars_saved"], row["method"], self.file_for(row["day"]),
        )  # fmt: skip
        return row["compressed_prompt"], figures

    def totals(self) -> tuple[int, int, float]:
        """(prompts, tokens saved, dollars saved) over every stored day."""
        with self._connect() as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*) AS prompts, coalesce(sum(tokens_saved), 0) AS tokens, "
                    "coalesce(sum(dollars_saved), 0) AS dollars FROM {}"
                ).format(self._table())
            ).fetchone()
        assert row is not None
        return int(row["prompts"]), int(row["tokens"]), float(row["dollars"])
