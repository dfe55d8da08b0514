"""How what a consolidation did (`knowledge/day_report.py`) becomes Dagster metadata.

A range run (a backfill) consolidates many days: each day is logged as an observation of its own
partition, and the materialisation carries the totals (`range_metadata`).
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from athena_assets.defs.observability.observations import stats_observation
from athena_assets.knowledge.cluster_prompt import PROMPT_VERSION
from athena_assets.knowledge.day_report import EMPTY_SUMMARY, DayReport, ReasoningSummary
from resources.memory.pattern_records import PatternRecord
from resources.numeric import percentile


def _metadata(
    counts: Mapping[str, int], reasoning: ReasoningSummary, seconds: Mapping[str, float]
) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        name: dg.MetadataValue.int(value) for name, value in counts.items()
    }
    metadata |= {
        "reasoning_calls": dg.MetadataValue.int(reasoning.calls),
        "reasoning_failed_calls": dg.MetadataValue.int(reasoning.failed_calls),
        "prompt_tokens": dg.MetadataValue.int(reasoning.prompt_tokens),
        "output_tokens": dg.MetadataValue.int(reasoning.output_tokens),
        "tokens_per_s": dg.MetadataValue.float(round(reasoning.tokens_per_s, 2)),
        "generation_tokens_per_s": dg.MetadataValue.float(round(reasoning.generation_tokens_per_s, 2)),
        "latency_p50_ms": dg.MetadataValue.float(round(percentile(reasoning.latencies_ms, 0.5), 1)),
        "latency_p95_ms": dg.MetadataValue.float(round(percentile(reasoning.latencies_ms, 0.95), 1)),
        "prompt_version": dg.MetadataValue.text(PROMPT_VERSION),
    }
    metadata |= {f"{phase}_s": dg.MetadataValue.float(round(value, 3)) for phase, value in seconds.items()}
    return metadata


def day_observation(asset_key: dg.AssetKey, report: DayReport) -> dg.AssetObservation:
    """The observation of one day's partition: its counters, reasoning metrics and phase timings, and
    the call statistics `athena metrics` adds up across runs."""
    metadata = _metadata(report.counts(), report.reasoning, report.seconds)
    if report.call_stats is not None:
        metadata |= stats_observation(asset_key, report.call_stats).metadata
    return dg.AssetObservation(asset_key=asset_key, partition=report.day.isoformat(), metadata=metadata)


def range_metadata(reports: Sequence[DayReport]) -> dict[str, dg.MetadataValue]:
    """The materialisation metadata of a run: the days' counters and timings summed."""
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    reasoning = EMPTY_SUMMARY
    for report in reports:
        for name, value in report.counts().items():
            counts[name] = counts.get(name, 0) + value
        for phase, value in report.seconds.items():
            seconds[phase] = seconds.get(phase, 0.0) + value
        reasoning = reasoning.merged(report.reasoning)
    return _metadata(counts, reasoning, seconds)


def changes_metadata(
    patterns: Sequence[PatternRecord], first: date, last: date
) -> dict[str, dg.MetadataValue]:
    """How much of the knowledge is current, and the changes dated within [first, last]: which pattern
    replaced which, and when (the UI's view of `valid_to` and `superseded_by`)."""
    start = datetime.combine(first, time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    titles = {pattern.pattern_id: pattern.title for pattern in patterns}
    changed = sorted(
        (p for p in patterns if p.valid_to is not None and start <= p.valid_to < end),
        key=lambda p: (p.valid_to, p.pattern_id),
    )
    rows = [
        f"| {p.valid_to:%Y-%m-%d} | {p.title} | {titles.get(p.superseded_by or '', p.superseded_by)} |"
        for p in changed
    ]
    table = "| changed on | was | now |\n|---|---|---|\n" + "\n".join(rows) if rows else "none"
    return {
        "patterns_current": dg.MetadataValue.int(sum(p.current for p in patterns)),
        "patterns_replaced": dg.MetadataValue.int(sum(not p.current for p in patterns)),
        "changes": dg.MetadataValue.md(table),
    }
