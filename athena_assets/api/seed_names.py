"""The seed system's names for model-call statistics, beside this project's: `athena metrics --json` and
the seed's `get_all_stats()` carry both, so a consumer written for either finds its fields.

The seed's statistics per kind (an empty dict when a kind saw no call; only the counts when none
succeeded): `total_operations`, `successful`, `failed`, `success_rate`, `avg_latency_ms`,
`min_latency_ms`, `max_latency_ms`, then embedding `total_tokens_processed`, `avg_dimension`; reasoning
`total_prompt_tokens`, `total_output_tokens`, `avg_output_tokens`, `avg_tokens_per_sec`; compression
`avg_compression_ratio` (compressed / original, the seed's sense), `total_tokens_saved`,
`avg_tokens_saved_per_operation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resources.call_metrics import CALL_KINDS, CallKind


def seed_counts(total: int, successful: int) -> dict[str, Any]:
    """The seed's four count fields."""
    return {
        "total_operations": total,
        "successful": successful,
        "failed": total - successful,
        "success_rate": successful / total if total else 0.0,
    }


def seed_summary(stats: Mapping[str, Any], kind: CallKind, dimension: int | None = None) -> dict[str, Any]:
    """The seed's statistics of one kind from this project's summed statistics (`summarize`, or the sum
    of many runs' observations): means of per-call ratios become ratios of sums, and min/max compression
    ratios, which a sum does not keep, are left out. `dimension` is the embedding model's width."""
    total, successful = int(stats.get("total_calls", 0)), int(stats.get("successful_calls", 0))
    if total == 0:
        return {}
    seed = seed_counts(total, successful)
    if successful == 0:
        return seed
    seed |= {key: stats[key] for key in ("avg_latency_ms", "min_latency_ms", "max_latency_ms")}
    if kind == "embedding":
        return seed | {"total_tokens_processed": stats["tokens_processed"], "avg_dimension": dimension or 0}
    if kind == "reasoning":
        return seed | {
            "total_prompt_tokens": stats["tokens_processed"],
            "total_output_tokens": stats["output_tokens"],
            "avg_output_tokens": stats["output_tokens"] / successful,
            "avg_tokens_per_sec": stats["output_tokens_per_second"],
        }
    original, compressed = stats["original_tokens"], stats["compressed_tokens"]
    return seed | {
        "avg_compression_ratio": compressed / original if original else 1.0,
        "total_tokens_saved": stats["tokens_saved"],
        "avg_tokens_saved_per_operation": stats["tokens_saved"] / successful,
    }


def with_seed_names(stats: Mapping[str, Any], dimension: int | None = None) -> dict[str, Any]:
    """`get_all_stats()`-shaped statistics (this project's names) with the seed's names added per kind
    (`seed_summary`), so a consumer of either finds its fields. A name both use keeps this project's
    meaning (latencies over every call, failed ones included; the seed's covered successful calls)."""
    merged: dict[str, Any] = dict(stats)
    for kind in CALL_KINDS:
        ours = stats[kind]
        merged[kind] = {
            **ours,
            **{k: v for k, v in seed_summary(ours, kind, dimension).items() if k not in ours},
        }
    return merged
