"""Sentence-sized units of a prompt: the pieces the compressors rank, pack and put back together.

A context is cut after sentence-ending punctuation followed by white space, after CJK full stops, and at
line breaks; a piece longer than `max_tokens` is cut again at white space near equal token counts, so
one run-on line cannot dominate a budget. Each unit remembers what separated it from the next (a line
break, a space or nothing), so `join_units` restores the line structure of whatever subset is kept.
Every step is one pass over the text and tokenization is batched, so splitting is linear in its length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from resources.compression.token_counting import count_tokens_batch

DEFAULT_MAX_UNIT_TOKENS = 128

_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\s*\n\s*")


@dataclass(frozen=True)
class TextUnit:
    """One sentence (or a slice of a long one), its cl100k token count and the separator after it."""

    text: str
    tokens: int
    after: str = " "


def _separator(gap: str) -> str:
    return "\n" if "\n" in gap else " " if gap else ""


def _pieces(text: str) -> Iterator[tuple[str, str]]:
    start = 0
    for match in _BOUNDARY.finditer(text):
        piece = text[start : match.start()].strip()
        if piece:
            yield piece, _separator(match.group())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        yield tail, " "


def _cut(piece: str, tokens: int, max_tokens: int) -> list[str]:
    """`piece` in about ceil(tokens / max_tokens) parts, cut at white space where there is some."""
    parts = math.ceil(tokens / max_tokens)
    width = max(1, len(piece) // parts)
    cuts: list[str] = []
    start = 0
    while len(piece) - start > width:
        end = piece.rfind(" ", start + width // 2, start + width)
        # No white space in reach (a URL, a base64 blob): cut inside the word rather than not at all.
        end = end if end > start else start + width
        cuts.append(piece[start:end].strip())
        start = end
    cuts.append(piece[start:].strip())
    return [cut for cut in cuts if cut]


def split_units(text: str, max_tokens: int = DEFAULT_MAX_UNIT_TOKENS) -> list[TextUnit]:
    """The sentences of `text` in order, none much longer than `max_tokens` cl100k tokens."""
    pieces = list(_pieces(text))
    counts = count_tokens_batch([piece for piece, _ in pieces])
    units: list[TextUnit] = []
    for (piece, after), tokens in zip(pieces, counts, strict=True):
        if tokens <= max_tokens:
            units.append(TextUnit(piece, tokens, after))
            continue
        parts = _cut(piece, tokens, max_tokens)
        part_counts = count_tokens_batch(parts)
        units += [
            TextUnit(part, count, after if index == len(parts) - 1 else " ")
            for index, (part, count) in enumerate(zip(parts, part_counts, strict=True))
        ]
    return units


def subset(units: Sequence[TextUnit], indices: Sequence[int]) -> list[TextUnit]:
    """The units at the sorted `indices`, each carrying the separator of the gap it now closes.

    When the units between two kept ones are dropped, a line break among them still separates the two.
    """
    kept: list[TextUnit] = []
    for position, index in enumerate(indices):
        end = indices[position + 1] if position + 1 < len(indices) else index + 1
        unit = units[index]
        if unit.after != "\n" and any(other.after == "\n" for other in units[index:end]):
            unit = replace(unit, after="\n")
        kept.append(unit)
    return kept


def join_units(units: Sequence[TextUnit], texts: Sequence[str] | None = None) -> str:
    """The units' texts (or `texts`, one per unit, e.g. their compressed forms) joined in order.

    Empty texts are left out together with their separator.
    """
    bodies = [unit.text for unit in units] if texts is None else list(texts)
    out: list[str] = []
    for unit, body in zip(units, bodies, strict=True):
        if not body:
            continue
        out += [body, unit.after]
    return "".join(out[:-1])
