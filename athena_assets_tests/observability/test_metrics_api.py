"""`athena metrics`: model-call observations added up exactly, from the Dagster instance's event log.

Tier (b): observations built from known calls add up to the statistics of all those calls together.
Tier (c): a materialisation leaves its observation in the instance, and `athena metrics --json` equals
statistics worked out here by hand from the raw observation events of every run.
"""

from __future__ import annotations

import io
import json
import math
import random
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from athena_assets.api.metrics import (
    all_stats,
    combine,
    format_stats,
    observed_calls,
    stats_frame,
)
from athena_assets.defs.observability.observations import stats_observation
from athena_assets_tests.helpers import StackHandle, embed_day, run_athena
from resources.call_metrics import (
    CALL_KINDS,
    MAX_LATENCY_SAMPLES,
    CallKind,
    MetricsCollector,
    summarize,
)

DAY = date(2026, 10, 12)


def _collector(kind: CallKind, latencies: list[int], seed: int) -> MetricsCollector:
    """Calls with whole-millisecond latencies (stored exactly), some failed, with token counts."""
    rng = random.Random(seed)
    collector = MetricsCollector()
    for latency in latencies:
        original = rng.randint(100, 1000) if kind == "compression" else 0
        collector.record(
            kind,
            float(latency),
            success=rng.random() > 0.1,
            tokens=rng.randint(1, 300),
            output_tokens=rng.randint(0, 50) if kind == "reasoning" else 0,
            original_tokens=original,
            compressed_tokens=original // 3,
        )
    return collector


def _combined(observations: list[dg.AssetObservation]) -> dict[str, dict[str, float | int]]:
    sections = [section for observation in observations for section in observed_calls(observation.metadata)]
    return {kind: combine([s for s in sections if s.kind == kind]) for kind in CALL_KINDS}


def test_observations_add_up_to_the_statistics_of_all_their_calls() -> None:
    rng = random.Random(7)
    # One observation beyond the sample bound (its slowest 1,000 are kept), several small ones.
    sizes = [2500, 40, 1, 700, 300]
    collectors = [
        _collector("embedding", [rng.randint(1, 5000) for _ in range(size)], seed)
        for seed, size in enumerate(sizes)
    ]
    collectors.append(_collector("reasoning", [rng.randint(100, 9000) for _ in range(60)], 11))
    collectors.append(_collector("compression", [rng.randint(5, 80) for _ in range(30)], 12))
    observations = [stats_observation("some_asset", c.get_stats(c.records()[0].kind)) for c in collectors]

    combined = _combined(observations)

    everything = [record for collector in collectors for record in collector.records()]
    for kind in CALL_KINDS:
        expected = summarize([record for record in everything if record.kind == kind])
        assert combined[kind] == pytest.approx(dict(expected), rel=1e-9), kind
    assert combined["embedding"]["total_calls"] == sum(sizes)


def test_an_observation_keeps_its_slowest_calls_within_the_bound() -> None:
    collector = _collector("embedding", list(range(1, 1501)), seed=3)
    observation = stats_observation("some_asset", collector.get_stats("embedding"))
    [section] = observed_calls(observation.metadata)
    assert len(section.latency_samples_ms) == MAX_LATENCY_SAMPLES
    assert section.latency_samples_ms == tuple(float(ms) for ms in range(501, 1501))
    assert (section.total, section.min_latency_ms, section.max_latency_ms) == (1500, 1.0, 1500.0)


