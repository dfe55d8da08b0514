"""Events to embeddings through Dagster, against the real stack: partitions, idempotency, checks, recall."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from athena_assets.api import backfill as backfill_api
from athena_assets.api.backfill_plan import EVENTS_PER_RUN
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.resources import AthenaResources
from athena_assets_tests.helpers import StackHandle, write_jsonl
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.memory.store import MemoryStore
from resources.stack.llama_server import start_llama_server, stop_llama_server

DAY_ONE = date(2026, 11, 2)
DAY_TWO = date(2026, 11, 3)
PRIVATE_SERVER = "private-embeddings"


def _event(event_id: str, day: date, content: str, hour: int = 9) -> dict[str, object]:
    return {
        "id": event_id,
        "occurred_at": f"{day.isoformat()}T{hour:02d}:15:00Z",
        "content": content,
        "event_type": "error",
        "source": "test",
        "session_id": "s1",
        "metadata": {"n": hour},
    }


@pytest.fixture
def pipeline(stack: StackHandle, tmp_path: Path) -> AthenaResources:
    """Resources writing into a private schema of the stack's database, reading a private inbox."""
    return stack.private_resources(tmp_path)


def _run(stack: StackHandle, resources: AthenaResources, key: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [episodic_events, event_embeddings],
        resources=resources.as_dict(),
        instance=stack.instance,
        partition_key=key,
    )


def _materializations(result: dg.ExecuteInProcessResult, asset: str) -> list[dg.AssetMaterialization]:
    return [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(asset)
    ]


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    """The metadata of the run's materialisation of `asset` (a range run records it once per day)."""
    return {name: value.value for name, value in _materializations(result, asset)[0].metadata.items()}


def test_a_partition_loads_embeds_and_rerunning_changes_nothing(
    stack: StackHandle, pipeline, tmp_path
) -> None:
    resources = pipeline
    inbox = resources.inbox
    memory = resources.memory
    rows = [
        _event(f"e{i}", DAY_ONE, f"pytest fixture timed out waiting for postgres, attempt {i}", i)
        for i in range(6)
    ]
    rows.append(_event("other-day", DAY_TWO, "this belongs to the next partition"))
    source = write_jsonl(tmp_path / "history.jsonl", rows, ('{"content": "no timestamp"}', "not json"))
    inbox.ingest(source)

    first = _run(stack, resources, DAY_ONE.isoformat())
    events_meta, embeddings_meta = _metadata(first, "episodic_events"), _metadata(first, "event_embeddings")
    assert (events_meta["events"], events_meta["new"], events_meta["updated"]) == (6, 6, 0)
    assert (embeddings_meta["embedded"], embeddings_meta["skipped"]) == (6, 0)
    assert embeddings_meta["dimension"] == stack.stack.models["embedding"].embedding_dim
    checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
    assert checks == {
        "no_dead_letters": True,
        "no_secrets_redacted": True,
        "every_event_has_a_vector": True,
        "vectors_are_valid": True,
    }
    assert memory.event_count(DAY_TWO, DAY_TWO) == 0, "only the partition's day is loaded"
    # Lines without a readable day are dead letters of the file, not of any partition.
    assert len(memory.dead_letters()) == 2

    again = _run(stack, resources, DAY_ONE.isoformat())
    assert (_metadata(again, "episodic_events")["new"], _metadata(again, "episodic_events")["unchanged"]) == (
        0,
        6,
    )
    assert _metadata(again, "event_embeddings")["embedded"] == 0
    assert memory.stats().embeddings == 6
    assert len(memory.dead_letters()) == 2


def test_changed_content_is_updated_and_embedded_again(stack: StackHandle, pipeline, tmp_path) -> None:
    resources = pipeline
    inbox = resources.inbox
    rows = [_event(f"c{i}", DAY_ONE, f"decided to pin ruff to version 0.{i}", i) for i in range(3)]
    inbox.ingest(write_jsonl(tmp_path / "v1.jsonl", rows))
    _run(stack, resources, DAY_ONE.isoformat())

    rows[1] = {**rows[1], "content": "decided to drop the ruff pin after all"}
    inbox.ingest(write_jsonl(tmp_path / "v2.jsonl", rows))
    result = _run(stack, resources, DAY_ONE.isoformat())
    assert _metadata(result, "episodic_events")["updated"] == 1
    assert _metadata(result, "event_embeddings")["embedded"] == 1


def test_bad_lines_on_the_partition_day_warn_but_valid_events_are_kept(
    stack: StackHandle, pipeline, tmp_path
) -> None:
    resources = pipeline
    inbox = resources.inbox
    good = _event("kept", DAY_ONE, "the valid line next to a bad one")
    bad = {**_event("empty", DAY_ONE, "x"), "content": ""}
    inbox.ingest(write_jsonl(tmp_path / "mixed.jsonl", [good, bad]))
    result = _run(stack, resources, DAY_ONE.isoformat())
    [dead] = [c for c in result.get_asset_check_evaluations() if c.check_name == "no_dead_letters"]
    assert dead.passed is False
    assert dead.severity == dg.AssetCheckSeverity.WARN
    assert _metadata(result, "episodic_events")["events"] == 1


