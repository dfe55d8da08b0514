"""Token bookkeeping of the embedding client: tokenizing batches, splitting long inputs, pooling parts.

Batches are tokenized with one mixed `/tokenize` request (texts separated by a special token id), then
sent to `/v1/embeddings` as token ids wrapped in the model's special tokens, exactly what the server
would have built from the texts, so the per-text token counts are the server's own.

Long inputs: llama-server embeds one input in one physical batch (`-ub`), so an input with more tokens
than that is split on token boundaries into near-equal parts, each wrapped in the model's special tokens
(and the document/query prefix); the parts' unit vectors are averaged, weighted by their token counts
(the mean pooling the model itself does, applied across parts), and re-normalised to unit length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from resources.llamacpp.http import LlamaCppHttp, LlamaCppInputError, token_ids

InputType = Literal["document", "query"]

_BATCH_LIMIT = re.compile(r"current batch size:\s*(\d+)")


def special_affixes(with_special: Sequence[int], plain: Sequence[int]) -> tuple[list[int], list[int]]:
    """The tokens the server adds before and after an input (e.g. [CLS] and [SEP] for BERT).

    `with_special` and `plain` are the same text tokenized with and without special tokens.
    """
    for start in range(len(with_special) - len(plain) + 1):
        if list(with_special[start : start + len(plain)]) == list(plain):
            return list(with_special[:start]), list(with_special[start + len(plain) :])
    raise ValueError("the tokenization with special tokens does not contain the plain one")


def interleave(texts: Sequence[str], delimiter: int) -> list[str | int]:
    """`texts` separated by the token id `delimiter`: one mixed `/tokenize` request for a whole batch."""
    content: list[str | int] = []
    for position, text in enumerate(texts):
        if position:
            content.append(delimiter)
        content.append(text)
    return content


def split_on(tokens: Sequence[int], delimiter: int, expected: int) -> list[list[int]] | None:
    """Undo `interleave` on the token list; None when a text itself produced the delimiter token."""
    parts: list[list[int]] = [[]]
    for token in tokens:
        if token == delimiter:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts if len(parts) == expected else None


def split_tokens(tokens: Sequence[int], capacity: int) -> list[list[int]]:
    """`tokens` in the fewest near-equal consecutive parts of at most `capacity` tokens each.

    Near-equal parts (rather than full parts and a short tail) give every part enough context to
    carry meaning.
    """
    if capacity < 1:
        raise ValueError(f"capacity must be positive, got {capacity}")
    if len(tokens) <= capacity:
        return [list(tokens)]
    count = math.ceil(len(tokens) / capacity)
    size, extra = divmod(len(tokens), count)
    parts: list[list[int]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        parts.append(list(tokens[start:end]))
        start = end
    return parts


def pool(vectors: Sequence[Sequence[float]], weights: Sequence[int]) -> list[float]:
    """Token-weighted mean of `vectors`, scaled back to unit L2 length."""
    matrix = np.asarray(vectors, dtype=np.float64)
    mean = np.average(matrix, axis=0, weights=np.asarray(weights, dtype=np.float64))
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).tolist()


def batch_limit(message: str) -> int | None:
    """The physical batch size llama-server states in its "input is too large" error, if it does."""
    match = _BATCH_LIMIT.search(message)
    return int(match.group(1)) if match else None


def input_problem(text: object) -> str | None:
    """Why `text` cannot be embedded, or None: it must be a non-blank string without NUL characters."""
    if not isinstance(text, str):
        return f"is a {type(text).__name__}, not a string"
    if not text.strip():
        return "is empty (or only whitespace); it would embed to a meaningless vector, drop it instead"
    if "\x00" in text:
        return "contains a NUL character, which llama-server silently drops; strip it before embedding"
    return None


@dataclass(frozen=True)
class TokenLayout:
    """How the server frames an input: its special tokens, and the document/query prefix tokens."""

    prefix: list[int]
    suffix: list[int]
    input_prefixes: dict[str, list[int]]

    @property
    def delimiter(self) -> int | None:
        """A special token id to separate the texts of one `/tokenize` request (None: the model has none).

        Ordinary text does not tokenize to it; a text that spells a special token out is caught by
        `split_on` and tokenized alone.
        """
        return (self.prefix or self.suffix or [None])[0]

    def inputs(
        self, bodies: Sequence[list[int]], input_type: InputType, max_tokens: int
    ) -> tuple[list[list[int]], list[int]]:
        """Server inputs for the tokenized `bodies` (long ones split) and how many parts each became."""
        affixes = len(self.prefix) + len(self.suffix)
        input_prefix = self.input_prefixes.get(input_type, [])
        inputs: list[list[int]] = []
        counts: list[int] = []
        for body in bodies:
            if len(body) + affixes <= max_tokens:
                inputs.append(self.prefix + body + self.suffix)
                counts.append(1)
                continue
            # Every part carries the document/query prefix, so each is embedded as the model expects.
            has_prefix = bool(input_prefix) and body[: len(input_prefix)] == input_prefix
            lead = input_prefix if has_prefix else []
            parts = split_tokens(body[len(lead) :], max_tokens - affixes - len(lead))
            inputs += [self.prefix + lead + part + self.suffix for part in parts]
            counts.append(len(parts))
        return inputs, counts


def learn_layout(http: LlamaCppHttp, input_prefixes: dict[str, str]) -> TokenLayout:
    """Ask the server how it frames inputs, and how it tokenizes each non-empty input prefix."""

    def tokenize(text: str, add_special: bool) -> list[int]:
        return token_ids(http.post("/tokenize", {"content": text, "add_special": add_special}).body)

    prefix, suffix = special_affixes(tokenize("a", True), tokenize("a", False))
    return TokenLayout(
        prefix=prefix,
        suffix=suffix,
        input_prefixes={kind: tokenize(text, False) if text else [] for kind, text in input_prefixes.items()},
    )


def tokenize_texts(http: LlamaCppHttp, layout: TokenLayout, texts: Sequence[str]) -> list[list[int]]:
    """The tokens of each text (without special tokens): one request for the batch when possible."""
    delimiter = layout.delimiter
    if delimiter is not None and len(texts) > 1:
        try:
            body = http.post(
                "/tokenize", {"content": interleave(texts, delimiter), "add_special": False}
            ).body
        except LlamaCppInputError:
            body = None  # a server without mixed /tokenize content: one request per text below
        parts = split_on(token_ids(body), delimiter, len(texts)) if body is not None else None
        if parts is not None:
            return parts
    return [token_ids(http.post("/tokenize", {"content": text, "add_special": False}).body) for text in texts]
