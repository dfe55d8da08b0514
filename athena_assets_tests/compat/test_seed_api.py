"""The seed's API (`LocalLLMClient`, `get_monitor()`) with the seed's own usage examples, against the real
stack, and its statistics under the seed's names from hand-computed records."""

from __future__ import annotations

import asyncio
import json
import re

import numpy as np
import pytest

from athena_assets.api.seed_names import seed_summary, with_seed_names
from athena_assets.compat import LocalLLMClient, ModelPerformanceMonitor, get_monitor
from athena_assets.compat.monitor import seed_stats
from athena_assets_tests.helpers import StackHandle
from resources.call_metrics import CALL_KINDS, MetricsCollector, summarize

SEED_KEYS = {
    "embedding": {"total_tokens_processed", "avg_dimension"},
    "reasoning": {"total_prompt_tokens", "total_output_tokens", "avg_output_tokens", "avg_tokens_per_sec"},
    "compression": {
        "avg_compression_ratio", "min_compression_ratio", "max_compression_ratio", "total_tokens_saved",
        "avg_tokens_saved_per_operation",
    },
}  # fmt: skip
COMMON = {"total_operations", "successful", "failed", "success_rate", "avg_latency_ms", "min_latency_ms",
          "max_latency_ms"}  # fmt: skip
BACKUP_EVENTS = [
    "The nightly pg_dump backup of the athena database failed: disk full on /var/backups",
    "Freed space on /var/backups by deleting dumps older than 14 days; the pg_dump backup ran again",
    "pg_dump backup failed again with disk full on /var/backups after a week of growth",
    "Added a cron job that prunes /var/backups before the nightly pg_dump backup runs",
]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9_]{3,}", text.lower()))


@pytest.fixture
def client(stack: StackHandle) -> LocalLLMClient:
    """The seed's client on the session's servers."""
    return LocalLLMClient(
        embedding_url=stack.embeddings_url, reasoning_url=stack.reasoning_url, settings=stack.settings
    )


@pytest.mark.timeout(300)
def test_the_seeds_usage_examples_run_against_the_stack(client: LocalLLMClient) -> None:
    async def examples() -> None:
        before = get_monitor().get_all_stats()
        health = await client.check_health()
        assert health == {"embedding": True, "reasoning": True, "compression": True}

        single = await client.embed("the nightly database backup finished")
        assert single.dimension == len(single.embedding) == 384 and single.latency_ms > 0
        texts = ["the backup of the postgres database completed", "the user prefers British spelling in docs"]
        batch = await client.embed_batch(["the nightly database backup finished", *texts])
        assert [result.dimension for result in batch] == [384] * 3
        vectors = np.array([result.embedding for result in [single, *batch]])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        assert vectors[0] @ vectors[1] > 0.999  # one text, alone or in a batch: the same vector
        assert vectors[1] @ vectors[2] > vectors[1] @ vectors[3] + 0.2  # by meaning

        answer = await client.reason(prompt="Paris is the capital city of", max_tokens=8, temperature=0.0)
        assert "France" in answer.text and 0 < answer.tokens <= 8, answer
        answer = await client.reason(
            prompt="analyze patterns", system="consolidation engine", max_tokens=16, temperature=0.7
        )
        assert answer.text.strip() and 0 < answer.tokens <= 16 and answer.latency_ms > 0

        context = " ".join(BACKUP_EVENTS * 3)
        compressed = await client.compress_prompt(
            context=context, instruction="extract insights", compression_ratio=0.5
        )
        assert compressed.compressed_tokens < compressed.original_tokens
        assert compressed.compression_ratio == pytest.approx(
            compressed.compressed_tokens / compressed.original_tokens
        )
        assert _words(compressed.compressed_prompt) <= _words(context)  # nothing made up

        consolidated = await client.consolidate_with_reasoning("\n".join(f"- {e}" for e in BACKUP_EVENTS))
        patterns = json.loads(consolidated.text)["patterns"]
        assert patterns, consolidated.text
        for pattern in patterns:
            assert pattern["evidence_count"] >= 2 and set(pattern["evidence"]) <= set(BACKUP_EVENTS)
            assert _words(pattern["name"]) & _words(" ".join(pattern["evidence"])), pattern  # grounded
            assert not re.match(r"(?i)^(test|pattern|event)\s*\d", pattern["name"]), pattern

        monitor = get_monitor()
        monitor.record_embedding(latency_ms=85.5, dimension=768, tokens=50)
        stats = monitor.get_all_stats()
        for kind in CALL_KINDS:
            assert set(stats[kind]) == COMMON | SEED_KEYS[kind], kind
        # The client's calls are in the monitor already (4 embedding requests, then the hand-made one).
        grew = stats["embedding"]["total_operations"] - before["embedding"].get("total_operations", 0)
        assert grew >= 5
        assert stats["reasoning"]["total_output_tokens"] > 0
        assert stats["compression"]["total_tokens_saved"] > 0

    asyncio.run(examples())


