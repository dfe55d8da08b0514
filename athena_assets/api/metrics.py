"""Metrics: the model calls' statistics over every run, read from the Dagster instance (`athena
metrics`), and the secrets redaction replaced.

Each asset that calls a model logs its run's statistics as an `AssetObservation` written by
`observations.stats_observation`. This module adds those observations up, so the figures survive
restarts and cover every run (the UI's, the CLI's, the sensors'), not one process's memory. The result
has the shape of the seed's `get_all_stats()`.

Counts, token sums, latency sums, min and max add up exactly. The 95th percentile is the nearest rank
over the latency samples the observations carry: exact when no observation had more than
`MAX_LATENCY_SAMPLES` (1,000) calls of a kind, and, since an observation keeps its slowest calls, also
exact for any observations as long as the window holds at most about 20,000 calls (its slowest 5% then fit
in every observation's kept tail); beyond both it is a lower bound. Observations without the exact-sum
fields (hand-made dicts, or written before the fields existed) are left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

import dagster as dg

from athena_assets.api.app import App
from athena_assets.api.instance import open_instance
from athena_assets.api.seed_names import with_seed_names
from resources.call_metrics import (
    CALL_KINDS,
    KIND_KEY,
    LATENCY_SAMPLES_KEY,
    LATENCY_SUM_KEY,
    SUCCESSFUL_LATENCY_SUM_KEY,
    CallKind,
    volume_stats,
)
from resources.memory.records import RedactionSummary, StoreStats
from resources.numeric import nearest_rank

if TYPE_CHECKING:
    import pandas as pd


# Observations per event-log query: a year of daily runs is one or two pages per asset.
PAGE_SIZE = 500


@dataclass(frozen=True)
class ObservedCalls:
    """One kind's calls as one observation recorded them."""

    kind: CallKind
    total: int
    successful: int
    latency_sum_ms: float
    successful_latency_sum_ms: float
    min_latency_ms: float
    max_latency_ms: float
    latency_samples_ms: tuple[float, ...]
    tokens: int
    output_tokens: int
    original_tokens: int
    compressed_tokens: int


def _section(metadata: Mapping[str, dg.MetadataValue], kind: CallKind, prefix: str) -> ObservedCalls | None:
    values = {name[len(prefix) :]: entry.value for name, entry in metadata.items() if name.startswith(prefix)}
    try:
        return ObservedCalls(
            kind=kind,
            total=int(values["total_calls"]),
            successful=int(values["successful_calls"]),
            latency_sum_ms=float(values[LATENCY_SUM_KEY]),
            successful_latency_sum_ms=float(values[SUCCESSFUL_LATENCY_SUM_KEY]),
            min_latency_ms=float(values["min_latency_ms"]),
            max_latency_ms=float(values["max_latency_ms"]),
            latency_samples_ms=tuple(float(sample) for sample in values[LATENCY_SAMPLES_KEY]),
            tokens=int(values["tokens_processed"]),
            # Left out of the observations of kinds for which they are always 0 (observations.py).
            output_tokens=int(values.get("output_tokens", 0)),
            original_tokens=int(values.get("original_tokens", 0)),
            compressed_tokens=int(values.get("compressed_tokens", 0)),
        )
    except (KeyError, TypeError, ValueError):
        # Not written by stats_observation with the exact-sum fields: nothing it says can be added up.
        return None


def observed_calls(metadata: Mapping[str, dg.MetadataValue]) -> list[ObservedCalls]:
    """The calls one observation's metadata records: one kind (`get_stats`) or several (`get_all_stats`)."""
    sections: list[ObservedCalls | None] = []
    kind = metadata.get(KIND_KEY)
    if kind is not None and kind.value in CALL_KINDS:
        sections.append(_section(metadata, kind.value, ""))
    for nested in CALL_KINDS:
        if f"{nested}/{LATENCY_SAMPLES_KEY}" in metadata:
            sections.append(_section(metadata, nested, f"{nested}/"))
    return [section for section in sections if section is not None]


def _p95(calls: Sequence[ObservedCalls], total: int) -> float:
    """Nearest-rank 95th percentile of all calls, from the samples (the slowest ones when bounded)."""
    if total == 0:
        return 0.0
    # The same rank as resources.call_metrics: the ceil(0.95 n)-th smallest is the k-th largest.
    from_top = total - nearest_rank(total, 0.95) + 1
    tail = sorted((sample for call in calls for sample in call.latency_samples_ms), reverse=True)
    if not tail:
        return 0.0
    return tail[min(from_top, len(tail)) - 1]


def combine(calls: Sequence[ObservedCalls]) -> dict[str, float | int]:
    """The statistics of all `calls` (one kind), with the keys and definitions of `metrics.summarize`."""
    total = sum(call.total for call in calls)
    ok = sum(call.successful for call in calls)
    measured = [call for call in calls if call.total > 0]
    ok_seconds = sum(call.successful_latency_sum_ms for call in calls) / 1000
    tokens = sum(call.tokens for call in calls)
    output_tokens = sum(call.output_tokens for call in calls)
    original = sum(call.original_tokens for call in calls)
    compressed = sum(call.compressed_tokens for call in calls)
    return {
        "total_calls": total,
        "successful_calls": ok,
        "failed_calls": total - ok,
        "success_rate": ok / total if total else 0.0,
        "avg_latency_ms": sum(call.latency_sum_ms for call in calls) / total if total else 0.0,
        "min_latency_ms": min((call.min_latency_ms for call in measured), default=0.0),
        "max_latency_ms": max((call.max_latency_ms for call in measured), default=0.0),
        "p95_latency_ms": _p95(calls, total),
        **volume_stats(tokens, output_tokens, ok_seconds, original, compressed),
    }


