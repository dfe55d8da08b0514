"""What a consolidation did, per cluster (`ClusterOutcome`) and per day (`DayReport`), with the day's
reasoning calls as the resource measured them (`ReasoningSummary`)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from resources.call_metrics import CallStats, MetricsCollector
from resources.llamacpp.reasoning import ReasoningResult
from resources.memory.pattern_records import DayWrite


@dataclass(frozen=True)
class ClusterOutcome:
    """One cluster: its size, how much of it the prompt showed, and what came back."""

    cluster_key: str
    members: int
    shown: int
    trimmed: int
    calls: int
    patterns: int
    discarded: int
    evidence_dropped: int
    failure: str | None = None
    reused: bool = False
    # Whose patterns were kept: "llm" (an answer passed the gate) or "extractive" (built from the events).
    method: str = "llm"
    # The title of the earlier pattern this cluster reinforced without asking the model, if it did.
    known: str | None = None

    def describe(self, day: date) -> str:
        """One run-log line."""
        head = f"{day} cluster {self.cluster_key[:12]}: {self.members} events, {self.shown} shown"
        if self.failure is not None and self.patterns:
            return (
                f"{head}; model answer unusable after {self.calls} call(s) ({self.failure}); "
                f"{self.patterns} extractive pattern(s) instead"
            )
        if self.known is not None:
            return f"{head}; reinforces the known pattern {self.known!r} (no call)"
        if self.failure is not None:
            return f"{head}; FAILED after {self.calls} call(s): {self.failure}"
        source = "remembered answer" if self.reused else f"{self.calls} call(s)"
        return (
            f"{head}; {self.patterns} pattern(s), {self.discarded} discarded, "
            f"{self.evidence_dropped} evidence labels dropped ({source})"
        )


@dataclass(frozen=True)
class ReasoningSummary:
    """The reasoning calls of one day as measured through the resource."""

    calls: int
    failed_calls: int
    prompt_tokens: int
    output_tokens: int
    latencies_ms: tuple[float, ...]
    ok_latency_ms: float
    generation_speeds: tuple[float, ...]

    @property
    def tokens_per_s(self) -> float:
        """Output tokens over the summed latency of the successful calls (prompt processing included)."""
        return self.output_tokens / (self.ok_latency_ms / 1000) if self.ok_latency_ms > 0 else 0.0

    @property
    def generation_tokens_per_s(self) -> float:
        """The decoding speed llama-server reported, averaged over the successful calls."""
        speeds = self.generation_speeds
        return sum(speeds) / len(speeds) if speeds else 0.0

    def merged(self, other: "ReasoningSummary") -> "ReasoningSummary":
        """The summary of both sets of calls."""
        return ReasoningSummary(
            self.calls + other.calls,
            self.failed_calls + other.failed_calls,
            self.prompt_tokens + other.prompt_tokens,
            self.output_tokens + other.output_tokens,
            self.latencies_ms + other.latencies_ms,
            self.ok_latency_ms + other.ok_latency_ms,
            self.generation_speeds + other.generation_speeds,
        )


EMPTY_SUMMARY = ReasoningSummary(0, 0, 0, 0, (), 0.0, ())


def reasoning_summary(collector: MetricsCollector, results: Sequence[ReasoningResult]) -> ReasoningSummary:
    """Summarise the reasoning calls recorded in `collector` (and the successful `results`)."""
    records = collector.records("reasoning")
    ok = [record for record in records if record.success]
    return ReasoningSummary(
        calls=len(records),
        failed_calls=len(records) - len(ok),
        prompt_tokens=sum(record.tokens - record.output_tokens for record in ok),
        output_tokens=sum(record.output_tokens for record in ok),
        latencies_ms=tuple(record.latency_ms for record in records),
        ok_latency_ms=sum(record.latency_ms for record in ok),
        generation_speeds=tuple(result.tokens_per_second for result in results),
    )


@dataclass(frozen=True)
class DayReport:
    """Everything one day's consolidation did."""

    day: date
    events: int
    events_with_vector: int
    lookback_events: int
    outcomes: tuple[ClusterOutcome, ...]
    written: DayWrite
    reasoning: ReasoningSummary
    seconds: Mapping[str, float]
    # The day's reasoning calls as the metrics collector summarises them (what `athena metrics` adds up).
    call_stats: CallStats | None = None

    @property
    def failures(self) -> list[ClusterOutcome]:
        """The clusters left without any pattern (not one event fit the prompt); a cluster whose model
        answer stayed unusable gets an extractive pattern instead and is not among them."""
        return [outcome for outcome in self.outcomes if outcome.failure is not None and not outcome.patterns]

    def counts(self) -> dict[str, int]:
        """The day's counters (what the metadata and the observation report)."""
        outcomes = self.outcomes
        return {
            "events": self.events,
            "events_without_vector": self.events - self.events_with_vector,
            "lookback_events": self.lookback_events,
            "clusters": len(outcomes),
            "events_clustered": sum(outcome.members for outcome in outcomes),
            "clusters_trimmed": sum(outcome.trimmed > 0 for outcome in outcomes),
            "events_trimmed": sum(outcome.trimmed for outcome in outcomes),
            "clusters_failed": len(self.failures),
            "clusters_answer_rejected": sum(o.failure is not None and o.patterns > 0 for o in outcomes),
            "answers_reused": sum(outcome.reused for outcome in outcomes),
            "patterns_llm": sum(o.patterns for o in outcomes if o.method == "llm"),
            "patterns_extractive": sum(o.patterns for o in outcomes if o.method == "extractive"),
            "patterns_new": self.written.new,
            "patterns_reinforced": self.written.reinforced,
            "patterns_discarded": sum(outcome.discarded for outcome in outcomes),
            "patterns_removed": self.written.removed,
            "patterns_superseded": self.written.superseded,
            "evidence_dropped": sum(outcome.evidence_dropped for outcome in outcomes),
        }
