"""Knowledge that changes, on the real stack (Qwen2.5-Coder-1.5B-Instruct, MiniLM, PostgreSQL + pgvector):
a change closes the old pattern, a repetition reinforces it, and reading as of a day answers from history.

A port is stated on day one and again on day two, moved on day three. Each day is consolidated through
the asset with a two-day look-back, so the move is clustered with the statements it replaces.
"""

from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from athena_assets.api.app import App
from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.prompts.assets import compressed_prompts
from athena_assets.defs.resources import AthenaResources
from athena_assets.mcp.tools import MemoryTools
from athena_assets_tests.helpers import StackHandle, embed_day
from resources.compression.compressor import PromptCompressorResource
from resources.memory.pattern_records import PatternRecord
from resources.memory.pattern_store import PatternStore

DAY_ONE = date(2026, 11, 2)
DAY_TWO = date(2026, 11, 3)
DAY_THREE = date(2026, 11, 4)
STATED = [
    "The Redis cache listens on port 6391 on the dev box",
    "Connected the worker to the Redis cache on port 6391",
    "Redis cache port 6391 is set in settings.toml for local runs",
]
MOVED = "Moved the Redis cache from port 6391 to port 6392 because 6391 clashed with the metrics agent"
RESTATED = [
    "The Redis cache now answers on port 6392 on the dev box",
    "Pointed the worker at the Redis cache on port 6392",
]
CONFIG = {
    "lookback_days": 2,
    "recurring_lookback_days": 2,
    "min_cluster_size": 3,
    "max_tokens": 200,
    "title_chars": 60,
    "description_chars": 160,
}
TABLES = ("semantic_patterns", "pattern_observations", "pattern_evidence", "pattern_supersessions")


def _rows(day: date, texts: list[str], prefix: str) -> list[dict[str, Any]]:
    """One event an hour from 09:00, in order."""
    return [
        {"id": f"{prefix}-{n}", "occurred_at": f"{day}T{9 + n:02d}:00:00Z", "content": text, "source": "test"}
        for n, text in enumerate(texts)
    ]


@pytest.fixture
def pipeline(stack: StackHandle, tmp_path: Path) -> AthenaResources:
    """Resources writing into a private schema of the stack's database, reading a private inbox."""
    return stack.private_resources(tmp_path)


def _consolidate(stack: StackHandle, resources: AthenaResources, day: date) -> None:
    result = dg.materialize(
        [consolidated_patterns],
        resources=resources.as_dict(),
        instance=stack.instance,
        partition_key=day.isoformat(),
        run_config={"ops": {"consolidated_patterns": {"config": CONFIG}}},
    )
    assert result.success


def _said(pattern: PatternRecord) -> str:
    return f"{pattern.title} {pattern.description}"


def _dump(stack: StackHandle, schema: str) -> dict[str, list[tuple]]:
    with psycopg.connect(stack.database_url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY 1, 2, 3").format(sql.Identifier(schema, table))
            ).fetchall()
            for table in TABLES
        }


