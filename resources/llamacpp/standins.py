"""Deterministic stand-ins for the llama.cpp clients, for unit tests of pure logic (clustering,
consolidation, compression) that must not depend on a server. Never used where a user runs anything.

`HashingEmbedder` maps each word to a fixed random direction and sums them, so texts that share words
are close and unrelated texts are nearly orthogonal, as with a real embedding model. `ScriptedReasoner`
answers with what a test's function returns for each prompt, and counts tokens as words.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np

from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import EmbeddingResult
from resources.llamacpp.http import LlamaCppOutputError
from resources.llamacpp.reasoning import ReasoningResult
from resources.numeric import unit_rows

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Bag-of-words vectors from hashed words: an `Embedder` without a model."""

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        """The width of every vector."""
        return self._dimension

    def _vector(self, text: str) -> tuple[float, ...]:
        total = np.zeros(self._dimension)
        for word in _WORD.findall(text.lower()):
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
            total += np.random.default_rng(seed).standard_normal(self._dimension)
        return tuple(float(value) for value in unit_rows(total))

    def embed_query(self, text: str) -> EmbeddingResult:
        """The vector of a search query (no prefix: the words are the meaning here)."""
        return EmbeddingResult(self._vector(text), self._dimension, len(_WORD.findall(text)), 0.0)

    def embed_batch(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[EmbeddingResult]:
        """One vector per text, in order."""
        return [self.embed_query(text) for text in texts]


Answer = Callable[[str, dict[str, Any] | None], Any]
"""What a `ScriptedReasoner` answers: the parsed JSON for (prompt, schema), or an exception to raise."""


class ScriptedReasoner:
    """A `Reasoner` whose answers a test writes; every call is recorded like a real one."""

    def __init__(self, answer: Answer, prompting: str = "chat", judges_support: bool = False) -> None:
        self._answer = answer
        self._metrics = MetricsCollector()
        self.prompts: list[str] = []
        self.prompting = prompting
        self.judges_support = judges_support

    @property
    def metrics(self) -> MetricsCollector:
        """Where the calls are recorded."""
        return self._metrics

    def use_metrics(self, collector: MetricsCollector) -> Self:
        """Record into `collector` from now on."""
        self._metrics = collector
        return self

    def count_tokens(self, text: str, *, add_special: bool = True) -> int:
        """Words and punctuation marks, one token each (plus one for the start of a whole input)."""
        return len(re.findall(r"\w+|[^\w\s]", text)) + (1 if add_special else 0)

    def reason(
        self,
        prompt: str,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        *,
        seed: int | None = None,
    ) -> ReasoningResult:
        """The scripted answer to `prompt`; an exception the script returns is raised, as a server's."""
        return self._scripted(prompt, json_schema)

    def complete(
        self,
        text: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        *,
        stop: list[str] | None = None,
        seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ReasoningResult:
        """The scripted continuation of `text`, recorded like `reason`."""
        return self._scripted(text, json_schema)

    def _scripted(self, prompt: str, json_schema: dict[str, Any] | None) -> ReasoningResult:
        self.prompts.append(prompt)
        answer = self._answer(prompt, json_schema)
        if isinstance(answer, LlamaCppOutputError):
            self._metrics.record("reasoning", 1.0, success=False)
            raise answer
        text = json.dumps(answer)
        output_tokens = self.count_tokens(text, add_special=False)
        self._metrics.record(
            "reasoning", 1.0, tokens=self.count_tokens(prompt) + output_tokens, output_tokens=output_tokens
        )
        return ReasoningResult(text, self.count_tokens(prompt), output_tokens, 1000.0, 1.0, parsed=answer)
