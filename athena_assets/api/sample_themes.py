"""The themes of the sample history (`sample_history.py`): what each recurring topic's events say, by
event type, with slots (`{port}`, `{branch}`) filled at random from `SLOTS`."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# fmt: off
# The template data below reads best as written; the formatter would spread it over twice the lines.
SLOTS: dict[str, Callable[[random.Random], Any]] = {
    "n": lambda r: r.randint(2, 9),
    "secs": lambda r: r.choice([30, 60, 120, 300, 900]),
    "elapsed": lambda r: round(r.uniform(1.5, 48.0), 1),
    "pct": lambda r: r.randint(3, 40),
    "tokens": lambda r: r.choice([612, 873, 1024, 1530, 2210, 4096]),
    "batch": lambda r: r.choice([512, 1024]),
    "bigger": lambda r: r.choice([2048, 4096, 8192]),
    "port": lambda r: r.choice([5432, 5433, 8001, 8002]),
    "branch": lambda r: r.choice(
        ["main", "fix/sensor-cursor", "feat/hybrid-recall", "chore/ruff", "wip/embeddings"]
    ),
    "test": lambda r: r.choice(
        ["test_embeddings_partition", "test_sensor_run_key", "test_recall_hybrid", "test_stack_health",
         "test_upsert_idempotent", "test_dead_letters"]
    ),
    "file": lambda r: r.choice(
        ["resources/memory_store.py", "athena_assets/events.py", "athena_assets/sensors.py",
         "athena_assets_tests/conftest.py", "resources/llama_server.py", "pyproject.toml"]
    ),
    "inbox": lambda r: f"inbox/session-{r.randint(100, 999)}.jsonl",
}
# fmt: on


@dataclass(frozen=True)
class Theme:
    """A recurring topic: where its errors come from and what is said about it, by event type."""

    key: str
    error_source: str
    lines: dict[str, tuple[str, ...]]


# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme("pgvector_migration", "postgres", {
        "error": ('The schema migration failed again with ERROR: type "vector" does not exist; the '
                  "extension was created after the tables on a fresh database.",
                  "Migration flaked on CI: duplicate key value violates unique constraint "
                  '"pg_type_typname_nsp_index" when two workers ran CREATE TABLE IF NOT EXISTS at once.',
                  "The pgvector migration timed out waiting for a lock on event_embeddings while an HNSW "
                  "index build was still running."),
        "command": ("Ran the pgvector migration {n} times in a loop against a fresh database to reproduce "
                    "the flake; it failed {pct}% of the runs.",
                    "Ran psql -c '\\dx' on the test database to check which schema the vector extension "
                    "landed in."),
        "fix": ("Wrapped the pgvector migration in pg_advisory_xact_lock so concurrent workers queue "
                "instead of racing on the catalogs.",
                "Moved CREATE EXTENSION vector into the same transaction as the schema, before the tables.",
                "Tried raising statement_timeout for the migration; it still flaked, so the timeout was "
                "not the cause."),
        "observation": ("The pgvector migration flake only shows with {n} or more parallel workers; "
                        "single runs always pass.",
                        "Every failing migration run had two Dagster run workers starting within "
                        "{secs} milliseconds of each other."),
        "decision": ("Decided the memory store alone owns the pgvector schema and migrations; assets never "
                     "run DDL of their own.",),
    }),
    Theme("sensor_cursor", "dagster", {
        "error": ("new_events_sensor launched a second run for {inbox}, which was already ingested; the "
                  "cursor had not advanced after the tick.",
                  "Dagster sensor tick skipped {inbox} entirely: the cursor compared modification times "
                  "and the file kept an older mtime after a copy."),
        "command": ("Replayed {n} sensor ticks with build_sensor_context and a saved cursor to find which "
                    "tick lost {inbox}.",
                    "Ran dagster sensor cursor new_events_sensor --set with an empty cursor to re-scan "
                    "the inbox on {branch}."),
        "fix": ("Changed the sensor cursor to the sorted set of file sha256 values and used the file hash "
                "as run_key, so a file seen twice starts one run.",
                "Tried advancing the sensor cursor only after the run succeeded; runs still doubled when "
                "two ticks overlapped."),
        "observation": ("The sensor cursor bug only appears when two files land within the same "
                        "{secs}-second tick interval.",
                        "Duplicate runs from the sensor all share one file sha256; the run_key would have "
                        "deduplicated them."),
        "decision": ("Decided sensors must carry both a cursor and a run_key; cursor alone is not enough "
                     "for exactly-once ingestion.",),
    }),
    Theme("pytest_timeouts", "pytest", {
        "error": ("{test} failed with Failed: Timeout >{secs}.0s while the session fixture waited for "
                  "llama-server to load the model.",
                  "pytest hung in the stack fixture for {elapsed} minutes; the fixture slept in a loop "
                  "without a deadline."),
        "command": ("Ran pytest -x --durations=10 -k {test} on {branch}; the fixture setup alone took "
                    "{elapsed}s.",),
        "fix": ("Replaced the sleep loop in conftest.py with polling /health under a deadline, raising "
                "with the tail of the server log on timeout.",
                "Tried a longer pytest-timeout for {test}; it only moved the hang, so reverted it."),
        "observation": ("Fixture timeouts cluster on cold caches: the first test session after a model "
                        "download is {n}x slower.",),
        "decision": ("Decided every test gets a pytest-timeout bound and fixtures wait on health checks, "
                     "never sleep-and-hope.",),
        "preference": ("The user wants a timed-out fixture to print the tail of the server log, not just "
                       "the timeout.",),
    }),
    Theme("llama_batch", "llama-server", {
        "error": ("llama-server returned 500: input is too large to process. increase the physical batch "
                  "size (current batch size: {batch}) for an event of {tokens} tokens.",
                  "Embedding call failed for a {tokens}-token event: the llama.cpp physical batch "
                  "(ubatch {batch}) is smaller than the input."),
        "command": ("Restarted llama-server with --batch-size {bigger} --ubatch-size {bigger} and re-ran "
                    "the embeddings partition.",
                    "Ran curl against /tokenize for the longest event of the day; it came to {tokens} "
                    "tokens."),
        "fix": ("Split events longer than the llama.cpp batch into overlapping chunks and averaged their "
                "vectors, marking the row as split.",
                "Tried truncating inputs to {batch} tokens; recall on long error logs got worse, so "
                "chunking it is."),
        "observation": ("About {pct}% of events exceed {batch} tokens; raising the llama.cpp ubatch to "
                        "{bigger} covers all of them.",),
        "decision": ("Decided to size the llama.cpp ubatch from the model's context length instead of "
                     "the default of 512.",),
        "preference": ("The user prefers chunking long events over truncating them; nothing typed "
                       "should silently disappear from memory.",),
    }),
    Theme("embedding_dimension", "postgres", {
        "error": ("Insert into event_embeddings failed: expected 384 dimensions, not 768, after "
                  "switching the embedding model without re-embedding.",
                  "Recall query failed with different vector dimensions 768 and 384 after the model "
                  "profile changed between runs."),
        "fix": ("Keyed embeddings by model sha256 and stored the dimension per row, so a new model "
                "re-embeds instead of clashing with old vectors.",),
        "observation": ("Recall quality dropped {pct}% when vectors of two models were mixed in one HNSW "
                        "index; per-dimension partial indexes fixed it.",),
        "decision": ("Decided the model file's sha256 is part of every embedding key, so switching models "
                     "re-embeds rather than mixing vectors.",),
    }),
    Theme("port_clash", "shell", {
        "error": ("Stack start failed: could not bind 127.0.0.1:{port}: address already in use; another "
                  "PostgreSQL was running from an older session.",
                  "llama-server exited at start: couldn't bind HTTP server socket on port {port}."),
        "command": ("Ran lsof -i :{port} and athena stack down to find and stop the leftover server.",),
        "fix": ("Tests now take free ports for PostgreSQL and both llama-servers instead of the defaults.",),
        "observation": ("The port clash on {port} happens after a crashed test run leaves its stack "
                        "behind.",),
    }),
    Theme("style", "ruff", {
        "error": ("ruff check failed on {file}: two house style rules broken, a line too long and a "
                  "missing return type annotation.",),
        "command": ("Ran ruff check --fix and ruff format on {branch} before pushing, to keep the house "
                    "style consistent.",),
        "decision": ("Style decision: frozen dataclasses for every record a resource returns, and "
                     "`import dagster as dg` everywhere.",
                     "Style decision: SQL is parameterised only, identifiers through psycopg.sql; no "
                     "f-strings that build SQL from data.",
                     "Style decision: line length 110 and modules under about 300 lines; a module that "
                     "grows past that becomes two."),
        "preference": ("Style preference: the user prefers small focused commits with the reason in "
                       "the message, not a list of files.",
                       "Style preference: comments say why, never what; commented-out code gets deleted.",
                       "Style preference: the user likes timestamps in UTC everywhere and ISO 8601 "
                       "with a Z in logs."),
    }),
)
# fmt: on