def since_timestamp(since: date) -> float:
    """The POSIX time `since` starts, in UTC (the partitions' days are UTC days too)."""
    return datetime.combine(since, time.min, tzinfo=UTC).timestamp()


def _observations(
    instance: dg.DagsterInstance, key: dg.AssetKey, after: float | None
) -> Iterator[dg.AssetObservation]:
    records_filter = dg.AssetRecordsFilter(asset_key=key, after_timestamp=after)
    cursor = None
    while True:
        page = instance.fetch_observations(records_filter, limit=PAGE_SIZE, cursor=cursor, ascending=True)
        for record in page.records:
            if record.asset_observation is not None:
                yield record.asset_observation
        if not page.has_more:
            return
        cursor = page.cursor


def all_stats(
    instance: dg.DagsterInstance, since: date | None = None
) -> dict[str, dict[str, float | int] | str]:
    """{"embedding": {...}, "reasoning": {...}, "compression": {...}, "timestamp": ISO-8601 UTC}.

    Every model-call observation in `instance` (of any asset, any run) from the start of `since` (UTC)
    on, or all of them without `since`; each kind's figures as `metrics.summarize` defines them.
    """
    # The storage filter is "strictly after"; a microsecond earlier includes an event at 00:00:00 itself.
    after = since_timestamp(since) - 1e-6 if since is not None else None
    calls: dict[CallKind, list[ObservedCalls]] = {kind: [] for kind in CALL_KINDS}
    for key in instance.get_asset_keys():
        for observation in _observations(instance, key, after):
            for section in observed_calls(observation.metadata):
                calls[section.kind].append(section)
    stats: dict[str, dict[str, float | int] | str] = {kind: combine(calls[kind]) for kind in CALL_KINDS}
    stats["timestamp"] = datetime.now(UTC).isoformat()
    return stats


def stats_frame(stats: Mapping[str, Mapping[str, float | int] | str]) -> pd.DataFrame:
    """`all_stats` as a table for notebooks and `athena metrics --csv`: one row per call kind (the
    index, `kind`), one column per figure."""
    import pandas as pd  # here: every `athena` command imports this module, few need pandas (0.4 s)

    rows = {kind: dict(stats[kind]) for kind in CALL_KINDS if not isinstance(stats[kind], str)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("kind")


def format_stats(stats: Mapping[str, Mapping[str, float | int] | str]) -> str:
    """`all_stats` as the table `athena metrics` prints: one line per kind."""
    header = (
        f"{'kind':<12} {'calls':>7} {'failed':>6} {'success':>8} {'avg ms':>9} {'p95 ms':>9} "
        f"{'max ms':>9} {'tokens':>9} {'tokens/s':>9} {'ratio':>6} {'saved':>8}"
    )
    lines = [header]
    for kind in CALL_KINDS:
        row = stats[kind]
        if isinstance(row, str):
            raise TypeError(f"stats[{kind!r}] is text; expected the statistics all_stats returns")
        lines.append(
            f"{kind:<12} {row['total_calls']:>7} {row['failed_calls']:>6} {row['success_rate']:>8.1%} "
            f"{row['avg_latency_ms']:>9.1f} {row['p95_latency_ms']:>9.1f} {row['max_latency_ms']:>9.1f} "
            f"{row['tokens_processed']:>9} {row['tokens_per_second']:>9.1f} "
            f"{row['compression_ratio']:>6.2f} {row['tokens_saved']:>8}"
        )
    lines.append(f"as of {stats['timestamp']}")
    return "\n".join(lines)


@dataclass(frozen=True)
class MetricsReport:
    """`all_stats` from `since` on, the redactions of the events stored since, and the embedding width
    (the seed's `avg_dimension`)."""

    stats: dict[str, dict[str, float | int] | str]
    redactions: RedactionSummary
    embedding_dim: int

    def to_json(self) -> dict[str, Any]:
        """The `get_all_stats()` shape with the seed's field names too, and the redactions."""
        return with_seed_names(self.stats, self.embedding_dim) | {"redactions": asdict(self.redactions)}


def store_stats(app: App) -> StoreStats:
    """Row counts of the memory: events, vectors, dead letters, and the days with events."""
    return app.resources.memory.stats()


def metrics(app: App, since: date | None = None) -> MetricsReport:
    """The model calls of every run, and the redactions, from the start of `since` (UTC) on."""
    with open_instance(app.settings) as instance:
        stats = all_stats(instance, since)
    redactions = app.resources.memory.redactions(since)
    dimension = app.settings.embedding_dim or app.model("embedding").embedding_dim or 0
    return MetricsReport(stats, redactions, dimension)
