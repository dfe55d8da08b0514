"""Per-call metrics of the model resources: latency, tokens and outcome of every embedding, reasoning
and compression call, summarised per kind the way the seed's `model_metrics` did.

`MetricsCollector` is thread-safe (embedding batches record from worker threads). `model_metrics` is
the process-wide collector every resource records into by default, so one `get_all_stats()` covers the
whole run; `athena_assets.defs.observability.observations.stats_observation` turns a summary into the
`dg.AssetObservation` an asset logs.

The observation format is what `athena metrics` adds up across runs
(athena_assets/api/metrics.py), so besides the statistics the UI plots it carries what an
exact sum needs: the call kind (`metrics_kind`), the summed latencies of all and of the successful
calls, and the latency samples (`latency_samples_ms`, JSON). The samples are bounded to
`MAX_LATENCY_SAMPLES` per kind and observation: all of them up to that many calls, beyond it the slowest
ones, which is the tail a 95th percentile needs. Log one observation per collector and run (a
collector's calls counted twice are counted twice).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from resources.numeric import percentile

CallKind = Literal["embedding", "reasoning", "compression"]
CALL_KINDS: tuple[CallKind, ...] = ("embedding", "reasoning", "compression")
DEFAULT_MAX_RECORDS = 100_000
# Bounds an observation's size (about 10 kB of JSON): enough for an exact p95 over ~20,000 calls.
MAX_LATENCY_SAMPLES = 1_000
KIND_KEY = "metrics_kind"
LATENCY_SUM_KEY = "latency_sum_ms"
SUCCESSFUL_LATENCY_SUM_KEY = "successful_latency_sum_ms"
LATENCY_SAMPLES_KEY = "latency_samples_ms"


@dataclass(frozen=True)
class CallRecord:
    """One model call as measured by the client that made it."""

    kind: CallKind
    latency_ms: float
    success: bool
    tokens: int = 0
    output_tokens: int = 0
    original_tokens: int = 0
    compressed_tokens: int = 0
    timestamp: float = 0.0
    dimension: int = 0  # an embedding's width (the seed's avg_dimension)


class CallStats(dict[str, float | int]):
    """`summarize`'s result: a plain dict of statistics (the seed's shape, what callers index and print)
    that also keeps, as attributes, what adding statistics up exactly needs.

    A dict subclass rather than a new type, so every existing caller keeps working and
    `stats_observation(key, collector.get_stats(kind))` records the exact-sum fields without any change.
    """

    def __init__(
        self,
        values: Mapping[str, float | int],
        *,
        kind: CallKind | None,
        latencies_ms: Sequence[float],
        successful_latency_sum_ms: float,
    ) -> None:
        super().__init__(values)
        self.kind = kind
        self.latencies_ms: tuple[float, ...] = tuple(sorted(latencies_ms))
        self.latency_sum_ms = float(sum(self.latencies_ms))
        self.successful_latency_sum_ms = float(successful_latency_sum_ms)


def volume_stats(
    tokens: int, output_tokens: int, ok_seconds: float, original: int, compressed: int
) -> dict[str, float | int]:
    """The token and compression figures of the seed's statistics, from their sums: what a summary of
    calls and a sum of observations compute the same way."""
    return {
        "tokens_processed": tokens,
        "output_tokens": output_tokens,
        "tokens_per_second": tokens / ok_seconds if ok_seconds > 0 else 0.0,
        "output_tokens_per_second": output_tokens / ok_seconds if ok_seconds > 0 else 0.0,
        "original_tokens": original,
        "compressed_tokens": compressed,
        "compression_ratio": original / compressed if compressed else 0.0,
        "tokens_saved": original - compressed,
    }


def summarize(records: Sequence[CallRecord], kind: CallKind | None = None) -> CallStats:
    """The statistics of `records` (all of one kind); every key is present, zero when nothing applies.

    Latencies cover every call, failed ones included (a slow failure is still a slow call). Token counts,
    throughput and compression figures cover successful calls only. `tokens_per_second` divides the
    tokens processed by the summed latency of the successful calls; `output_tokens_per_second` does the
    same for generated tokens (reasoning). `compression_ratio` is original / compressed tokens (3.0 means
    the prompt shrank to a third) and `tokens_saved` is original - compressed.
    """
    total = len(records)
    ok = [record for record in records if record.success]
    latencies = sorted(record.latency_ms for record in records)
    ok_latency_ms = sum(record.latency_ms for record in ok)
    ok_seconds = ok_latency_ms / 1000
    tokens = sum(record.tokens for record in ok)
    output_tokens = sum(record.output_tokens for record in ok)
    original = sum(record.original_tokens for record in ok)
    compressed = sum(record.compressed_tokens for record in ok)
    values = {
        "total_calls": total,
        "successful_calls": len(ok),
        "failed_calls": total - len(ok),
        "success_rate": len(ok) / total if total else 0.0,
        "avg_latency_ms": sum(latencies) / total if total else 0.0,
        "min_latency_ms": latencies[0] if latencies else 0.0,
        "max_latency_ms": latencies[-1] if latencies else 0.0,
        "p95_latency_ms": percentile(latencies, 0.95),
        **volume_stats(tokens, output_tokens, ok_seconds, original, compressed),
    }
    return CallStats(
        values,
        kind=kind or (records[0].kind if records else None),
        latencies_ms=latencies,
        successful_latency_sum_ms=ok_latency_ms,
    )


class MetricsCollector:
    """Thread-safe store of `CallRecord`s with per-kind statistics.

    It keeps the most recent `max_records` calls (a bounded memory footprint for long-lived processes);
    the statistics describe those calls.
    """

    def __init__(self, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self._records: deque[CallRecord] = deque(maxlen=max_records)
        self._lock = threading.Lock()

    def record(
        self,
        kind: CallKind,
        latency_ms: float,
        *,
        success: bool = True,
        tokens: int = 0,
        output_tokens: int = 0,
        original_tokens: int = 0,
        compressed_tokens: int = 0,
        dimension: int = 0,
    ) -> CallRecord:
        """Record one call; returns the stored record."""
        if kind not in CALL_KINDS:
            raise ValueError(f"unknown call kind {kind!r}; expected one of {', '.join(CALL_KINDS)}")
        entry = CallRecord(
            kind=kind,
            latency_ms=float(latency_ms),
            success=success,
            tokens=tokens,
            output_tokens=output_tokens,
            original_tokens=original_tokens,
            compressed_tokens=compressed_tokens,
            timestamp=time.time(),
            dimension=dimension,
        )
        with self._lock:
            self._records.append(entry)
        return entry

    def records(self, kind: CallKind | None = None) -> list[CallRecord]:
        """A copy of the stored records, optionally of one kind only."""
        with self._lock:
            snapshot = list(self._records)
        return [record for record in snapshot if kind is None or record.kind == kind]

    def get_stats(self, kind: CallKind) -> CallStats:
        """The statistics of one kind of call (see `summarize` for the definitions)."""
        return summarize(self.records(kind), kind)

    def get_all_stats(self) -> dict[str, dict[str, float | int] | str]:
        """{"embedding": {...}, "reasoning": {...}, "compression": {...}, "timestamp": ISO-8601 UTC}."""
        snapshot = self.records()
        stats: dict[str, dict[str, float | int] | str] = {
            kind: summarize([record for record in snapshot if record.kind == kind], kind)
            for kind in CALL_KINDS
        }
        stats["timestamp"] = datetime.now(UTC).isoformat()
        return stats

    def reset(self) -> None:
        """Forget every record (e.g. between benchmark phases)."""
        with self._lock:
            self._records.clear()


model_metrics = MetricsCollector()
"""The process-wide collector the llama.cpp resources (and the compressor) record into by default."""
