"""Tier (b): the metrics collector's statistics, against values worked out by hand."""

from __future__ import annotations

import threading

import dagster as dg
import pytest

from athena_assets.defs.observability.observations import stats_observation
from resources.call_metrics import MetricsCollector


def test_embedding_statistics_of_a_known_sequence_are_exact():
    collector = MetricsCollector()
    for latency, tokens in [(10.0, 100), (20.0, 200), (30.0, 300)]:
        collector.record("embedding", latency, tokens=tokens)
    collector.record("embedding", 40.0, success=False)

    stats = collector.get_stats("embedding")

    # 4 calls, 1 failed; latencies 10, 20, 30, 40 ms (all calls); 600 tokens in 10+20+30 = 60 ms.
    assert stats["total_calls"] == 4
    assert stats["successful_calls"] == 3
    assert stats["failed_calls"] == 1
    assert stats["success_rate"] == pytest.approx(0.75)
    assert stats["avg_latency_ms"] == pytest.approx(25.0)
    assert stats["min_latency_ms"] == pytest.approx(10.0)
    assert stats["max_latency_ms"] == pytest.approx(40.0)
    # Nearest rank: ceil(0.95 * 4) = 4th smallest.
    assert stats["p95_latency_ms"] == pytest.approx(40.0)
    assert stats["tokens_processed"] == 600
    assert stats["tokens_per_second"] == pytest.approx(10_000.0)


def test_p95_is_the_nearest_rank():
    collector = MetricsCollector()
    for latency in reversed(range(1, 21)):  # 20 calls of 20, 19, ..., 1 ms, recorded out of order
        collector.record("embedding", float(latency))
    # ceil(0.95 * 20) = 19th smallest of 1..20.
    assert collector.get_stats("embedding")["p95_latency_ms"] == pytest.approx(19.0)

    single = MetricsCollector()
    single.record("embedding", 7.5)
    assert single.get_stats("embedding")["p95_latency_ms"] == pytest.approx(7.5)


def test_reasoning_and_compression_statistics():
    collector = MetricsCollector()
    collector.record("reasoning", 1000.0, tokens=150, output_tokens=50)
    collector.record("reasoning", 500.0, tokens=100, output_tokens=20)
    collector.record("compression", 40.0, original_tokens=1000, compressed_tokens=250)
    collector.record("compression", 60.0, original_tokens=500, compressed_tokens=250)

    reasoning = collector.get_stats("reasoning")
    assert reasoning["tokens_processed"] == 250
    assert reasoning["output_tokens"] == 70
    assert reasoning["tokens_per_second"] == pytest.approx(250 / 1.5)
    assert reasoning["output_tokens_per_second"] == pytest.approx(70 / 1.5)
    assert reasoning["avg_latency_ms"] == pytest.approx(750.0)

    compression = collector.get_stats("compression")
    assert compression["original_tokens"] == 1500
    assert compression["compressed_tokens"] == 500
    assert compression["compression_ratio"] == pytest.approx(3.0)
    assert compression["tokens_saved"] == 1000
    assert compression["p95_latency_ms"] == pytest.approx(60.0)


def test_all_stats_has_every_kind_and_a_timestamp_and_empty_kinds_are_zero():
    collector = MetricsCollector()
    collector.record("embedding", 5.0, tokens=10)
    stats = collector.get_all_stats()

    assert set(stats) == {"embedding", "reasoning", "compression", "timestamp"}
    assert isinstance(stats["timestamp"], str) and "T" in stats["timestamp"]
    empty = stats["reasoning"]
    assert isinstance(empty, dict)
    assert empty["total_calls"] == 0
    assert empty["success_rate"] == 0.0
    assert empty["p95_latency_ms"] == 0.0
    assert empty["tokens_per_second"] == 0.0


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown call kind"):
        MetricsCollector().record("translation", 1.0)  # type: ignore[arg-type]


def test_recording_from_many_threads_loses_nothing():
    collector = MetricsCollector()

    def work() -> None:
        for _ in range(1000):
            collector.record("embedding", 1.0, tokens=2)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = collector.get_stats("embedding")
    assert stats["total_calls"] == 8000
    assert stats["tokens_processed"] == 16_000


def test_stats_observation_carries_numeric_metadata():
    collector = MetricsCollector()
    collector.record("embedding", 10.0, tokens=100)
    collector.record("embedding", 30.0, tokens=50)

    observation = stats_observation(
        "event_embeddings", collector.get_stats("embedding"), partition="2026-01-02"
    )

    assert observation.asset_key == dg.AssetKey("event_embeddings")
    assert observation.partition == "2026-01-02"
    assert observation.metadata["total_calls"] == dg.MetadataValue.int(2)
    assert observation.metadata["tokens_processed"] == dg.MetadataValue.int(150)
    assert observation.metadata["avg_latency_ms"] == dg.MetadataValue.float(20.0)

    everything = stats_observation(["memory", "models"], collector.get_all_stats())
    assert everything.asset_key == dg.AssetKey(["memory", "models"])
    assert everything.metadata["embedding/total_calls"] == dg.MetadataValue.int(2)
    assert everything.metadata["reasoning/total_calls"] == dg.MetadataValue.int(0)
    assert "timestamp" in everything.metadata