def test_a_range_backfills_in_one_run_and_recall_finds_the_event(
    stack: StackHandle, pipeline, tmp_path
) -> None:
    resources = pipeline
    inbox = resources.inbox
    memory = resources.memory
    contents = [
        "llama-server returned HTTP 500 input is too large for the physical batch",
        "the sensor cursor skipped a file because two files shared a modification time",
        "we decided to keep the HNSW index on the 384-dimensional expression",
        "pytest fixture for PostgreSQL timed out after 30 seconds on the CI machine",
    ]
    rows = [_event(f"r{i}", date(2026, 11, 5 + i), text) for i, text in enumerate(contents)]
    inbox.ingest(write_jsonl(tmp_path / "range.jsonl", rows))
    result = dg.materialize(
        [episodic_events, event_embeddings],
        resources=resources.as_dict(),
        instance=stack.instance,
        tags={backfill_api.RANGE_START_TAG: "2026-11-05", backfill_api.RANGE_END_TAG: "2026-11-08"},
    )
    assert result.success
    assert sorted(m.partition for m in _materializations(result, "event_embeddings")) == [
        "2026-11-05",
        "2026-11-06",
        "2026-11-07",
        "2026-11-08",
    ]
    assert _metadata(result, "event_embeddings")["embedded"] == 4
    assert memory.stats().embeddings == 4

    query = resources.embeddings.embed_query("the cursor of the sensor missed a file")
    model_sha = _metadata(result, "event_embeddings")["vector_key"]
    hits = memory.recall(list(query.embedding), str(model_sha), query.dimension, k=4)
    assert hits[0].event_id == "r1"
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    hybrid = memory.recall(
        list(query.embedding), str(model_sha), query.dimension, k=4, query_text="HNSW", mode="hybrid"
    )
    assert "r2" in [hit.event_id for hit in hybrid[:2]]


def test_backfill_runs_are_sized_by_events_not_days() -> None:
    first, last = date(2020, 1, 1), date(2026, 11, 24)
    assert backfill_api.day_ranges(first, last, events=3_500) == [(first, last)]  # years, few events
    ranges = backfill_api.day_ranges(first, last, events=2 * EVENTS_PER_RUN + 1)
    assert len(ranges) == 3
    assert ranges[0][0] == first and ranges[-1][1] == last
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert (start - end).days == 1
    # Never more runs than days.
    assert len(backfill_api.day_ranges(first, first, events=10 * EVENTS_PER_RUN)) == 1
    with pytest.raises(ValueError, match="before --from"):
        backfill_api.day_ranges(date(2026, 2, 1), date(2026, 1, 1))


class _ServerDiesBeforeEmbedding(MemoryStore):
    """The real store, which stops the private embedding server once the run has found its work."""

    run_dir: str

    def events_due_for_embedding(self, start: date, end_inclusive: date, model_sha256: str) -> list:  # type: ignore[override]
        due = super().events_due_for_embedding(start, end_inclusive, model_sha256)
        stop_llama_server(PRIVATE_SERVER, Path(self.run_dir))
        return due


def test_the_embedding_server_going_away_fails_the_run_naming_it_and_a_rerun_completes(
    stack: StackHandle, pipeline, tmp_path
) -> None:
    resources = pipeline
    inbox = resources.inbox
    memory = resources.memory
    rows = [_event(f"g{i}", DAY_ONE, f"event number {i} about retries", i % 24) for i in range(40)]
    inbox.ingest(write_jsonl(tmp_path / "gone.jsonl", rows))
    config = stack.private_embedding_server(PRIVATE_SERVER)
    url, run_dir = config.url, tmp_path / "run"
    resources = replace(
        resources, embeddings=LlamaCppEmbeddingResource(urls=[url], max_retries=2, retry_budget_s=3.0)
    )
    dg.materialize(
        [episodic_events],
        resources=resources.as_dict(),
        instance=stack.instance,
        partition_key=DAY_ONE.isoformat(),
    )

    start_llama_server(config, run_dir, timeout_s=60)
    dying = replace(
        resources,
        memory=_ServerDiesBeforeEmbedding(
            database_url=memory.database_url, schema_name=memory.schema_name, run_dir=str(run_dir)
        ),
    )
    failed = dg.materialize(
        [event_embeddings],
        resources=dying.as_dict(),
        instance=stack.instance,
        partition_key=DAY_ONE.isoformat(),
        raise_on_error=False,
    )
    assert not failed.success
    error = failed.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and url in error.to_string()
    assert memory.stats().embeddings == 0

    start_llama_server(config, run_dir, timeout_s=60)
    try:
        done = dg.materialize(
            [event_embeddings],
            resources=resources.as_dict(),
            instance=stack.instance,
            partition_key=DAY_ONE.isoformat(),
        )
    finally:
        stop_llama_server(PRIVATE_SERVER, run_dir)
    assert _metadata(done, "event_embeddings")["embedded"] == 40
    with psycopg.connect(stack.database_url) as conn:
        rows_per_event = conn.execute(
            f'SELECT count(*), count(DISTINCT event_id) FROM "{memory.schema_name}".event_embeddings'  # noqa: S608
        ).fetchone()
    assert rows_per_event == (40, 40)
