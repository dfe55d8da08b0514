"""The consolidation prompt: one cluster of related events in, the lasting patterns they show out.

Events are shown under short local labels (E1, E2, ...) rather than their ids, because a small model
copies a two-character label reliably and a 40-character id rarely; the answer schema lists the labels
as an `enum`, so grammar-constrained generation can only cite events that were shown. The prompt carries
no example answer: a small base model copies an example verbatim instead of describing its own events.

Bump `PROMPT_VERSION` whenever the wording, the schema or the label scheme changes.
"""

from collections.abc import Mapping, Sequence
from typing import Any

PROMPT_VERSION = "2"

KINDS: tuple[str, ...] = (
    "procedure",
    "fact",
    "preference",
    "problem-solution",
    "pitfall",
    "decision",
    "habit",
    "other",
)

# Words, not numbers: a 270M model asked for a number in [0, 1] answers 2; an enum cannot go wrong.
CONFIDENCE_LEVELS: Mapping[str, float] = {"low": 0.3, "medium": 0.6, "high": 0.9}

SYSTEM = (
    "You consolidate the memory of an AI assistant: you read related events and write down the lasting "
    "pattern they show (a preference, a habit, a fact, a procedure, or a problem and its solution), "
    "citing the events that support it. Answer with JSON only."
)

_HEADER = "Related events from the assistant's memory:"

_QUESTION = (
    "What lasting patterns do these events show (at most {max_patterns})? For each, give a short title "
    "that names its subject, a kind ({kinds}), a one-sentence description, a confidence (low, medium or "
    "high), and the labels of the events that support it."
)


def event_label(position: int) -> str:
    """The label of the event shown at `position` (0-based): E1, E2, ..."""
    return f"E{position + 1}"


def event_line(label: str, content: str, max_chars: int) -> str:
    """One event as the prompt shows it: its label and its content on one line, cut at `max_chars`."""
    text = " ".join(content.split())
    if len(text) > max_chars:
        text = text[: max(0, max_chars - 1)].rstrip() + "…"
    return f"{label}: {text}"


def build_prompt(lines: Sequence[str], max_patterns: int) -> str:
    """The user message for a cluster whose events are `lines` (see `event_line`)."""
    question = _QUESTION.format(max_patterns=max_patterns, kinds=", ".join(KINDS))
    return "\n".join([_HEADER, *lines, "", question])


def answer_schema(
    labels: Sequence[str],
    max_patterns: int,
    title_chars: int = 60,
    description_chars: int = 200,
    constrain_evidence: bool = True,
) -> dict[str, Any]:
    """The JSON schema of the answer for a cluster shown with `labels`.

    The bounds (patterns, characters, evidence items) keep the longest possible answer finite, so a
    generous `max_tokens` always fits it. With `constrain_evidence` the evidence items are an enum of the
    labels; without it any short string is allowed (and unknown labels are dropped after parsing).
    """
    label_schema: dict[str, Any] = (
        {"type": "string", "enum": list(labels)}
        if constrain_evidence
        else {"type": "string", "minLength": 1, "maxLength": 8}
    )
    pattern = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": title_chars},
            "kind": {"type": "string", "enum": list(KINDS)},
            "description": {"type": "string", "minLength": 3, "maxLength": description_chars},
            "confidence": {"type": "string", "enum": list(CONFIDENCE_LEVELS)},
            "evidence": {"type": "array", "minItems": 1, "maxItems": len(labels), "items": label_schema},
        },
        "required": ["title", "kind", "description", "confidence", "evidence"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "patterns": {"type": "array", "minItems": 1, "maxItems": max_patterns, "items": pattern}
        },
        "required": ["patterns"],
        "additionalProperties": False,
    }
