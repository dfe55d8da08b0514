"""What the pipeline needs from a model server, as interfaces: the llama.cpp resources implement them,
and so do the deterministic stand-ins (`standins.py`) that unit tests of pure logic use instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, Self

from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import EmbeddingResult
from resources.llamacpp.reasoning import ReasoningResult


class Embedder(Protocol):
    """Turns texts into unit vectors of a fixed width."""

    @property
    def dimension(self) -> int:
        """The width of every vector."""
        ...

    def embed_query(self, text: str) -> EmbeddingResult:
        """The vector of a search query."""
        ...

    def embed_batch(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[EmbeddingResult]:
        """One vector per text, in order (`ids` name the texts in error messages)."""
        ...


class Reasoner(Protocol):
    """Answers prompts, optionally under a JSON schema, and records every call's metrics."""

    @property
    def metrics(self) -> MetricsCollector:
        """Where the calls are recorded."""
        ...

    @property
    def prompting(self) -> str:
        """'chat' (ask with `reason`) or 'few-shot' (a base model: continue worked examples, `complete`)."""
        ...

    @property
    def judges_support(self) -> bool:
        """Whether the model's yes/no judgement of a statement against evidence can be relied on."""
        ...

    def use_metrics(self, collector: MetricsCollector) -> Self:
        """Record into `collector` from now on."""
        ...

    def count_tokens(self, text: str, *, add_special: bool = True) -> int:
        """Tokens of `text` as the model counts them."""
        ...

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
        """An answer to `prompt`; with `json_schema`, parsed into `ReasoningResult.parsed`."""
        ...

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
        """`text` continued without a chat template; with `json_schema`, parsed into `parsed`."""
        ...
