"""The Claude prompt built from a day's consolidated patterns and their evidence.

The context (the part LLMLingua-2 compresses) lists each pattern with its kind, confidence, support and
the events behind it; the instruction stays outside the compressed part, so Claude always reads the
request in full. Bump `TEMPLATE_VERSION` whenever the layout changes: it is part of the asset's code
version, so the prompts show as stale in the UI.
"""

from collections.abc import Sequence
from datetime import date

from resources.memory.pattern_records import PatternRecord

TEMPLATE_VERSION = "2"

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


def pattern_section(pattern: PatternRecord) -> str:
    """One pattern as Markdown: heading, description, and its evidence as dated bullet points."""
    lines = [
        f"## {pattern.title}",
        f"Kind: {pattern.kind}. Confidence: {pattern.confidence:.2f}. Seen {pattern.support} time(s), "
        f"from {pattern.first_seen:%Y-%m-%d} to {pattern.last_seen:%Y-%m-%d}. {_METHOD[pattern.method]}",
        pattern.description,
        "Evidence:",
    ]
    lines += [
        f"- {event.occurred_at:%Y-%m-%d %H:%M} {event.content}" for event in pattern.evidence[:MAX_EVIDENCE]
    ]
    return "\n".join(lines)


def build_context(day: date, patterns: Sequence[PatternRecord]) -> str:
    """The compressible context for `day`: every pattern observed that day, strongest first."""
    if not patterns:
        return ""
    ordered = sorted(patterns, key=lambda p: (-p.support, -p.confidence, p.title))
    header = f"# Consolidated memory as of {day.isoformat()} ({len(ordered)} patterns)"
    return "\n\n".join([header, *(pattern_section(pattern) for pattern in ordered)])


def render_prompt(context: str, instruction: str = INSTRUCTION) -> str:
    """The prompt to send: the instruction, then the (compressed) context."""
    return f"{instruction}\n\n{context}".strip() + "\n"
