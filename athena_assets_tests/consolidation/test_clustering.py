"""Tier (b): the pure consolidation logic with small inputs: clustering, budgets, answer mapping,
the prompt's schema and the per-day report."""

from datetime import date

import dagster as dg
import numpy as np
import pytest

from athena_assets.defs.consolidation.metadata import day_observation, range_metadata
from athena_assets.knowledge import cluster_prompt
from athena_assets.knowledge.ask_model import request_sha256
from athena_assets.knowledge.clustering import (
    cluster_events,
    cluster_key,
    evidence_centroid,
    joining,
    map_answer,
)
from athena_assets.knowledge.day_report import EMPTY_SUMMARY, ClusterOutcome, DayReport, ReasoningSummary
from resources.llamacpp.json_schema import schema_errors
from resources.memory.pattern_records import DayWrite
from resources.numeric import percentile, within_budget

DIM = 32


def _themes(
    rng: np.random.Generator, themes: int, per_theme: int, singletons: int
) -> tuple[list[str], np.ndarray]:
    """`themes` groups of near-duplicate vectors, then `singletons` unrelated ones, interleaved by theme."""
    bases = rng.normal(size=(themes + singletons, DIM))
    ids, rows = [], []
    for copy in range(per_theme):
        for theme in range(themes):
            ids.append(f"t{theme}-{copy}")
            rows.append(bases[theme] + rng.normal(scale=0.05, size=DIM))
    for single in range(singletons):
        ids.append(f"s{single}")
        rows.append(bases[themes + single])
    return ids, np.array(rows)


def test_near_duplicates_form_one_cluster_per_theme_and_singletons_none() -> None:
    ids, vectors = _themes(np.random.default_rng(1), themes=3, per_theme=4, singletons=3)
    clusters = cluster_events(ids, vectors, [True] * len(ids), threshold=0.8, min_size=3)

    assert [sorted(c.member_ids) for c in clusters] == [
        [f"t{theme}-{copy}" for copy in range(4)] for theme in range(3)
    ]
    for cluster in clusters:
        assert cluster.key == cluster_key(list(reversed(cluster.member_ids)))
        assert sorted(cluster.by_centrality) == sorted(cluster.member_ids)
        assert 0 <= cluster.seed < 2**32
    again = cluster_events(ids, vectors, [True] * len(ids), threshold=0.8, min_size=3)
    assert again == clusters


def test_min_size_and_partition_membership_filter_clusters() -> None:
    ids, vectors = _themes(np.random.default_rng(2), themes=2, per_theme=3, singletons=0)
    assert cluster_events(ids, vectors, [True] * 6, threshold=0.8, min_size=4) == []
    # Theme 0's events are all from earlier days: its cluster belongs to those days, not this one.
    in_partition = [not event_id.startswith("t0") for event_id in ids]
    [cluster] = cluster_events(ids, vectors, in_partition, threshold=0.8, min_size=3)
    assert all(event_id.startswith("t1") for event_id in cluster.member_ids)


def test_cluster_events_refuses_bad_parameters() -> None:
    vectors = np.eye(3)
    with pytest.raises(ValueError, match="min_size"):
        cluster_events(["a", "b", "c"], vectors, [True] * 3, threshold=0.8, min_size=1)
    with pytest.raises(ValueError, match="same length"):
        cluster_events(["a", "b"], vectors, [True] * 3, threshold=0.8, min_size=2)
    assert cluster_events(["a"], vectors[:1], [True], threshold=0.8, min_size=2) == []


def test_centrality_puts_the_outlier_last() -> None:
    base = np.ones(DIM)
    outlier = base.copy()
    outlier[:8] = -0.2
    vectors = np.array([base + 0.01 * i for i in range(3)] + [outlier])
    [cluster] = cluster_events(["a", "b", "c", "d"], vectors, [True] * 4, threshold=0.5, min_size=3)
    assert cluster.by_centrality[-1] == "d"


