"""The consolidation prompts: one cluster of related events in, the lasting pattern(s) they show out.

Events are shown under short local labels (E1, E2, ...) rather than their ids, because a small model
copies a two-character label reliably and a 40-character id rarely; the answer schema lists the labels
as an `enum`, so grammar-constrained generation can only cite events that were shown.

Two ways of asking, chosen by the model (the manifest's `prompting`):
- `chat`, for an instruction model (the offline Qwen2.5-Coder-Instruct, production Qwen2.5-7B-Instruct):
  a system message with one worked example, then the question and the events, answered as compact
  `{"patterns": [...]}` (up to `max_patterns_per_cluster`).
- `few-shot`, for a base model (offline Gemma 3 270M), which continues text and follows no instruction:
  two worked examples of events and their pattern as one line of compact JSON, then the cluster's
  events and `Pattern: `, continued under the grammar of one pattern. On the sample this passes the gate
  about twice as often as the chat prompt (which the 270M model answers with `Test 1`) and answers in
  fewer tokens; the examples are on subjects far from any history so that a copied phrase is caught by
  the gate (`EXAMPLE_WORDS`).

Bump `PROMPT_VERSION` whenever the wording, the schema or the label scheme changes.
"""

from collections.abc import Mapping, Sequence
from typing import Any

PROMPT_VERSION = "5"

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

_ROLE = (
    "You consolidate the memory of an AI coding assistant. You read related events and write down the "
    "lasting lesson they teach: a fact that stays true, what to do about a problem, a procedure, a decision, "
    "or what the user prefers, stated so that it helps in a later session, with the exact values the events "
    "give (names, numbers, versions). You cite the events that support it, and you never say anything they "
    "do not. Answer with JSON only."
)
# On a subject far from any history, so that a copied phrase is caught by the gate (`EXAMPLE_WORDS`).
_CHAT_EXAMPLE = (
    "Example. Events:\n"
    "E1: npm install -g failed with EACCES on the build box\n"
    "E2: fixed the npm EACCES error by setting the global prefix to ~/.npm-global\n"
    "E3: EACCES again from npm install -g on the new laptop; the same prefix fix worked\n"
    'Answer: {"patterns":[{"title":"npm EACCES fixed by a user-owned global prefix",'
    '"kind":"problem-solution","description":"Global npm installs fail with EACCES until the prefix '
    'points to ~/.npm-global.","confidence":"high","evidence":["E1","E2","E3"]}]}'
)
SYSTEM = f"{_ROLE}\n\n{_CHAT_EXAMPLE}"

# The question comes before the events, so every prompt of a day starts with the same text and
# llama-server reuses its cached prefix (`cache_prompt`).
_QUESTION = (
    "What lasting pattern do the events below show (at most {max_patterns})? Give: a title of 3 to 8 "
    "words naming the specific subject (the tool, error, file or setting), never a bare category such "
    "as Preference or Bug; a kind ({kinds}); a description, one sentence that states the lesson with the "
    "events' own words and values, not a copy of one event (where a value or choice changed, the latest "
    "one and what it replaced); a confidence (low, medium or high); and the labels of the events that "
    "support it."
)
_HEADER = "Events:"


FEW_SHOT = """Each block lists related events from an AI assistant's memory, then the lasting pattern they \
show, as JSON with a specific title, a kind, a one-sentence description and the supporting events.

Events:
E1: npm install -g failed with EACCES on the build box
E2: fixed the npm EACCES error by setting the global prefix to ~/.npm-global
E3: EACCES again from npm install -g on the new laptop; the same prefix fix worked
Pattern: {"title":"npm EACCES fixed by a user-owned global prefix","kind":"problem-solution",\
"description":"Global npm installs fail with EACCES until the prefix points to ~/.npm-global.",\
"confidence":"high","evidence":["E1","E2","E3"]}

Events:
E1: user asked for British English in the answers
E2: user corrected color to colour in the README
E3: user wants British spelling in commit messages too
Pattern: {"title":"British English spelling everywhere","kind":"preference",\
"description":"The user wants British spelling (colour, organise) in answers, docs and commit messages.",\
"confidence":"high","evidence":["E1","E2","E3"]}

Events:
"""
# The examples' subjects: in a pattern whose events do not mention them, they were copied from above.
EXAMPLE_WORDS = frozenset(
    {"npm", "eacces", "npm-global", "prefix", "british", "spelling", "colour", "color", "organise", "laptop"}
)
_PATTERN_CUE = "Pattern: "


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
    return "\n".join([question, "", _HEADER, *lines])


def build_completion(lines: Sequence[str]) -> str:
    """The few-shot text for a cluster whose events are `lines`, to be continued by one pattern."""
    return FEW_SHOT + "\n".join(lines) + "\n" + _PATTERN_CUE


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
    pattern = pattern_schema(labels, title_chars, description_chars, constrain_evidence)
    return {
        "type": "object",
        "properties": {
            "patterns": {"type": "array", "minItems": 1, "maxItems": max_patterns, "items": pattern}
        },
        "required": ["patterns"],
        "additionalProperties": False,
    }


def pattern_schema(
    labels: Sequence[str],
    title_chars: int = 60,
    description_chars: int = 200,
    constrain_evidence: bool = True,
) -> dict[str, Any]:
    """The JSON schema of one pattern citing some of `labels` (see `answer_schema`)."""
    label_schema: dict[str, Any] = (
        {"type": "string", "enum": list(labels)}
        if constrain_evidence
        else {"type": "string", "minLength": 1, "maxLength": 8}
    )
    return {
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


def instruction_text() -> str:
    """Every word the prompts instruct with (not their examples): a title made only of these was taken
    from the prompt, not from the events."""
    return f"{_ROLE} {build_prompt([], 1)} {FEW_SHOT.splitlines()[0]} {' '.join(KINDS)}"
