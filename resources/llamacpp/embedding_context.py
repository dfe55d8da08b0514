"""What the embedder reads for an event, and the key its vectors are stored under.

A conversation turn says little on its own ("I did! It was on sale for 90 euros"), while questions about
it name the person and the time ("How much did Tom pay for the bike?", "... in March 2026?"). An event
whose metadata names its `speaker` (or `author`) is a turn: with the context on, the embedder reads it as
"[12 March 2026] Tom: I did! ...". Measured on `benchmarks/recall_quality.py`'s conversation history
(recall@5 of the vector branch, scoped): content alone 0.306, speaker 0.496, date 0.423, both 0.641;
the turn before it as well made it worse (0.225). Events without a speaker (an assistant's notes,
errors, fixes) are embedded as their content alone, so consolidation clusters what it always did.

The context is part of the vectors' key (`vector_key`): changing it (ATHENA_EMBEDDING_CONTEXT) embeds
every event again under the new key and keeps the old vectors, as a new model does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

CONTEXT_PARTS = ("date", "speaker")
DEFAULT_CONTEXT = "date,speaker"
NO_CONTEXT = "none"
# The metadata fields that name who said a turn, in the order they are read.
SPEAKER_FIELDS = ("speaker", "author")


def parse_context(value: str) -> tuple[str, ...]:
    """The parts of a context setting ("date,speaker", "speaker", "none"), in `CONTEXT_PARTS` order;
    an unknown part is a ValueError naming the choices."""
    parts = {part.strip() for part in value.split(",") if part.strip()}
    if parts <= {NO_CONTEXT}:
        return ()
    unknown = sorted(parts - set(CONTEXT_PARTS))
    if unknown:
        raise ValueError(
            f"ATHENA_EMBEDDING_CONTEXT: unknown part {', '.join(map(repr, unknown))}; use a comma-separated "
            f"subset of {', '.join(CONTEXT_PARTS)}, or {NO_CONTEXT}"
        )
    return tuple(part for part in CONTEXT_PARTS if part in parts)


def speaker_of(metadata: Mapping[str, Any]) -> str | None:
    """Who said the turn, from its metadata; None for an event that is not a conversation turn."""
    for name in SPEAKER_FIELDS:
        value = metadata.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def document(content: str, occurred_at: datetime, metadata: Mapping[str, Any], context: Sequence[str]) -> str:
    """The text the embedder reads for an event: its content, after the turn's date and speaker when
    `context` asks for them and the event is a turn."""
    speaker = speaker_of(metadata)
    if speaker is None or not context:
        return content
    date = f"[{occurred_at.day} {occurred_at:%B %Y}] " if "date" in context else ""
    said_by = f"{speaker}: " if "speaker" in context else ""
    return f"{date}{said_by}{content}"


def vector_key(model_sha256: str, context: Sequence[str]) -> str:
    """The key event vectors are stored and searched under: the model's sha256, and the context when
    there is one (vectors of other contexts are other vectors)."""
    return "+".join([model_sha256, *context])