@pytest.mark.timeout(900)
def test_a_change_closes_the_old_pattern_and_reading_as_of_a_day_answers_from_history(
    stack, pipeline, tmp_path
) -> None:
    store = PatternStore.beside(pipeline.memory)
    assert embed_day(stack, pipeline, _rows(DAY_ONE, STATED, "d1"), DAY_ONE.isoformat(), tmp_path).success
    _consolidate(stack, pipeline, DAY_ONE)
    [first] = store.patterns()
    assert set(first.evidence_event_ids) == {"d1-0", "d1-1", "d1-2"} and first.current

    # A repetition reinforces: the same pattern, seen on two days, still current.
    repeated = _rows(DAY_TWO, STATED[:2], "d2")
    assert embed_day(stack, pipeline, repeated, DAY_TWO.isoformat(), tmp_path).success
    _consolidate(stack, pipeline, DAY_TWO)
    [again] = store.patterns()
    assert (again.pattern_id, again.support, again.valid_to) == (first.pattern_id, 2, None)

    changed = _rows(DAY_THREE, [MOVED, *RESTATED], "d3")
    assert embed_day(stack, pipeline, changed, DAY_THREE.isoformat(), tmp_path).success
    _consolidate(stack, pipeline, DAY_THREE)
    [now] = store.patterns()
    assert now.pattern_id != first.pattern_id and "6392" in _said(now), _said(now)
    every = {p.pattern_id: p for p in store.patterns(include_superseded=True)}
    old = every[first.pattern_id]
    moved_at = datetime.combine(DAY_THREE, time(9), tzinfo=UTC)
    assert (old.valid_to, old.superseded_by) == (moved_at, now.pattern_id), "closed by the move event"
    assert now.valid_from == moved_at and now.current
    assert set(old.evidence_event_ids) >= {"d1-0", "d1-1", "d1-2"}, "a closed pattern keeps its evidence"
    # From the next day on, what the closed pattern cites joins no cluster; the move itself may.
    cited = [*old.evidence_event_ids, "d3-0"]
    assert store.replaced_evidence(cited, DAY_THREE) == set(), "closed by this day's own observation"
    assert store.replaced_evidence(cited, date(2026, 11, 5)) == set(old.evidence_event_ids)

    # As of a day, what was current at its end.
    assert [p.pattern_id for p in store.patterns(as_of=DAY_TWO)] == [first.pattern_id]
    assert [p.pattern_id for p in store.patterns(as_of=DAY_THREE)] == [now.pattern_id]
    app = App(stack.settings)
    app.__dict__["resources"] = pipeline  # the private schema instead of the deployment's (cached_property)
    tools = MemoryTools(app)
    [then] = tools.patterns(as_of=DAY_TWO.isoformat())
    assert (then["pattern_id"], then["valid_to"]) == (first.pattern_id, moved_at.isoformat())
    assert then["superseded_by"] == now.pattern_id
    assert [p["pattern_id"] for p in tools.patterns()] == [now.pattern_id]
    assert len(tools.patterns(include_superseded=True)) == 2

    # The Claude prompt holds current knowledge only, with a note of what changed (passed through
    # uncompressed here, so its text can be read).
    uncompressed = replace(pipeline, compressor=PromptCompressorResource(enabled=False))
    for day in (DAY_TWO, DAY_THREE):
        prompts = dg.materialize(
            [compressed_prompts],
            resources=uncompressed.as_dict(),
            instance=stack.instance,
            partition_key=day.isoformat(),
        )
        assert prompts.success
    on_day_two, _ = pipeline.prompt_store.compressed(DAY_TWO)
    assert f"## {first.title}" in on_day_two and "Changed on" not in on_day_two, on_day_two
    text, _ = pipeline.prompt_store.compressed(DAY_THREE)
    assert f"## {now.title}" in text and f"## {old.title}" not in text, text
    assert f"Changed on {DAY_THREE} (was: {old.title})." in text, text

    # Re-running the same days changes nothing.
    before = _dump(stack, pipeline.memory.schema_name)
    for day in (DAY_ONE, DAY_TWO, DAY_THREE):
        _consolidate(stack, pipeline, day)
    assert _dump(stack, pipeline.memory.schema_name) == before


@pytest.mark.timeout(900)
def test_one_event_naming_a_change_closes_the_pattern_it_replaces(stack, pipeline, tmp_path) -> None:
    store = PatternStore.beside(pipeline.memory)
    assert embed_day(stack, pipeline, _rows(DAY_ONE, STATED, "d1"), DAY_ONE.isoformat(), tmp_path).success
    _consolidate(stack, pipeline, DAY_ONE)
    [first] = store.patterns()

    # Days later, beyond the look-back, the move is said once among unrelated events: no cluster can
    # form, yet it names a change of the current pattern. A one-off naming a change of nothing stored
    # ("removed an unused npm dependency") gives no pattern.
    later = date(2026, 11, 6)
    one_offs = ["Renewed the TLS certificate for the docs site", "Removed an unused npm dependency"]
    assert embed_day(
        stack, pipeline, _rows(later, [MOVED, *one_offs], "d5"), later.isoformat(), tmp_path
    ).success
    _consolidate(stack, pipeline, later)
    [now] = store.patterns()
    assert now.pattern_id != first.pattern_id and "6392" in _said(now), _said(now)
    assert list(now.evidence_event_ids) == ["d5-0"], "the move event alone is its evidence"
    moved_at = datetime.combine(later, time(9), tzinfo=UTC)
    assert now.valid_from == moved_at
    old = {p.pattern_id: p for p in store.patterns(include_superseded=True)}[first.pattern_id]
    assert (old.valid_to, old.superseded_by) == (moved_at, now.pattern_id)
    assert len(store.patterns(include_superseded=True)) == 2  # nothing from the one-offs

    before = _dump(stack, pipeline.memory.schema_name)
    _consolidate(stack, pipeline, later)
    assert _dump(stack, pipeline.memory.schema_name) == before
