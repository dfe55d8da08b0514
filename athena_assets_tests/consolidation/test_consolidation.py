"""Tier (c): consolidated_patterns through Dagster against the real stack (Qwen2.5-Coder-1.5B-Instruct,
MiniLM, PostgreSQL + pgvector), in a private schema with a private inbox.

The small base model writes poor prose, so these tests assert structure, provenance, idempotency,
merging and fault handling, never wording.
"""

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from athena_assets.api import backfill as backfill_api
from athena_assets.api.app import App
from athena_assets.api.metrics import all_stats
from athena_assets.api.patterns import patterns
from athena_assets.defs.consolidation.assets import (
    EVIDENCE_CHECK,
    FAILED_CLUSTERS_CHECK,
    consolidated_patterns,
)
from athena_assets.defs.resources import AthenaResources
from athena_assets.knowledge.ask_model import Prompting
from athena_assets.knowledge.cluster_prompt import KINDS
from athena_assets.knowledge.clustering import evidence_centroid
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets_tests.helpers import StackHandle, embed_day
from resources.llamacpp.reasoning import LlamaCppReasoningResource
from resources.memory.pattern_records import NewObservation
from resources.memory.pattern_store import PatternStore
from resources.memory.recall_scope import RecallScope
from resources.stack.llama_server import free_port

DAY_ONE = date(2026, 11, 2)
DAY_TWO = date(2026, 11, 3)
DAY_THREE = date(2026, 11, 4)
THEMES = {
    "pg": [
        "pytest fixture timed out waiting for postgres on the CI machine ({})",
        "the CI run failed: pytest fixture timed out while waiting for postgres ({})",
        "postgres fixture timeout in pytest again on CI ({})",
        "pytest could not reach postgres before the fixture timeout on CI ({})",
    ],
    "dark": [
        "user asked to switch the code editor to dark mode ({})",
        "user wants the dark theme in the editor ({})",
        "user again asked for dark mode in the editor ({})",
        "please turn on dark mode in the editor, said the user ({})",
    ],
    "deploy": [
        "staging deploy failed: the database migration waited on a lock ({})",
        "deploy to staging broke again on the migration lock ({})",
        "the migration lock made the staging deploy fail ({})",
        "staging deployment stuck on a database migration lock ({})",
    ],
}
SINGLETONS = [
    "booked a flight to Lisbon for the conference in May",
    "the quarterly budget review moved to Thursday",
    "ordered a new keyboard with brown switches",
]
# Small answers keep a test to a few seconds a call; the clustering threshold separates the themes.
FAST = {
    # One day at a time unless a test asks for a look-back (the defaults are a week, three for repeats).
    "lookback_days": 0,
    "recurring_lookback_days": 0,
    "similarity_threshold": 0.7,
    "min_cluster_size": 3,
    "max_patterns_per_cluster": 1,
    "max_tokens": 200,
    "title_chars": 40,
    "description_chars": 80,
}
PATTERN_TABLES = ("semantic_patterns", "pattern_observations", "pattern_evidence")


def _events(day: date, theme: str, prefix: str, count: int = 4) -> list[dict[str, Any]]:
    """`count` events of `theme` on `day`; the same theme on another day has the same contents."""
    templates = THEMES[theme]
    return [
        {
            "id": f"{prefix}-{theme}-{i}",
            "occurred_at": f"{day.isoformat()}T{8 + i:02d}:{10 + len(theme):02d}:00Z",
            "content": templates[i % len(templates)].format(f"run {i % len(templates) + 1}")
            + (f", retry {i // len(templates)}" if i >= len(templates) else ""),
            "event_type": "note",
            "source": "test",
        }
        for i in range(count)
    ]


def _singletons(day: date, prefix: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-single-{i}", "occurred_at": f"{day.isoformat()}T20:0{i}:00Z", "content": text}
        for i, text in enumerate(SINGLETONS)
    ]


@pytest.fixture
def pipeline(stack: StackHandle, tmp_path: Path) -> AthenaResources:
    """Resources writing into a private schema of the stack's database, reading a private inbox."""
    return stack.private_resources(tmp_path)


