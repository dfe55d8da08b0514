"""Questions an assistant asks of its own memory, over the demo's sample history, for
`recall_quality.py --history sample`.

The sample history (`athena_assets/api/sample_history.py`, 304 events over 21 days) repeats each of
its statements on several days, with other openers, slot values and follow-ups. A question's evidence
is every event that holds its statement's fixed words (`FRAGMENT` below), so finding any one copy
answers it: these questions are scored by whether a copy is in the top k, not by the share of copies.
Each question is worded as the assistant would ask weeks later: some of the statement's words, not all
("the embedding server refused an input that was too long" for "llama-server returned 500: input is too
large to process"). Recall is unscoped, over the whole history, as the MCP `recall` tool is called.

Written for this project (no public benchmark's data or wording).
"""

from __future__ import annotations

from collections.abc import Sequence

from resources.memory.event_line import Event

# (the statement's fixed words, the question, its kind: error / fix / command / observation / decision /
# preference)
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ('type "vector" does not exist', "Why did a migration on a fresh database say the vector type is "
     "missing?", "error"),
    ("pg_type_typname_nsp_index", "Which unique constraint broke when two workers created tables at once?",
     "error"),
    ("timed out waiting for a lock on event_embeddings", "What made the pgvector migration hang on a lock?",
     "error"),
    ("pg_advisory_xact_lock", "How did we stop concurrent migrations racing each other?", "fix"),
    ("Moved CREATE EXTENSION vector into the same transaction", "Where should the extension be created "
     "relative to the tables?", "fix"),
    ("only shows with", "How many parallel workers does it take to see the migration flake?", "observation"),
    ("alone owns the pgvector schema", "Who is allowed to run DDL for the vector schema?", "decision"),
    ("launched a second run for", "Why did the sensor start a duplicate run for a file it had ingested?",
     "error"),
    ("the cursor compared modification times", "Why was an inbox file skipped by the sensor after a copy?",
     "error"),
    ("sorted set of file sha256 values", "What does the sensor cursor store now so files run exactly once?",
     "fix"),
    ("carry both a cursor and a run_key", "What must every sensor have for exactly-once ingestion?",
     "decision"),
    ("while the session fixture waited for", "Which test timeout happened while the model was loading?",
     "error"),
    ("the fixture slept in a loop", "Why did pytest hang for minutes in the stack fixture?", "error"),
    ("polling /health under a deadline", "How do the test fixtures wait for the servers now?", "fix"),
    ("cluster on cold caches", "When are the fixture timeouts worst?", "observation"),
    ("every test gets a pytest-timeout bound", "What rule did we set for test timeouts?", "decision"),
    ("print the tail of the server log", "What should a fixture show when it times out?", "preference"),
    ("input is too large to process", "the embedding server refused an input that was too long", "error"),
    ("overlapping chunks and averaged their", "How are events longer than the batch embedded?", "fix"),
    ("size the llama.cpp ubatch from the model's context length", "How is the ubatch size chosen?",
     "decision"),
    ("chunking long events over truncating them", "Does the user want long events cut off?", "preference"),
    ("expected 384 dimensions, not 768", "Why did inserting vectors fail after the model was switched?",
     "error"),
    ("stored the dimension per row", "How do vectors of a new model stop clashing with the old ones?", "fix"),
    ("two models were mixed in one HNSW", "What happened to recall when two models shared one index?",
     "observation"),
    ("sha256 is part of every embedding key", "What identifies the model in an embedding's key?",
     "decision"),
    ("address already in use", "Why could the stack not start on its port?", "error"),
    ("take free ports for PostgreSQL", "How do tests avoid port clashes?", "fix"),
    ("crashed test run leaves its stack", "When does the port clash happen?", "observation"),
    ("a line too long and a missing return type", "Which lint rules failed in the style check?", "error"),
    ("frozen dataclasses for every record", "What should resources return records as?", "decision"),
    ("SQL is parameterised only", "How may SQL be built from data?", "decision"),
    ("line length 110", "What is the maximum line length and module size?", "decision"),
    ("small focused commits", "How does the user like commits?", "preference"),
    ("comments say why, never what", "What should code comments explain?", "preference"),
    ("timestamps in UTC everywhere", "Which time zone and format does the user want in logs?", "preference"),
)  # fmt: skip


def evidence(events: Sequence[Event]) -> list[tuple[str, str, tuple[str, ...]]]:
    """Each question with its kind and the ids of the events holding its statement; a statement no event
    holds is a ValueError (the history and the questions would have drifted apart)."""
    asked = []
    for fragment, question, kind in QUESTIONS:
        ids = tuple(event.id for event in events if fragment in event.content)
        if not ids:
            raise ValueError(f"no event of the sample history holds {fragment!r}")
        asked.append((question, kind, ids))
    return asked