def test_the_window_adds_the_lookback_s_similar_events_and_older_near_repeats() -> None:
    day = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    earlier = np.array([[0.9, 0.3, 0.0], [0.9, 0.3, 0.0], [0.99, 0.05, 0.0], [0.0, 0.0, -1.0]])
    # Rows 0 and 3 are within the look-back; rows 1 and 2 are older.
    recent = np.array([True, False, False, True])
    # Row 0 is similar and recent; row 1 is as similar but older, and no near-repeat; row 2 near-repeats
    # the first event of the day; row 3 is like nothing of the day.
    assert joining(day, earlier, recent, 0.8, 0.95).tolist() == [True, False, True, False]
    assert joining(day, np.empty((0, 3)), np.empty(0, dtype=bool), 0.8, 0.95).tolist() == []


def test_the_evidence_centroid_is_the_unit_mean_direction() -> None:
    centroid = evidence_centroid([np.array([3.0, 0.0]), np.array([0.0, 0.5])])
    assert centroid.dtype == np.float32
    assert np.allclose(centroid, [2**-0.5, 2**-0.5])


def test_budget_keeps_the_most_wanted_items_that_fit() -> None:
    assert within_budget([5, 50, 10, 3], 20) == [0, 2, 3]
    assert within_budget([30], 20) == []
    assert within_budget([], 20) == []


def test_answer_mapping_drops_unknown_labels_and_discards_patterns_without_evidence() -> None:
    labels = {"E1": "event-a", "E2": "event-b"}
    parsed = {
        "patterns": [
            {"title": "Dark mode", "kind": "preference", "description": "Likes dark themes.",
             "confidence": "high", "evidence": ["E1", "E9", "E1"]},
            {"title": "Ghost", "kind": "fact", "description": "Cites no real event.",
             "confidence": "low", "evidence": ["E7"]},
            {"title": "  dark   MODE ", "kind": "preference", "description": "likes dark themes.",
             "confidence": "low", "evidence": ["E2"]},
            {"title": "Odd kind", "kind": "poem", "description": "Not a kind we store.",
             "confidence": "low", "evidence": ["E2"]},
        ]
    }  # fmt: skip
    mapped = map_answer(parsed, labels)

    [draft] = mapped.drafts
    assert (draft.title, draft.kind, draft.confidence) == ("Dark mode", "preference", 0.9)
    assert draft.evidence_ids == ("event-a", "event-b"), "repeats merge their evidence, without duplicates"
    assert mapped.evidence_dropped == 2  # E9 and E7
    assert mapped.discarded == 3  # the ghost, the repeat, the unknown kind
    assert map_answer({"unexpected": 1}, labels).drafts == ()


def test_answer_schema_allows_only_shown_labels_and_bounded_answers() -> None:
    labels = [cluster_prompt.event_label(i) for i in range(3)]
    schema = cluster_prompt.answer_schema(labels, max_patterns=2, title_chars=20, description_chars=40)
    good = {"patterns": [{"title": "Deploys", "kind": "problem-solution", "description": "Fails on locks.",
                          "confidence": "medium", "evidence": ["E1", "E3"]}]}  # fmt: skip
    assert schema_errors(good, schema) == []
    bad = {"patterns": [{**good["patterns"][0], "evidence": ["E4"], "kind": "poem"}] * 3}
    errors = schema_errors(bad, schema)
    assert any("'E4' is not one of" in error for error in errors)
    assert any("'poem' is not one of" in error for error in errors)
    assert any("at most 2 allowed" in error for error in errors)
    loose = cluster_prompt.answer_schema(labels, 1, constrain_evidence=False)
    assert schema_errors({"patterns": [{**good["patterns"][0], "evidence": ["E4"]}]}, loose) == []