def test_all_stats_dicts_and_hand_made_dicts() -> None:
    collector = _collector("reasoning", [10, 20, 30], seed=1)
    collector.record("compression", 5.0, original_tokens=90, compressed_tokens=30)
    nested = observed_calls(stats_observation("a", collector.get_all_stats()).metadata)
    assert sorted((s.kind, s.total) for s in nested) == [
        ("compression", 1),
        ("embedding", 0),
        ("reasoning", 3),
    ]
    # Without the exact-sum fields nothing can be added up: such an observation is left out.
    assert observed_calls(stats_observation("a", dict(collector.get_stats("reasoning"))).metadata) == []
    table = format_stats(
        _combined([stats_observation("a", collector.get_all_stats())]) | {"timestamp": "now"}
    )
    assert table.splitlines()[2].split()[:2] == ["reasoning", "3"]
    frame = stats_frame(_combined([stats_observation("a", collector.get_all_stats())]) | {"timestamp": "now"})
    assert frame.loc["reasoning", "total_calls"] == 3 and frame.loc["compression", "tokens_saved"] == 60


# Tier (c): the real stack.


def _by_hand(instance: dg.DagsterInstance, since: date | None) -> dict[str, dict[str, float | int]]:
    """The statistics from every run's raw observation events, computed here without metrics_api."""
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC).timestamp() if since else -math.inf
    sections: dict[str, list[dict[str, object]]] = {kind: [] for kind in CALL_KINDS}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION):
            if entry.timestamp < start or entry.asset_observation is None:
                continue
            values = {name: item.value for name, item in entry.asset_observation.metadata.items()}
            if "metrics_kind" in values:
                sections[str(values["metrics_kind"])].append(values)
            for kind in CALL_KINDS:
                prefix = f"{kind}/"
                if f"{prefix}latency_samples_ms" in values:
                    sections[kind].append(
                        {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
                    )
    stats = {}
    for kind, found in sections.items():
        samples = sorted(float(ms) for section in found for ms in section["latency_samples_ms"])  # type: ignore[union-attr]
        total = sum(int(section["total_calls"]) for section in found)  # type: ignore[arg-type]
        assert len(samples) == total, "every observation of the session keeps all its samples"
        ok = sum(int(section["successful_calls"]) for section in found)  # type: ignore[arg-type]
        ok_s = sum(float(section["successful_latency_sum_ms"]) for section in found) / 1000  # type: ignore[arg-type]

        def total_of(name: str, found: list[dict[str, object]] = found) -> int:
            # A figure that is always 0 for a kind is not in its observations.
            return sum(int(section.get(name, 0)) for section in found)  # type: ignore[arg-type]

        tokens, original, compressed = (
            total_of("tokens_processed"),
            total_of("original_tokens"),
            total_of("compressed_tokens"),
        )
        stats[kind] = {
            "total_calls": total,
            "successful_calls": ok,
            "failed_calls": total - ok,
            "success_rate": ok / total if total else 0.0,
            "avg_latency_ms": sum(samples) / total if total else 0.0,
            "min_latency_ms": samples[0] if samples else 0.0,
            "max_latency_ms": samples[-1] if samples else 0.0,
            "p95_latency_ms": samples[math.ceil(0.95 * total) - 1] if samples else 0.0,
            "tokens_processed": tokens,
            "output_tokens": total_of("output_tokens"),
            "tokens_per_second": tokens / ok_s if ok_s else 0.0,
            "output_tokens_per_second": total_of("output_tokens") / ok_s if ok_s else 0.0,
            "original_tokens": original,
            "compressed_tokens": compressed,
            "compression_ratio": original / compressed if compressed else 0.0,
            "tokens_saved": original - compressed,
        }
    return stats


@pytest.fixture(scope="module")
def embedded_run(stack: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> dg.ExecuteInProcessResult:
    """One small partition of events and embeddings, into a private schema of the stack's database."""
    tmp = tmp_path_factory.mktemp("metrics-api")
    resources = stack.private_resources(tmp)
    rows = [
        {
            "id": f"m{i}",
            "occurred_at": f"{DAY}T0{i}:00:00Z",
            "content": f"metrics event {i}: pytest timed out",
        }
        for i in range(5)
    ]
    return embed_day(stack, resources, rows, str(DAY), tmp)


@pytest.mark.timeout(300)
def test_a_materialisation_leaves_its_model_call_observation_in_the_instance(
    stack: StackHandle, embedded_run: dg.ExecuteInProcessResult
) -> None:
    [entry] = [
        entry
        for entry in stack.instance.all_logs(
            embedded_run.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION
        )
        if entry.asset_observation is not None
        and entry.asset_observation.asset_key == dg.AssetKey("event_embeddings")
    ]
    metadata = entry.asset_observation.metadata  # type: ignore[union-attr]
    assert metadata["metrics_kind"].value == "embedding"
    assert metadata["total_calls"].value >= 1
    assert metadata["successful_calls"].value == metadata["total_calls"].value
    assert len(metadata["latency_samples_ms"].value) == metadata["total_calls"].value  # type: ignore[arg-type]
    assert metadata["tokens_processed"].value > 0
    assert metadata["p95_latency_ms"].value >= metadata["avg_latency_ms"].value * 0.5


@pytest.mark.timeout(300)
def test_athena_metrics_json_equals_the_statistics_of_the_raw_events(
    stack: StackHandle, embedded_run: dg.ExecuteInProcessResult
) -> None:
    today = datetime.now(UTC).date()
    for args, since in ((), None), (("--since", today.isoformat()), today):
        completed = run_athena(stack, "metrics", "--json", *args)
        assert completed.returncode == 0, completed.stderr
        reported = json.loads(completed.stdout)
        assert set(reported) == {*CALL_KINDS, "timestamp", "redactions"}
        assert set(reported.pop("redactions")) == {"events", "placeholders"}
        datetime.fromisoformat(reported.pop("timestamp"))
        expected = _by_hand(stack.instance, since)
        assert reported["embedding"]["total_calls"] > 0
        for kind in CALL_KINDS:
            # Stored figures have three decimals: a sum of rounded samples and a rounded sum may differ
            # in the last one. The seed's names come on top (athena_assets/api/seed_names.py).
            ours = {name: value for name, value in reported[kind].items() if name in expected[kind]}
            assert ours == pytest.approx(expected[kind], rel=1e-9, abs=1e-3), kind
        embedding = reported["embedding"]
        assert embedding["total_operations"] == embedding["total_calls"] and embedding["avg_dimension"] == 384
        assert embedding["total_tokens_processed"] == embedding["tokens_processed"]

    table = run_athena(stack, "metrics", "--csv")
    assert table.returncode == 0, table.stderr
    frame = pd.read_csv(io.StringIO(table.stdout), index_col="kind")
    assert list(frame.index) == list(CALL_KINDS)
    # The table covers all time, as the first JSON above did (compared with `since` from the loop, it
    # failed whenever the session's observations began before midnight).
    everything = _by_hand(stack.instance, None)
    assert frame.loc["embedding", "total_calls"] == everything["embedding"]["total_calls"]
    assert frame.loc["embedding", "tokens_processed"] == everything["embedding"]["tokens_processed"]

    later = all_stats(stack.instance, since=today + timedelta(days=1))
    assert all(later[kind]["total_calls"] == 0 for kind in CALL_KINDS)  # type: ignore[index]


def test_each_kind_observes_only_the_figures_that_mean_something_for_it() -> None:
    collector = _collector("embedding", [10, 20], seed=2)
    embedding = stats_observation("a", collector.get_stats("embedding")).metadata
    assert "compression_ratio" not in embedding and "output_tokens_per_second" not in embedding
    assert {"avg_latency_ms", "tokens_per_second", "tokens_processed"} <= set(embedding)
    collector.record("compression", 5.0, original_tokens=90, compressed_tokens=30)
    nested = stats_observation("a", collector.get_all_stats()).metadata
    assert "compression/compression_ratio" in nested and "compression/output_tokens" not in nested
    assert "embedding/tokens_saved" not in nested
    # What is left out adds up as zero: the statistics are the same as before.
    assert combine(observed_calls(embedding)) == pytest.approx(dict(collector.get_stats("embedding")))