def _load(
    stack: StackHandle, resources: AthenaResources, tmp_path: Path, day: date, rows: list[dict]
) -> None:
    """Store `rows` in the inbox and materialise the day's events and embeddings."""
    assert embed_day(stack, resources, rows, day.isoformat(), tmp_path).success


def _consolidate(
    stack: StackHandle, resources: AthenaResources, day: date, raise_on_error: bool = True, **config: Any
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [consolidated_patterns],
        resources=resources.as_dict(),
        instance=stack.instance,
        partition_key=day.isoformat(),
        run_config={"ops": {"consolidated_patterns": {"config": {**FAST, **config}}}},
        raise_on_error=raise_on_error,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The run's materialisation metadata (a range run records the same metadata for every day)."""
    event = result.get_asset_materialization_events()[0]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {check.check_name: check for check in result.get_asset_check_evaluations()}


def _dump(stack: StackHandle, schema: str) -> dict[str, list[tuple]]:
    """Every row of the pattern tables, in a stable order, vectors as text."""
    tables = {}
    with psycopg.connect(stack.database_url) as conn:
        for table in PATTERN_TABLES:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table))
            tables[table] = sorted(tuple(map(str, row)) for row in conn.execute(query).fetchall())
    return tables


def _observations(stack: StackHandle, schema: str) -> list[dict[str, Any]]:
    """Each observation with its cluster size, day and evidence event ids."""
    query = sql.SQL(
        "SELECT o.day, o.cluster_key, o.pattern_index, o.pattern_id, o.cluster_size, "
        "array_agg(v.event_id ORDER BY v.event_id) AS evidence FROM {obs} AS o "
        "LEFT JOIN {ev} AS v USING (day, cluster_key, pattern_index) GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3"
    ).format(
        obs=sql.Identifier(schema, "pattern_observations"), ev=sql.Identifier(schema, "pattern_evidence")
    )
    with psycopg.connect(stack.database_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.timeout(900)
def test_patterns_have_provenance_and_a_rerun_leaves_identical_tables(stack, pipeline, tmp_path) -> None:
    rows = [row for theme in THEMES for row in _events(DAY_ONE, theme, "d1")] + _singletons(DAY_ONE, "d1")
    _load(stack, pipeline, tmp_path, DAY_ONE, rows)
    schema = pipeline.memory.schema_name
    store = PatternStore.beside(pipeline.memory)

    calls_before = all_stats(stack.instance)["reasoning"]["total_calls"]  # type: ignore[index]
    first = _consolidate(stack, pipeline, DAY_ONE)
    meta = _metadata(first)
    # Every reasoning call of the consolidation is in `athena metrics` (read from the instance).
    calls_after = all_stats(stack.instance)["reasoning"]["total_calls"]  # type: ignore[index]
    assert calls_after - calls_before == meta["reasoning_calls"]
    assert (meta["events"], meta["clusters"], meta["events_clustered"]) == (15, 3, 12)
    assert meta["clusters_failed"] == 0 and meta["reasoning_calls"] >= 3
    assert meta["prompt_tokens"] > 0 and meta["output_tokens"] > 0 and meta["tokens_per_s"] > 0
    assert meta["latency_p95_ms"] >= meta["latency_p50_ms"] > 0
    assert meta["patterns_new"] + meta["patterns_reinforced"] >= 1
    assert meta["prompt_version"] and meta["model_sha256"]
    [observation] = [
        event.asset_observation_data.asset_observation for event in first.get_asset_observation_events()
    ]
    assert observation.partition == DAY_ONE.isoformat() and observation.metadata["clusters"].value == 3
    checks = _checks(first)
    assert checks[EVIDENCE_CHECK].passed and checks[FAILED_CLUSTERS_CHECK].passed

    themes_of_cluster = {}
    for item in _observations(stack, schema):
        themes = {event_id.split("-")[1] for event_id in item["evidence"]}
        assert item["evidence"] and len(themes) == 1, "evidence comes from one cluster, one theme"
        assert all(event_id.startswith("d1-") for event_id in item["evidence"])
        assert item["cluster_size"] == 4
        themes_of_cluster[item["cluster_key"]] = themes
    assert len(themes_of_cluster) == 3, "every cluster produced at least one observation"
    patterns = store.patterns()
    assert patterns and len(patterns) == meta["patterns_new"]
    for pattern in patterns:
        assert pattern.evidence_event_ids and pattern.kind in KINDS and 0 <= pattern.confidence <= 1
        assert pattern.support >= 1 and pattern.first_seen <= pattern.last_seen
        assert {event.occurred_at.date() for event in pattern.evidence} == {DAY_ONE}
        assert set(pattern.to_json()) == {
            "pattern_id", "title", "description", "kind", "confidence", "support", "method",
            "valid_from", "valid_to", "superseded_by", "evidence_event_ids",
        }  # fmt: skip
        assert pattern.to_json()["valid_to"] is None and pattern.current

    before = _dump(stack, schema)
    again = _metadata(_consolidate(stack, pipeline, DAY_ONE))
    assert _dump(stack, schema) == before
    # llama-server at temperature 0 is not bit-reproducible; the remembered answers make the re-run exact.
    assert (again["answers_reused"], again["reasoning_calls"]) == (3, 0)
    counters = ("clusters", "events_clustered", "patterns_new", "patterns_reinforced", "patterns_discarded")
    assert [again[name] for name in counters] == [meta[name] for name in counters]


@pytest.mark.timeout(900)
def test_a_theme_on_a_later_day_reinforces_its_pattern_and_lookback_joins_days(
    stack, pipeline, tmp_path
) -> None:
    schema = pipeline.memory.schema_name
    store = PatternStore.beside(pipeline.memory)
    _load(stack, pipeline, tmp_path, DAY_ONE, _events(DAY_ONE, "dark", "d1"))
    # The model's prose is poor and not bit-reproducible; 0.8 still merges only what is alike.
    _consolidate(stack, pipeline, DAY_ONE, merge_threshold=0.8)
    [pattern] = store.patterns()
    assert pattern.support == 1

    # The same theme in the same words on the next day: the model sees the same prompt.
    _load(stack, pipeline, tmp_path, DAY_TWO, _events(DAY_TWO, "dark", "d2"))
    second = _metadata(_consolidate(stack, pipeline, DAY_TWO, merge_threshold=0.8))
    assert (second["patterns_new"], second["patterns_reinforced"]) == (0, 1)
    # A theme already known is not asked about again: its pattern is reinforced without asking for a
    # pattern. At most one yes/no question is asked, whether the day's new numbers ("run 4") change it.
    assert second["reasoning_calls"] <= 1 and second["output_tokens"] <= 16, second
    [merged] = store.patterns()
    assert merged.pattern_id == pattern.pattern_id and merged.support == 2
    assert merged.first_seen == pattern.first_seen and merged.last_seen.date() == DAY_TWO
    assert [entry["day"] for entry in merged.descriptions] == [DAY_ONE.isoformat(), DAY_TWO.isoformat()]
    assert {event_id[:2] for event_id in merged.evidence_event_ids} == {"d1", "d2"}
    assert [p.pattern_id for p in store.patterns(since=DAY_TWO)] == [pattern.pattern_id]
    assert store.patterns(since=DAY_THREE) == []

    # One event of the theme on day three is no cluster alone; the look-back window completes it.
    _load(stack, pipeline, tmp_path, DAY_THREE, _events(DAY_THREE, "dark", "d3", count=1))
    alone = _metadata(_consolidate(stack, pipeline, DAY_THREE))
    assert alone["clusters"] == 0 and alone["reasoning_calls"] == 0
    # The theme's weakest pair is 0.72 similar; a looser threshold keeps nine events in one cluster.
    joined = _consolidate(stack, pipeline, DAY_THREE, lookback_days=2, similarity_threshold=0.6)
    meta = _metadata(joined)
    assert (meta["clusters"], meta["lookback_events"], meta["events_clustered"]) == (1, 8, 9)
    assert _checks(joined)[EVIDENCE_CHECK].passed
    [day_three] = [item for item in _observations(stack, schema) if item["day"] == DAY_THREE]
    assert day_three["cluster_size"] == 9
    assert set(day_three["evidence"]) <= {f"{p}-dark-{i}" for p in ("d1", "d2") for i in range(4)} | {
        "d3-dark-0"
    }


@pytest.mark.timeout(600)
def test_a_subject_restated_beyond_the_lookback_joins_its_near_repeat(stack, pipeline, tmp_path) -> None:
    # A quiet subject: said once, said again in nearly the same words nine days later, among one-offs.
    store = PatternStore.beside(pipeline.memory)
    said = "Ran black to format the Python code before committing"
    later = DAY_ONE + timedelta(days=9)
    first = {"id": "first", "occurred_at": f"{DAY_ONE}T09:00:00Z", "content": said}
    _load(stack, pipeline, tmp_path, DAY_ONE, [first])
    _load(stack, pipeline, tmp_path, later, [
        {"id": "again", "occurred_at": f"{later}T09:00:00Z", "content": f"{said} today"},
        *_singletons(later, "later"),
    ])  # fmt: skip
    assert _metadata(_consolidate(stack, pipeline, DAY_ONE))["clusters"] == 0

    # Beyond a two-day look-back: nothing joins the day's events.
    short = _metadata(_consolidate(stack, pipeline, later, lookback_days=2, recurring_lookback_days=2))
    assert (short["clusters"], short["lookback_events"]) == (0, 0) and store.patterns() == []

    # Near-repeats may come from ten days back: the pair recurs, so it is a theme; the one-offs are not.
    result = _consolidate(stack, pipeline, later, lookback_days=2, recurring_lookback_days=10)
    meta = _metadata(result)
    assert (meta["clusters"], meta["lookback_events"]) == (1, 1), meta
    assert _checks(result)[EVIDENCE_CHECK].passed, "evidence ten days back lies inside the window"
    [pattern] = store.patterns()
    assert set(pattern.evidence_event_ids) == {"first", "again"}
    assert "black" in f"{pattern.title} {pattern.description}".lower(), pattern


@pytest.mark.timeout(600)
def test_an_answer_cut_off_is_retried_once_then_replaced_by_an_extractive_pattern(
    stack, pipeline, tmp_path
) -> None:
    _load(stack, pipeline, tmp_path, DAY_ONE, _events(DAY_ONE, "deploy", "d1") + _singletons(DAY_ONE, "d1"))
    result = _consolidate(stack, pipeline, DAY_ONE, max_tokens=5)
    assert result.success
    meta = _metadata(result)
    assert (meta["clusters"], meta["clusters_failed"], meta["clusters_answer_rejected"]) == (1, 0, 1)
    assert (meta["reasoning_calls"], meta["reasoning_failed_calls"]) == (2, 2)
    assert (meta["patterns_new"], meta["patterns_llm"], meta["patterns_extractive"]) == (1, 0, 1)
    assert _checks(result)[FAILED_CLUSTERS_CHECK].passed
    [pattern] = PatternStore.beside(pipeline.memory).patterns()
    assert pattern.method == "extractive"
    assert set(pattern.evidence_event_ids) == {f"d1-deploy-{i}" for i in range(4)}
    # Its title is the theme's own words: what the four events share, not what one of them says.
    assert {"migration", "lock"} <= set(pattern.title.lower().replace(",", " ").split()), pattern.title
    assert pattern.description in {text.format(f"run {i + 1}") for i, text in enumerate(THEMES["deploy"])}


@pytest.mark.timeout(600)
def test_a_cluster_larger_than_the_prompt_budget_is_trimmed_and_reported(stack, pipeline, tmp_path) -> None:
    _load(stack, pipeline, tmp_path, DAY_ONE, _events(DAY_ONE, "pg", "d1", count=6))
    # The frame (the system message and question) plus about 50 tokens: room for two of the six events
    # (about 21 tokens each).
    frame = Prompting(ConsolidationConfig(), pipeline.reasoning, None, "frame only").frame_cost()
    result = _consolidate(stack, pipeline, DAY_ONE, max_prompt_tokens=frame + 50)
    meta = _metadata(result)
    assert (meta["clusters"], meta["clusters_trimmed"]) == (1, 1)
    assert 0 < meta["events_trimmed"] < 6
    shown = 6 - meta["events_trimmed"]
    for item in _observations(stack, pipeline.memory.schema_name):
        assert item["cluster_size"] == 6 and 1 <= len(item["evidence"]) <= shown


@pytest.mark.timeout(600)
def test_the_reasoning_server_down_fails_the_run_naming_it_and_changes_nothing(
    stack, pipeline, tmp_path
) -> None:
    _load(stack, pipeline, tmp_path, DAY_ONE, _events(DAY_ONE, "deploy", "d1"))
    schema = pipeline.memory.schema_name
    _consolidate(stack, pipeline, DAY_ONE)
    before = _dump(stack, schema)
    assert before["semantic_patterns"]

    url = f"http://127.0.0.1:{free_port()}"
    down = replace(
        pipeline, reasoning=LlamaCppReasoningResource(urls=[url], max_retries=1, retry_budget_s=2.0)
    )
    # Asked afresh: a remembered answer would spare the dead server the request.
    failed = _consolidate(stack, down, DAY_ONE, raise_on_error=False, reuse_answers=False)
    assert not failed.success
    error = failed.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and url in error.to_string() and "nothing of 2026-11-02" in error.to_string()
    assert _dump(stack, schema) == before

    _consolidate(stack, pipeline, DAY_ONE)
    assert _dump(stack, schema) == before, "the later run leaves exactly one copy of each pattern"


@pytest.mark.timeout(120)
def test_the_patterns_use_case_filters_by_day_kind_and_scope(stack, pipeline, tmp_path) -> None:
    """`api.patterns` (what `athena patterns` and the MCP tool call) over the asset's store."""
    _load(stack, pipeline, tmp_path, DAY_ONE, _events(DAY_ONE, "pg", "d1") + _events(DAY_ONE, "dark", "d1"))
    _consolidate(stack, pipeline, DAY_ONE)
    app = App(stack.settings)
    app.__dict__["resources"] = pipeline  # the private schema instead of the deployment's (cached_property)
    found = patterns(app)
    assert len(found) == 2, [p.title for p in found]
    assert patterns(app, since=DAY_TWO) == [], "last seen before the day asked for"
    one = found[0]
    assert {p.pattern_id for p in patterns(app, kind=one.kind)} >= {one.pattern_id}
    assert patterns(app, kind="no-such-kind") == []
    assert len(patterns(app, scope=RecallScope(source="test"))) == 2, "every evidence event's source"
    assert patterns(app, scope=RecallScope(source="elsewhere")) == []


@pytest.mark.timeout(300)
def test_a_range_run_consolidates_every_day_and_observes_each_partition(stack, pipeline, tmp_path) -> None:
    for day in (DAY_ONE, DAY_TWO):
        _load(stack, pipeline, tmp_path, day, _singletons(day, day.isoformat()))
    result = dg.materialize(
        [consolidated_patterns],
        resources=pipeline.as_dict(),
        instance=stack.instance,
        tags={
            backfill_api.RANGE_START_TAG: DAY_ONE.isoformat(),
            backfill_api.RANGE_END_TAG: DAY_TWO.isoformat(),
        },
        run_config={"ops": {"consolidated_patterns": {"config": FAST}}},
    )
    assert sorted(e.materialization.partition for e in result.get_asset_materialization_events()) == [
        DAY_ONE.isoformat(),
        DAY_TWO.isoformat(),
    ]
    observed = [e.asset_observation_data.asset_observation for e in result.get_asset_observation_events()]
    assert [(o.partition, o.metadata["events"].value) for o in observed] == [
        (DAY_ONE.isoformat(), 3),
        (DAY_TWO.isoformat(), 3),
    ]
    meta = _metadata(result)
    assert (meta["first_day"], meta["last_day"], meta["events"], meta["clusters"]) == (
        DAY_ONE.isoformat(),
        DAY_TWO.isoformat(),
        6,
        0,
    )


def _observation(day: date, key: str, text_vector: Any, evidence: list[Any], model: str) -> NewObservation:
    return NewObservation(
        day=day,
        cluster_key=key,
        pattern_index=0,
        title="The first thing I did was",
        description="A generic sentence a small model writes for any cluster.",
        kind="other",
        confidence=0.3,
        evidence_ids=tuple(event.id for event in evidence),
        embedding=text_vector,
        evidence_centroid=evidence_centroid([event.vector for event in evidence]),
        model_sha256=model,
        prompt_version="test",
        cluster_size=len(evidence),
    )


@pytest.mark.timeout(300)
def test_the_store_merges_on_text_and_evidence_and_replacing_days_is_idempotent(
    stack, pipeline, tmp_path
) -> None:
    """Storage alone, without the model: the same generic text over unrelated evidence founds two
    patterns, and replacing a day (even emptying and restoring it) returns to identical tables."""
    rows = _events(DAY_ONE, "dark", "d1") + _events(DAY_ONE, "deploy", "d1") + _events(DAY_TWO, "dark", "d2")
    for day in (DAY_ONE, DAY_TWO):
        _load(
            stack, pipeline, tmp_path, day, [row for row in rows if row["occurred_at"].startswith(str(day))]
        )
    schema = pipeline.memory.schema_name
    store = PatternStore.beside(pipeline.memory)
    store.ensure_schema()
    model = "test-model"
    vectors = store.event_vectors(DAY_ONE, DAY_TWO, App(stack.settings).vector_key())
    by_theme = {
        (day, theme): [v for v in vectors if v.day == day and f"-{theme}-" in v.id]
        for day in (DAY_ONE, DAY_TWO)
        for theme in ("dark", "deploy")
    }
    text = by_theme[(DAY_ONE, "dark")][0].vector  # any fixed vector: the "same generic title"
    day_one = [
        _observation(DAY_ONE, "k-dark", text, by_theme[(DAY_ONE, "dark")], model),
        _observation(DAY_ONE, "k-deploy", text, by_theme[(DAY_ONE, "deploy")], model),
    ]
    day_two = [_observation(DAY_TWO, "k-dark-2", text, by_theme[(DAY_TWO, "dark")], model)]

    first = store.replace_day(DAY_ONE, day_one, merge_threshold=0.9, evidence_threshold=0.6)
    assert (first.new, first.reinforced) == (2, 0), "same text, unrelated evidence: two patterns"
    second = store.replace_day(DAY_TWO, day_two, merge_threshold=0.9, evidence_threshold=0.6)
    assert (second.new, second.reinforced) == (0, 1)
    supports = sorted(pattern.support for pattern in store.patterns())
    assert supports == [1, 2]
    settled = _dump(stack, schema)

    store.replace_day(DAY_ONE, day_one, merge_threshold=0.9, evidence_threshold=0.6)
    assert _dump(stack, schema) == settled
    emptied = store.replace_day(DAY_ONE, [], merge_threshold=0.9, evidence_threshold=0.6)
    assert emptied.removed == 1, "the deploy pattern had only day one; the dark one lives on with day two"
    assert [pattern.support for pattern in store.patterns()] == [1]
    store.replace_day(DAY_ONE, day_one, merge_threshold=0.9, evidence_threshold=0.6)
    assert _dump(stack, schema) == settled

    # What the gate keeps out, if it were ever stored: the check counts it, per cluster of the day.
    assert store.check(DAY_ONE, DAY_ONE).same_evidence_duplicates == 0
    twice = [*day_one, replace(day_one[0], pattern_index=1)]
    store.replace_day(DAY_ONE, twice, merge_threshold=0.9, evidence_threshold=0.6)
    assert store.check(DAY_ONE, DAY_ONE).same_evidence_duplicates == 1


@pytest.mark.timeout(600)
def test_the_instruct_model_writes_a_grounded_pattern_by_chat(stack, pipeline, tmp_path) -> None:
    """The local profile's instruction model (Qwen2.5-Coder-Instruct), asked the production way (a system
    message, the question, compact JSON under a grammar), through the asset: its own answer passes the
    gate and states the events' subject in their words."""
    assert pipeline.reasoning.prompting == "chat"
    _load(stack, pipeline, tmp_path, DAY_ONE, _events(DAY_ONE, "deploy", "d1"))
    meta = _metadata(_consolidate(stack, pipeline, DAY_ONE))
    assert (meta["clusters"], meta["clusters_failed"], meta["patterns_llm"]) == (1, 0, 1), meta
    assert meta["reasoning_calls"] == 1 and meta["output_tokens"] < 120, "one compact answer"
    [pattern] = PatternStore.beside(pipeline.memory).patterns()
    assert pattern.method == "llm"
    assert set(pattern.evidence_event_ids) == {f"d1-deploy-{i}" for i in range(4)}
    said = f"{pattern.title} {pattern.description}".lower()
    assert "migration" in said or "lock" in said, said
    assert "staging" in said or "deploy" in said, said
