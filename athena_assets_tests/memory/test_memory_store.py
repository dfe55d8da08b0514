"""The memory store against a real PostgreSQL 18 + pgvector: idempotent writes, due vectors, recall, checks.

PostgreSQL alone is started once for this module (no llama-servers needed); each test gets its own schema.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from resources.memory.event_files import RejectedLine, parse_event_file
from resources.memory.event_line import Event
from resources.memory.recall import RecallQuery, recall_statement
from resources.memory.recall_scope import RecallScope, scope_of
from resources.memory.records import EmbeddingRow
from resources.memory.schema import vector_index_name
from resources.memory.store import MemoryStore
from resources.stack.llama_server import free_port
from resources.stack.postgres import start_postgres, stop_postgres

pytestmark = pytest.mark.timeout(300)

DAY = date(2026, 11, 20)
DIM = 8
MODEL = "a" * 64
OTHER_MODEL = "b" * 64
SQL_LOOKING = "'); DROP TABLE episodic_events; --"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("memory-store-pg")
    info = start_postgres(tmp / "pgdata", free_port(), tmp / "pg.log")
    try:
        yield info.url()
    finally:
        stop_postgres(tmp / "pgdata")


@pytest.fixture
def store(database_url: str) -> MemoryStore:
    return MemoryStore(database_url=database_url, schema_name=f"test_{uuid.uuid4().hex[:12]}")


def make_event(i: int, content: str | None = None, day: date = DAY) -> Event:
    text = content if content is not None else f"event {i}: the dagster sensor cursor skipped file {i}"
    return Event(
        id=f"e{i:04d}",
        occurred_at=datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=i),
        content=text,
        event_type="observation",
        source="test",
        session_id="s1",
        metadata={"i": i},
        content_sha256=hashlib.sha256(text.encode()).hexdigest(),
        source_file="test.jsonl",
        source_line=i + 1,
    )


def with_content(event: Event, content: str) -> Event:
    return dataclasses.replace(
        event, content=content, content_sha256=hashlib.sha256(content.encode()).hexdigest()
    )


def vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def embed(events: list[Event], model: str = MODEL, dim: int = DIM, seed: int = 0) -> list[EmbeddingRow]:
    vecs = vectors(len(events), dim, seed)
    return [EmbeddingRow(e.id, model, e.content_sha256, vecs[i], tokens=12) for i, e in enumerate(events)]


def test_ensure_schema_is_idempotent_and_creates_the_tables(store: MemoryStore) -> None:
    # A second store object on the same schema runs the DDL again (the first ran it once already).
    MemoryStore(database_url=store.database_url, schema_name=store.schema_name).ensure_schema()
    store.ensure_vector_index(DIM)
    store.ensure_vector_index(DIM)
    with psycopg.connect(store.database_url) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (store.schema_name,)
        )}  # fmt: skip
    assert tables == {"episodic_events", "dead_letters", "event_embeddings", "loaded_days"}
    assert store.stats().events == 0


def test_upsert_counts_are_exact(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(5)]
    first = store.upsert_events(events)
    second = store.upsert_events(events)
    assert (first.new, first.updated, first.unchanged) == (5, 0, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 5)
    assert store.stats().events == 5


def test_changed_content_is_updated_and_due_again_alone(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(4)]
    store.upsert_events(events)
    store.write_embeddings(embed(events))
    assert store.events_due_for_embedding(DAY, DAY, MODEL) == []
    changed = [*events[:2], with_content(events[2], "rewritten: pgvector migration flaked again"), events[3]]
    counts = store.upsert_events(changed)
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 3)
    assert [e.id for e in store.events_due_for_embedding(DAY, DAY, MODEL)] == [events[2].id]
    stored = {e.id: e for e in store.events_for_days(DAY, DAY)}
    assert stored[events[2].id].content == "rewritten: pgvector migration flaked again"


def test_metadata_change_updates_but_keeps_the_vector_current(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(2)]
    store.upsert_events(events)
    store.write_embeddings(embed(events))
    counts = store.upsert_events([dataclasses.replace(events[0], metadata={"i": 0, "tag": "new"}), events[1]])
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 1)
    assert store.events_due_for_embedding(DAY, DAY, MODEL) == []


def test_one_call_with_a_repeated_id_keeps_the_last(store: MemoryStore) -> None:
    event = make_event(1)
    counts = store.upsert_events([event, with_content(event, "the later version")])
    assert (counts.new, counts.updated, counts.unchanged) == (1, 0, 0)
    assert store.events_for_days(DAY, DAY)[0].content == "the later version"


def test_day_ranges_and_ordering(store: MemoryStore) -> None:
    events = [make_event(i, day=DAY + timedelta(days=i % 3)) for i in range(9)]
    store.upsert_events(events)
    assert store.event_count(DAY, DAY) == 3
    assert store.event_count(DAY, DAY + timedelta(days=2)) == 9
    middle = store.events_for_days(DAY + timedelta(days=1), DAY + timedelta(days=1))
    assert [e.id for e in middle] == ["e0001", "e0004", "e0007"]
    assert all(e.day == DAY + timedelta(days=1) for e in middle)
    assert store.stats().days == 3


def test_dead_letters_are_idempotent(store: MemoryStore, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"occurred_at": "2026-11-20T10:00:00Z", "content": "ok"}\n'
        b"not json\n"
        b'{"occurred_at": "2026-11-20T10:00:00Z", "content": ""}\n'
        b'{"occurred_at": "2026-11-20T10:00:00Z", "content": "nul \\u0000"}\n'
        b'{"occurred_at": "2026-11-20T10:00:00Z", "content": "\xff\x00 bytes"}\n'
    )
    parsed = parse_event_file(path, date(2026, 11, 1))
    assert len(parsed.rejected) == 4
    assert store.record_dead_letters(parsed.rejected, parsed.sha256) == 4
    assert store.record_dead_letters(parsed.rejected, parsed.sha256) == 0
    letters = store.dead_letters(parsed.sha256)
    assert [d.line for d in letters] == [2, 3, 4, 5]
    assert letters[1].reason == parsed.rejected[1].reason
    assert store.dead_letter_count(DAY) == 2, "only lines whose timestamp was readable have a day"
    assert store.dead_letters("0" * 64) == []
    # The pipeline parses the inbox copy later (same content): the user's file name stays.
    copy = tmp_path / "inbox" / "1a2b3c-bad.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    again = parse_event_file(copy, date(2026, 11, 1))
    assert store.record_dead_letters(again.rejected, again.sha256) == 0
    assert {d.file for d in store.dead_letters(parsed.sha256)} == {str(path)}
    assert store.stats().dead_letters == 4


def test_written_vectors_are_not_due_and_rewrites_do_not_duplicate(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(6)]
    store.upsert_events(events)
    assert len(store.events_due_for_embedding(DAY, DAY, MODEL)) == 6
    rows = embed(events)
    assert store.write_embeddings(rows) == 6
    assert store.events_due_for_embedding(DAY, DAY, MODEL) == []
    assert store.write_embeddings(rows) == 0, "an identical rewrite changes nothing"
    assert store.write_embeddings(embed(events, seed=1)[:2]) == 2
    assert store.stats().embeddings == 6


def test_a_new_model_makes_everything_due_and_keeps_old_vectors(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(5)]
    store.upsert_events(events)
    store.write_embeddings(embed(events))
    due = store.events_due_for_embedding(DAY, DAY, OTHER_MODEL)
    assert [e.id for e in due] == [e.id for e in events]
    store.write_embeddings(embed(events, model=OTHER_MODEL, dim=4))
    assert store.events_due_for_embedding(DAY, DAY, OTHER_MODEL) == []
    assert store.stats().embeddings == 10
    assert store.embedding_check(DAY, DAY, MODEL, DIM).passed


def test_write_refuses_non_finite_vectors_and_unknown_events(store: MemoryStore) -> None:
    store.upsert_events([make_event(0)])
    bad = np.ones(DIM, dtype=np.float32)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        store.write_embeddings([EmbeddingRow("e0000", MODEL, "x", bad, 1)])
    with pytest.raises(ValueError, match="upsert the events first"):
        store.write_embeddings([EmbeddingRow("nope", MODEL, "x", np.ones(DIM), 1)])
    assert store.stats().embeddings == 0


def test_embedding_check_finds_missing_zero_and_wrong_dimension(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(5)]
    store.upsert_events(events)
    good, zero, wrong = embed(events[:3])
    zero = dataclasses.replace(zero, embedding=np.zeros(DIM))
    wrong = dataclasses.replace(wrong, embedding=np.ones(DIM * 2))
    store.write_embeddings([good, zero, wrong, *embed(events[3:4], seed=5)])
    check = store.embedding_check(DAY, DAY, MODEL, DIM)
    assert (check.events, check.with_vector, check.missing) == (5, 4, 1)
    assert check.missing_ids == [events[4].id]
    assert (check.wrong_dimension, check.zero_norm, check.non_finite) == (1, 1, 0)
    assert not check.passed


def test_hnsw_index_exists_and_recall_uses_it(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(30)]
    store.upsert_events(events)
    store.write_embeddings(embed(events))
    store.ensure_vector_index(DIM)
    with psycopg.connect(store.database_url) as conn:
        indexdef = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (store.schema_name, vector_index_name(DIM)),
        ).fetchone()[0]
    assert "USING hnsw" in indexdef and "vector(8)" in indexdef and "vector_cosine_ops" in indexdef
    assert "WHERE (dimension = 8)" in indexdef
    query = vectors(1, seed=9)[0]
    for mode in ("vector", "hybrid"):
        plan = store.explain_recall(query, MODEL, DIM, k=5, query_text="cursor", mode=mode, force_index=True)
        assert f"Index Scan using {vector_index_name(DIM)}" in plan, plan


def test_recall_returns_the_stored_vector_first(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(40)]
    rows = embed(events)
    store.upsert_events(events)
    store.write_embeddings(rows)
    store.write_embeddings(embed(events, model=OTHER_MODEL, seed=3))
    store.ensure_vector_index(DIM)
    hits = store.recall(rows[17].embedding, MODEL, DIM, k=5)
    assert len(hits) == 5
    assert hits[0].event_id == events[17].id and hits[0].vector_rank == 1
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].content == events[17].content


def test_hybrid_finds_an_exact_error_code_that_vectors_rank_low(store: MemoryStore) -> None:
    events = [make_event(i, f"routine note {i} about fixtures and sensors") for i in range(60)]
    target = make_event(99, "llama-server failed with E4471: increase the physical batch size")
    rows = embed(events)
    query = np.asarray(rows[0].embedding)
    # The farthest vector there is: vector search alone ranks the target last.
    store.upsert_events([*events, target])
    store.write_embeddings([*rows, EmbeddingRow(target.id, MODEL, target.content_sha256, -query, 12)])
    store.ensure_vector_index(DIM)
    assert target.id not in [h.event_id for h in store.recall(query, MODEL, DIM, k=50)]
    hybrid = store.recall(query, MODEL, DIM, k=5, query_text="E4471", mode="hybrid")
    found = [h for h in hybrid if h.event_id == target.id]
    assert found and found[0].text_rank == 1
    assert hybrid[0].score >= hybrid[-1].score
    with pytest.raises(ValueError, match="query_text"):
        store.recall(query, MODEL, DIM, mode="hybrid")


def test_hybrid_scores_words_of_vector_candidates_beyond_the_word_branchs_best(store: MemoryStore) -> None:
    """Sixty shorter talks tie above the answers in words, so the word branch's best 50 hold none of
    the twenty answers; meaning ranks the answers first. Each answer still counts its words (user,
    review), so answers fill the top ten, not talks that only words found."""
    question = "What does the user like for code review?"
    talks = [make_event(i, "Talked with the user about reviewing pull requests.") for i in range(60)]
    answer = "User prefers one reviewer when reviewing pull requests."
    answers = [make_event(100 + i, answer) for i in range(20)]
    answer_ids = {event.id for event in answers}
    rows = embed([*talks, *answers])
    query = np.asarray(rows[0].embedding) + 5.0  # every answer's vector: meaning ranks them first
    rows = [dataclasses.replace(row, embedding=query) if row.event_id in answer_ids else row for row in rows]
    store.upsert_events([*talks, *answers])
    store.write_embeddings(rows)
    store.ensure_vector_index(DIM)

    words = store.recall(None, MODEL, DIM, k=50, query_text=question, mode="text")
    assert {hit.event_id for hit in words} == {talk.id for talk in talks[:50]}
    hits = store.recall(query, MODEL, DIM, k=10, query_text=question, mode="hybrid")
    assert len(hits) == 10 and {hit.event_id for hit in hits} <= answer_ids, [hit.content for hit in hits]


def test_hybrid_brings_the_reply_after_a_question_it_finds(store: MemoryStore) -> None:
    """The answer is in the turn after the one that asks; neither branch finds it (no word of the query,
    the farthest vector): lifted by its question, it comes right after it. A turn of another session
    between them in time is not a reply; a scope that leaves the reply out keeps it out."""
    notes = [make_event(i, f"routine note {i} about fixtures and sensors") for i in range(40)]
    start = datetime(2026, 11, 20, 18, tzinfo=UTC)
    turns = (
        ("chat", 0, "How was the concert on Friday?"),
        ("elsewhere", 30, "Unrelated turn of another chat."),
        ("chat", 60, "Incredible, Moonfolk played for almost three hours."),
        ("chat", 120, "Wow, I am jealous!"),
    )
    chat = [
        dataclasses.replace(
            make_event(100 + i, text), session_id=session, occurred_at=start + timedelta(seconds=second)
        )
        for i, (session, second, text) in enumerate(turns)
    ]
    asking, _, reply, _ = chat
    rows = embed([*notes, *chat])
    query = np.asarray(rows[0].embedding)
    rows = [row if row.event_id != reply.id else dataclasses.replace(row, embedding=-query) for row in rows]
    store.upsert_events([*notes, *chat])
    store.write_embeddings(rows)
    store.ensure_vector_index(DIM)

    def ids(**scope: object) -> list[str]:
        hits = store.recall(query, MODEL, DIM, k=5, query_text="which band did you see at the concert",
                            mode="hybrid", scope=RecallScope(**scope) if scope else None)  # fmt: skip
        return [hit.event_id for hit in hits]

    # Neither branch finds the reply: no word of the query, and the farthest vector.
    assert reply.id not in [h.event_id for h in store.recall(query, MODEL, DIM, k=40)]
    text = store.recall(
        None, MODEL, DIM, k=40, query_text="which band did you see at the concert", mode="text"
    )
    assert reply.id not in [h.event_id for h in text]
    found = ids()
    assert found[0] == asking.id and found[1] == reply.id, found
    assert ids(until=start + timedelta(seconds=59))[:1] == [asking.id]
    assert reply.id not in ids(until=start + timedelta(seconds=59))


def test_sql_looking_content_and_schema_names_round_trip(database_url: str) -> None:
    store = MemoryStore(database_url=database_url, schema_name=f'odd"schema; --{uuid.uuid4().hex[:6]}')
    event = make_event(1, SQL_LOOKING)
    store.upsert_events([event])
    store.record_dead_letters([RejectedLine("x.jsonl", 3, SQL_LOOKING, SQL_LOOKING, DAY)], "f" * 64)
    assert store.events_for_days(DAY, DAY)[0].content == SQL_LOOKING
    assert store.dead_letters()[0].excerpt == SQL_LOOKING
    assert store.stats().events == 1


def test_write_embeddings_in_bulk_then_index(store: MemoryStore) -> None:
    """5,000 x 384 through binary COPY; the HNSW index is built afterwards, as a backfill does (its
    speed is measured by benchmarks/backfill.py)."""
    events = [make_event(i, f"event {i}") for i in range(5000)]
    store.upsert_events(events)
    rows = embed(events, dim=384)
    assert store.write_embeddings(rows) == 5000
    assert store.embedding_check(DAY, DAY + timedelta(days=4), MODEL, 384).passed
    store.ensure_vector_index(384)
    assert store.recall(rows[4321].embedding, MODEL, 384, k=1)[0].event_id == events[4321].id


def _scoped_event(i: int, source: str, session: str, kind: str, repo: str, day: date = DAY) -> Event:
    event = dataclasses.replace(
        make_event(i, f"note {i} about the {repo} repository", day),
        source=source,
        session_id=session,
        event_type=kind,
        metadata={"repo": repo, "i": i},
    )
    return event


def test_scoped_recall_returns_only_events_of_the_scope_in_every_mode(store: MemoryStore) -> None:
    events = [
        _scoped_event(
            i, ("cli", "mcp")[i % 2], f"s{i % 3}", ("error", "fix")[i % 2], ("athena", "other")[i % 4 == 0],
            DAY - timedelta(days=i % 5),
        )
        for i in range(60)
    ]  # fmt: skip
    store.upsert_events(events)
    store.write_embeddings(embed(events))
    store.ensure_vector_index(DIM)
    by_id = {event.id: event for event in events}
    query = vectors(1, seed=11)[0]
    since = datetime.combine(DAY - timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    scopes = {
        "source": (RecallScope(source="mcp"), lambda e: e.source == "mcp"),
        "session": (RecallScope(session_id="s1"), lambda e: e.session_id == "s1"),
        "type": (RecallScope(event_type="error"), lambda e: e.event_type == "error"),
        "since": (RecallScope(since=since), lambda e: e.occurred_at >= since),
        "where": (RecallScope(where={"repo": "other"}), lambda e: e.metadata["repo"] == "other"),
        "all of them": (
            RecallScope(source="cli", session_id="s0", event_type="error", where={"repo": "athena"}),
            lambda e: (e.source, e.session_id, e.event_type, e.metadata["repo"])
            == ("cli", "s0", "error", "athena"),
        ),
    }  # fmt: skip
    for name, (scope, inside) in scopes.items():
        expected = sum(inside(event) for event in events)
        for mode in ("vector", "text", "hybrid"):
            hits = store.recall(query, MODEL, DIM, k=8, query_text="note repository", mode=mode, scope=scope)
            assert len(hits) == min(8, expected), (name, mode)
            assert all(inside(by_id[hit.event_id]) for hit in hits), (name, mode)
    unscoped = store.recall(query, MODEL, DIM, k=60)
    assert len(unscoped) == 60


def test_a_selective_scope_still_returns_the_k_nearest_of_its_events(store: MemoryStore) -> None:
    """1% of 20,000 rows in one scope: searched exactly, the k nearest of the scope, in order; a broad
    scope (99%) goes through the HNSW index (pgvector's iterative scan fills k after the filter)."""
    dim = 32
    events = [
        dataclasses.replace(make_event(i, f"e {i}"), session_id="rare" if i % 100 == 7 else "common")
        for i in range(20_000)
    ]
    store.upsert_events(events)
    rows = embed(events, dim=dim, seed=4)
    store.write_embeddings(rows)
    store.ensure_vector_index(dim)
    query = np.asarray(rows[1207].embedding)  # one of the rare session's events
    rare = [row for row in rows if int(row.event_id[1:]) % 100 == 7]
    distances = [1 - np.dot(query, row.embedding) / np.linalg.norm(query) / np.linalg.norm(row.embedding)
                 for row in rare]  # fmt: skip
    nearest = [rare[i].event_id for i in np.argsort(distances, kind="stable")[:10]]
    scope = RecallScope(session_id="rare")
    plan = store.explain_recall(query, MODEL, dim, k=10, scope=scope, force_index=True)
    assert vector_index_name(dim) not in plan, plan
    hits = store.recall(query, MODEL, dim, k=10, scope=scope)
    assert [hit.event_id for hit in hits] == nearest
    broad = RecallScope(session_id="common")
    plan = store.explain_recall(query, MODEL, dim, k=10, scope=broad, force_index=True)
    assert f"Index Scan using {vector_index_name(dim)}" in plan, plan
    hits = store.recall(query, MODEL, dim, k=10, scope=broad)
    assert len(hits) == 10 and {hit.session_id for hit in hits} == {"common"}


def test_text_recall_matches_any_word_and_weighs_rare_words_more(store: MemoryStore) -> None:
    contents = [f"checked the port of service {i}" for i in range(40)] + [
        "staging redis listens on 6391",
        "redis cache warmed after the deploy",
    ]
    events = [make_event(i, text) for i, text in enumerate(contents)]
    store.upsert_events(events)
    question = "Which port does the staging redis use?"
    hits = store.recall(None, MODEL, 0, k=5, query_text=question, mode="text")
    # Every word of the question is in no event, so an all-words query would find nothing.
    assert hits[0].event_id == events[40].id, [h.content for h in hits]
    assert hits[1].event_id == events[41].id
    assert [h.text_rank for h in hits] == [1, 2, 3, 4, 5]
    assert store.recall(None, MODEL, 0, k=5, query_text="the of and", mode="text") == []


def test_scope_arguments_are_checked_before_any_query() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        scope_of(since="2026-11-20T10:00:00")
    with pytest.raises(ValueError, match="before since"):
        scope_of(since="2026-11-21", until="2026-11-20T00:00:00Z")
    with pytest.raises(ValueError, match="neither a day"):
        scope_of(until="yesterday")
    assert scope_of(until="2026-11-20").until == datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC)
    with pytest.raises(ValueError, match="metadata filter"):
        RecallScope(where={"repo": ["a", "b"]})
    with pytest.raises(ValueError, match="mode must be"):
        recall_statement("s", RecallQuery(None, MODEL, DIM, 5, "x", "fuzzy", 50))
    with pytest.raises(ValueError, match="k must be"):
        recall_statement("s", RecallQuery(None, MODEL, DIM, 0, "x", "text", 50))


def test_calls_reuse_one_pooled_connection_with_the_vector_type_registered(store: MemoryStore) -> None:
    events = [make_event(i) for i in range(10)]
    store.upsert_events(events)
    rows = embed(events)
    store.write_embeddings(rows)
    opened = store._connection_pool().get_stats()["connections_num"]
    for row in rows:
        assert store.recall(row.embedding, MODEL, DIM, k=1)[0].event_id == row.event_id
    stats = store._connection_pool().get_stats()
    assert stats["connections_num"] == opened <= 2, stats  # ten recalls, no new connection
    assert stats["requests_num"] >= 12
    store.close()
    assert store.recall(rows[0].embedding, MODEL, DIM, k=1)[0].event_id == rows[0].event_id
