"""The seed's `get_monitor()`: `ModelPerformanceMonitor` with its `record_*` methods and statistics under
the seed's field names, over this project's `MetricsCollector`.

The seed's statistics per kind (an empty dict when a kind saw no call; only the counts when none
succeeded): `total_operations`, `successful`, `failed`, `success_rate`, `avg_latency_ms`,
`min_latency_ms`, `max_latency_ms`, then embedding `total_tokens_processed`, `avg_dimension`; reasoning
`total_prompt_tokens`, `total_output_tokens`, `avg_output_tokens`, `avg_tokens_per_sec`; compression
`avg_compression_ratio` (compressed / original, the seed's sense), `min_compression_ratio`,
`max_compression_ratio`, `total_tokens_saved`, `avg_tokens_saved_per_operation`. `seed_stats` computes
them from call records exactly as the seed did (`api/seed_names.py` names summed statistics the same way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from athena_assets.api.seed_names import seed_counts
from resources.call_metrics import CALL_KINDS, CallKind, CallRecord, MetricsCollector, model_metrics

SUCCESS = "success"


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class EmbeddingMetrics:
    """One recorded embedding operation (the seed's record)."""

    timestamp: str
    latency_ms: float
    dimension: int
    tokens_processed: int
    status: str
    error_msg: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return asdict(self)


@dataclass
class ReasoningMetrics:
    """One recorded reasoning operation (the seed's record)."""

    timestamp: str
    latency_ms: float
    prompt_tokens: int
    output_tokens: int
    total_tokens: int
    temperature: float
    status: str
    error_msg: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return asdict(self)


@dataclass
class CompressionMetrics:
    """One recorded compression operation (the seed's record)."""

    timestamp: str
    latency_ms: float
    original_tokens: int
    compressed_tokens: int
    compression_ratio: float
    status: str
    error_msg: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return asdict(self)


def seed_stats(records: Sequence[CallRecord], kind: CallKind) -> dict[str, Any]:
    """The seed's statistics of one kind of call, from the call records, with the seed's formulas."""
    if not records:
        return {}
    ok = [record for record in records if record.success]
    stats = seed_counts(len(records), len(ok))
    if not ok:
        return stats
    latencies = [record.latency_ms for record in ok]
    stats |= {
        "avg_latency_ms": sum(latencies) / len(ok),
        "min_latency_ms": min(latencies),
        "max_latency_ms": max(latencies),
    }
    if kind == "embedding":
        return stats | {
            "total_tokens_processed": sum(record.tokens for record in ok),
            "avg_dimension": sum(record.dimension for record in ok) / len(ok),
        }
    if kind == "reasoning":
        rates = [r.output_tokens / r.latency_ms * 1000 if r.latency_ms > 0 else 0.0 for r in ok]
        return stats | {
            "total_prompt_tokens": sum(record.tokens for record in ok),
            "total_output_tokens": sum(record.output_tokens for record in ok),
            "avg_output_tokens": sum(record.output_tokens for record in ok) / len(ok),
            "avg_tokens_per_sec": sum(rates) / len(rates),
        }
    ratios = [r.compressed_tokens / r.original_tokens if r.original_tokens else 1.0 for r in ok]
    saved = sum(record.original_tokens - record.compressed_tokens for record in ok)
    return stats | {
        "avg_compression_ratio": sum(ratios) / len(ratios),
        "min_compression_ratio": min(ratios),
        "max_compression_ratio": max(ratios),
        "total_tokens_saved": saved,
        "avg_tokens_saved_per_operation": saved / len(ok),
    }


class ModelPerformanceMonitor:
    """The seed's monitor: records model operations and summarises them under the seed's names.

    It reads and writes a `MetricsCollector`; `get_monitor()`'s is the process-wide one every resource
    (and so `LocalLLMClient`) records into, so its statistics include those calls without recording
    them again.
    """

    def __init__(self, max_history: int = 1000, collector: MetricsCollector | None = None) -> None:
        self.max_history = max_history
        self.collector = collector if collector is not None else MetricsCollector(max_history)

    def record_embedding(
        self,
        latency_ms: float,
        dimension: int,
        tokens_processed: int = 0,
        status: str = SUCCESS,
        error_msg: str | None = None,
        *,
        tokens: int | None = None,
    ) -> EmbeddingMetrics:
        """Record one embedding operation (`tokens` is accepted for `tokens_processed`, as the seed's own
        usage example wrote it)."""
        processed = tokens_processed if tokens is None else tokens
        self.collector.record(
            "embedding", latency_ms, success=status == SUCCESS, tokens=processed, dimension=dimension
        )
        return EmbeddingMetrics(_now(), latency_ms, dimension, processed, status, error_msg)

    def record_reasoning(
        self,
        latency_ms: float,
        prompt_tokens: int,
        output_tokens: int,
        temperature: float,
        status: str = SUCCESS,
        error_msg: str | None = None,
    ) -> ReasoningMetrics:
        """Record one reasoning operation."""
        self.collector.record(
            "reasoning",
            latency_ms,
            success=status == SUCCESS,
            tokens=prompt_tokens,
            output_tokens=output_tokens,
        )
        return ReasoningMetrics(
            _now(), latency_ms, prompt_tokens, output_tokens, prompt_tokens + output_tokens, temperature,
            status, error_msg,
        )  # fmt: skip

    def record_compression(
        self,
        latency_ms: float,
        original_tokens: int,
        compressed_tokens: int,
        status: str = SUCCESS,
        error_msg: str | None = None,
    ) -> CompressionMetrics:
        """Record one compression operation."""
        self.collector.record(
            "compression",
            latency_ms,
            success=status == SUCCESS,
            original_tokens=original_tokens,
            compressed_tokens=compressed_tokens,
        )
        ratio = compressed_tokens / original_tokens if original_tokens > 0 else 1.0
        return CompressionMetrics(
            _now(), latency_ms, original_tokens, compressed_tokens, ratio, status, error_msg
        )

    def _stats(self, kind: CallKind) -> dict[str, Any]:
        return seed_stats(self.collector.records(kind)[-self.max_history :], kind)

    def get_embedding_stats(self) -> dict[str, Any]:
        """The seed's embedding statistics."""
        return self._stats("embedding")

    def get_reasoning_stats(self) -> dict[str, Any]:
        """The seed's reasoning statistics."""
        return self._stats("reasoning")

    def get_compression_stats(self) -> dict[str, Any]:
        """The seed's compression statistics."""
        return self._stats("compression")

    def get_all_stats(self) -> dict[str, Any]:
        """{"embedding": {...}, "reasoning": {...}, "compression": {...}, "timestamp": ISO-8601}."""
        return {kind: self._stats(kind) for kind in CALL_KINDS} | {"timestamp": _now()}

    def clear_history(self) -> None:
        """Forget every recorded operation."""
        self.collector.reset()


_monitor = ModelPerformanceMonitor(collector=model_metrics)


def get_monitor() -> ModelPerformanceMonitor:
    """The process-wide monitor, over the collector every resource records into."""
    return _monitor
