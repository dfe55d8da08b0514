"""Writing metric observations: a `MetricsCollector` summary as the `dg.AssetObservation` an asset logs.

The UI plots an observation's numbers under the asset's Plots tab; `athena metrics` (`metrics.py` beside
this module) adds the observations of every run up, from the exact-sum fields written here. Each kind
carries only the figures that mean something for it (an embedding has no compression ratio, a
compression no generated tokens), so the Plots tab shows no flat lines of zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import dagster as dg

from resources.call_metrics import (
    CALL_KINDS,
    KIND_KEY,
    LATENCY_SAMPLES_KEY,
    LATENCY_SUM_KEY,
    MAX_LATENCY_SAMPLES,
    SUCCESSFUL_LATENCY_SUM_KEY,
    CallStats,
)

_GENERATION = frozenset({"output_tokens", "output_tokens_per_second"})
_COMPRESSION = frozenset({"original_tokens", "compressed_tokens", "compression_ratio", "tokens_saved"})
# Figures that are always zero for a kind: left out of its observations (`metrics.py` reads them as 0).
NOT_APPLICABLE: dict[str, frozenset[str]] = {
    "embedding": _GENERATION | _COMPRESSION,
    "reasoning": _COMPRESSION,
    "compression": _GENERATION,
}


def _metadata_value(value: object) -> dg.MetadataValue | None:
    # bool is an int subclass; a flag is not a metric, so it is left out rather than charted as 0/1.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(_stored(value))
    return None


def _stored(value: float) -> float:
    """A float as observations store it: three decimals (a microsecond for latencies), finite."""
    return round(value, 3) if math.isfinite(value) else 0.0


def _exact_sum_metadata(stats: CallStats, prefix: str) -> dict[str, dg.MetadataValue]:
    """The fields `athena metrics` needs to add `stats` to other observations' exactly."""
    # The slowest calls, because the 95th percentile of many observations lives in their tails.
    samples = stats.latencies_ms[-MAX_LATENCY_SAMPLES:]
    successful_sum = _stored(stats.successful_latency_sum_ms)
    return {
        f"{prefix}{LATENCY_SUM_KEY}": dg.MetadataValue.float(_stored(stats.latency_sum_ms)),
        f"{prefix}{SUCCESSFUL_LATENCY_SUM_KEY}": dg.MetadataValue.float(successful_sum),
        f"{prefix}{LATENCY_SAMPLES_KEY}": dg.MetadataValue.json([_stored(sample) for sample in samples]),
    }


def stats_observation(
    asset_key: str | Sequence[str] | dg.AssetKey,
    stats: Mapping[str, object],
    partition: str | None = None,
) -> dg.AssetObservation:
    """An observation of `asset_key` carrying `stats` as numeric metadata.

    `stats` is either one kind's statistics (`get_stats`) or the whole `get_all_stats()` dict, whose
    nested kinds become keys such as `embedding/avg_latency_ms` (the timestamp becomes text metadata).
    Use it as `context.log_event(stats_observation(context.asset_key, collector.get_stats("embedding")))`.
    Statistics from `summarize`, `get_stats` or `get_all_stats` also carry the fields that let
    `athena metrics` add observations up exactly (see the module docstring); a hand-made dict does not,
    and `athena metrics` leaves it out.
    """
    key = asset_key if isinstance(asset_key, dg.AssetKey) else dg.AssetKey(asset_key)
    metadata: dict[str, dg.MetadataValue] = {}
    single_kind = stats.kind if isinstance(stats, CallStats) else None
    for name, value in stats.items():
        if single_kind is not None and name in NOT_APPLICABLE.get(single_kind, ()):
            continue
        if isinstance(value, Mapping):
            skipped = NOT_APPLICABLE.get(name, frozenset()) if name in CALL_KINDS else frozenset()
            for inner_name, inner_value in value.items():
                if inner_name in skipped:
                    continue
                converted = _metadata_value(inner_value)
                if converted is not None:
                    metadata[f"{name}/{inner_name}"] = converted
            if isinstance(value, CallStats):
                metadata |= _exact_sum_metadata(value, f"{name}/")
        elif isinstance(value, str):
            metadata[name] = dg.MetadataValue.text(value)
        else:
            converted = _metadata_value(value)
            if converted is not None:
                metadata[name] = converted
    if isinstance(stats, CallStats) and stats.kind is not None:
        metadata[KIND_KEY] = dg.MetadataValue.text(stats.kind)
        metadata |= _exact_sum_metadata(stats, "")
    return dg.AssetObservation(asset_key=key, metadata=metadata, partition=partition)