def test_prompt_shows_labels_not_ids_and_cuts_long_events() -> None:
    line = cluster_prompt.event_line("E2", "a  very\nlong event " + "x" * 100, max_chars=30)
    assert line.startswith("E2: a very long event") and line.endswith("…") and len(line) == 34
    text = cluster_prompt.build_prompt(["E1: one", line], max_patterns=2)
    assert "E1: one" in text and "at most 2" in text
    assert cluster_prompt.PROMPT_VERSION and set(cluster_prompt.CONFIDENCE_LEVELS.values()) <= {0.3, 0.6, 0.9}


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 21)], 0.95) == 19.0


def _report(day: date, failed: bool) -> DayReport:
    outcomes = (
        ClusterOutcome("a" * 64, members=5, shown=3, trimmed=2, calls=1, patterns=2, discarded=1,
                       evidence_dropped=1),
        ClusterOutcome("b" * 64, members=3, shown=3, trimmed=0, calls=2, patterns=0, discarded=0,
                       evidence_dropped=0, failure="cut off" if failed else None),
    )  # fmt: skip
    reasoning = ReasoningSummary(3, 2, 300, 60, (100.0, 200.0, 300.0), 100.0, (30.0,))
    return DayReport(day, 10, 9, 1, outcomes, DayWrite(2, 1, 1, 0), reasoning, {"clustering": 0.5})


def test_day_report_counts_metadata_and_range_totals() -> None:
    report = _report(date(2026, 11, 2), failed=True)
    counts = report.counts()
    assert counts["clusters"] == 2 and counts["events_clustered"] == 8
    assert (counts["clusters_trimmed"], counts["events_trimmed"], counts["clusters_failed"]) == (1, 2, 1)
    assert (counts["patterns_new"], counts["patterns_reinforced"], counts["events_without_vector"]) == (
        1,
        1,
        1,
    )
    observation = day_observation(dg.AssetKey("consolidated_patterns"), report)
    assert observation.partition == "2026-11-02"
    assert observation.metadata["tokens_per_s"].value == 600.0
    assert observation.metadata["latency_p50_ms"].value == 200.0

    totals = range_metadata([report, _report(date(2026, 11, 3), failed=False)])
    assert totals["clusters_failed"].value == 1 and totals["reasoning_calls"].value == 6
    assert totals["clustering_s"].value == 1.0
    assert range_metadata([])["reasoning_calls"].value == 0
    assert EMPTY_SUMMARY.tokens_per_s == 0.0


def test_a_request_key_changes_with_anything_that_changes_the_answer() -> None:
    base = ("model-sha", "system", "prompt", {"type": "object"}, 200, 0.0, 7)
    assert request_sha256(*base) == request_sha256(*base)
    for position, other in enumerate(("other-model", "other", "prompt 2", {"type": "array"}, 201, 0.3, 8)):
        changed = list(base)
        changed[position] = other
        assert request_sha256(*changed) != request_sha256(*base)


def test_a_near_repeat_on_another_day_is_a_theme_and_on_the_same_day_or_loosely_alike_is_not() -> None:
    ids, vectors = _themes(np.random.default_rng(3), themes=2, per_theme=2, singletons=2)
    monday, tuesday = date(2026, 11, 2), date(2026, 11, 3)
    # t0: noted on two days; t1: twice on one day; singletons on both days.
    days = [monday, monday, tuesday, monday, monday, tuesday]
    clusters = cluster_events(
        ids, vectors, [True] * 6, threshold=0.8, min_size=3, days=days, recurring_threshold=0.8
    )
    assert [cluster.member_ids for cluster in clusters] == [("t0-0", "t0-1")]
    # Without the rule (the default), two events are too few.
    assert cluster_events(ids, vectors, [True] * 6, threshold=0.8, min_size=3) == []
    # A pair alike enough to cluster but below the near-repeat threshold stays alone.
    assert cluster_events(ids, vectors, [True] * 6, 0.8, 3, days=days, recurring_threshold=0.9999) == []