def test_seed_statistics_follow_the_seeds_formulas() -> None:
    monitor = ModelPerformanceMonitor(collector=MetricsCollector())
    assert monitor.get_all_stats()["embedding"] == {}
    monitor.record_embedding(latency_ms=100, dimension=768, tokens_processed=40)
    monitor.record_embedding(latency_ms=300, dimension=384, tokens_processed=60)
    monitor.record_embedding(latency_ms=50, dimension=768, status="error", error_msg="timeout")
    monitor.record_reasoning(latency_ms=1000, prompt_tokens=100, output_tokens=50, temperature=0.5)
    monitor.record_reasoning(latency_ms=2000, prompt_tokens=200, output_tokens=50, temperature=0.5)
    record = monitor.record_compression(latency_ms=10, original_tokens=100, compressed_tokens=25)
    monitor.record_compression(latency_ms=30, original_tokens=100, compressed_tokens=75)
    assert record.compression_ratio == 0.25 and record.to_dict()["status"] == "success"
    stats = monitor.get_all_stats()
    assert stats["embedding"] == {
        "total_operations": 3, "successful": 2, "failed": 1, "success_rate": 2 / 3,
        "avg_latency_ms": 200.0, "min_latency_ms": 100.0, "max_latency_ms": 300.0,
        "total_tokens_processed": 100, "avg_dimension": 576.0,
    }  # fmt: skip
    assert stats["reasoning"]["avg_tokens_per_sec"] == pytest.approx((50 + 25) / 2)  # mean of per-call rates
    assert stats["reasoning"]["total_prompt_tokens"] == 300 and stats["reasoning"]["avg_output_tokens"] == 50
    assert stats["compression"]["avg_compression_ratio"] == pytest.approx(0.5)  # compressed / original
    assert (stats["compression"]["min_compression_ratio"], stats["compression"]["max_compression_ratio"]) == (
        0.25, 0.75,
    )  # fmt: skip
    assert stats["compression"]["total_tokens_saved"] == 100
    monitor.clear_history()
    assert monitor.get_embedding_stats() == {}


def test_summed_statistics_get_the_seeds_names_without_losing_ours() -> None:
    collector = MetricsCollector()
    collector.record("compression", 10, original_tokens=100, compressed_tokens=25)
    collector.record("compression", 30, original_tokens=100, compressed_tokens=75)
    summary = summarize(collector.records("compression"), "compression")
    seed = seed_summary(summary, "compression")
    assert seed["avg_compression_ratio"] == pytest.approx(0.5) and seed["total_tokens_saved"] == 100
    assert seed_stats(collector.records("compression"), "compression")[
        "avg_compression_ratio"
    ] == pytest.approx(0.5)
    merged = with_seed_names(collector.get_all_stats(), dimension=384)
    assert merged["compression"]["compression_ratio"] == summary["compression_ratio"]  # ours, unchanged
    assert merged["compression"]["total_operations"] == 2
    assert merged["embedding"] == collector.get_all_stats()["embedding"]  # no call: nothing to add
