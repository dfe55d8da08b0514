"""The Claude prompt built from a day's consolidated patterns and their evidence.

The context (the part LLMLingua-2 compresses) lists each pattern current at the end of the day with its
kind, confidence, support and the events behind it, and a short note where it replaced another pattern
in the last 30 days (a replaced pattern itself never reaches Claude); the instruction stays outside the
compressed part, so Claude always reads the request in full. Bump `TEMPLATE_VERSION` whenever the layout
changes: it is part of the asset's code version, so the prompts show as stale in the UI.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

from resources.memory.pattern_records import PatternRecord

TEMPLATE_VERSION = "3"
# How long a pattern says what it replaced: long enough to explain a recent change to the assistant.
CHANGE_NOTE_DAYS = 30

INSTRUCTION = (
    "You are resuming work with a user. Below is what their assistant has learned so far, consolidated "
    "from its memory: patterns with the events that support them. Use it to avoid repeating past "
    "mistakes, to follow the user's preferences, and to reuse solutions that worked."
)

# How the pattern was written, so Claude can weigh a summary against a quotation of the events.
_METHOD = {
    "llm": "Summarised by the local model.",
    "extractive": "Key phrases and an event quoted from the evidence.",
}

# Evidence per pattern: enough to ground the pattern, bounded so one busy pattern cannot crowd out others.
MAX_EVIDENCE = 5


def knowledge_at(
    day: date, patterns: Sequence[PatternRecord]
) -> tuple[list[PatternRecord], dict[str, PatternRecord]]:
    """The patterns current at the end of `day`, and by the id of each that replaced a pattern in the
    `CHANGE_NOTE_DAYS` before, the pattern it replaced."""
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    current = [pattern for pattern in patterns if pattern.valid_at(end)]
    recent = end - timedelta(days=CHANGE_NOTE_DAYS)
    replaced = {
        old.superseded_by: old
        for old in sorted(patterns, key=lambda p: (p.valid_to or end, p.pattern_id))
        if old.superseded_by is not None and old.valid_to is not None and recent <= old.valid_to < end
    }
    return current, replaced


def pattern_section(pattern: PatternRecord, replaced: PatternRecord | None = None) -> str:
    """One pattern as Markdown: heading, description, what it replaced (if recent), and its evidence as
    dated bullet points."""
    lines = [
        f"## {pattern.title}",
        f"Kind: {pattern.kind}. Confidence: {pattern.confidence:.2f}. Seen {pattern.support} time(s), "
        f"from {pattern.first_seen:%Y-%m-%d} to {pattern.last_seen:%Y-%m-%d}. {_METHOD[pattern.method]}",
        pattern.description,
    ]
    if replaced is not None and replaced.valid_to is not None:
        lines.append(f"Changed on {replaced.valid_to:%Y-%m-%d} (was: {replaced.title}).")
    lines.append("Evidence:")
    lines += [
        f"- {event.occurred_at:%Y-%m-%d %H:%M} {event.content}" for event in pattern.evidence[:MAX_EVIDENCE]
    ]
    return "\n".join(lines)


def build_context(
    day: date, current: Sequence[PatternRecord], replaced: Mapping[str, PatternRecord] | None = None
) -> str:
    """The compressible context for `day`: the patterns current at its end, strongest first, each with
    the pattern it recently replaced (`replaced`, by the new pattern's id; see `knowledge_at`)."""
    if not current:
        return ""
    ordered = sorted(current, key=lambda p: (-p.support, -p.confidence, p.title))
    header = f"# Consolidated memory as of {day.isoformat()} ({len(ordered)} patterns)"
    notes = replaced or {}
    return "\n\n".join([header, *(pattern_section(p, notes.get(p.pattern_id)) for p in ordered)])


def render_prompt(context: str, instruction: str = INSTRUCTION) -> str:
    """The prompt to send: the instruction, then the (compressed) context."""
    return f"{instruction}\n\n{context}".strip() + "\n"
