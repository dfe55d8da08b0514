"""`PromptCompressorResource`: shrink the context of a Claude prompt before it is sent, and count the saving.

Methods, in order of preference (the one used is in every `CompressionResult.method`):

- "llmlingua2": LLMLingua-2 (llmlingua's `PromptCompressor`, `use_llmlingua2=True`), a token classifier
  that keeps about `compression_ratio` of the tokens. Task-agnostic: the instruction and question do
  not steer it. The model is loaded only from a local directory or the local Hugging Face cache.
- "extractive": when LLMLingua-2 cannot run (llmlingua or the model missing, or it failed on this
  prompt), whole sentences are kept by similarity to the instruction and question, within the same
  token budget (`resources.compression.sentence_selection`). `fallback_reason` says why, for an asset check.
- "passthrough": `enabled=False` (ENABLE_COMPRESSION=false) or an empty context; the text is unchanged
  and still counted.

Contexts longer than `llmlingua_max_tokens` are first cut down to that size by the extractive ranker,
then LLMLingua-2 compresses the rest (the coarse-to-fine order of LongLLMLingua): xlm-roberta-large costs
about 3 s per 512-token window on 2 CPU cores (benchmarks/compression.py), so this bounds the time.

Token counts use cl100k_base offline, an approximation of Claude's tokenizer
(`resources.compression.token_counting`); `dollars_saved` prices the saved tokens at `usd_per_mtok`.
Every call is recorded in a `MetricsCollector` as kind "compression".
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Literal, Self

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.call_metrics import MetricsCollector, model_metrics
from resources.compression.llmlingua import LLMLingua2, ModelUnavailable, load_llmlingua2
from resources.compression.sentence_selection import ResourceEmbedder, extract
from resources.compression.text_units import TextUnit, split_units
from resources.compression.token_counting import count_tokens, dollars
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.settings import (
    DEFAULT_CLAUDE_INPUT_USD_PER_MTOK,
    DEFAULT_COMPRESSION_MODEL,
    DEFAULT_COMPRESSION_RATIO,
    Settings,
)

Method = Literal["llmlingua2", "extractive", "passthrough"]
SMALL_COMPRESSION_MODEL = "microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank"
MAX_FORCE_TOKENS = 100  # llmlingua reserves this many added tokens for force tokens


@dataclass(frozen=True)
class CompressionResult:
    """One compressed context: the text, its cl100k token counts before and after, and how it was made.

    `ratio` is compressed / original tokens (0.33 kept a third; 1.0 for an empty context);
    `dollars_saved` prices `tokens_saved` as Claude input tokens. `fallback_reason` is set when the
    method is not the one configured (e.g. "extractive" because the model is missing).
    """

    text: str
    original_tokens: int
    compressed_tokens: int
    ratio: float
    tokens_saved: int
    dollars_saved: float
    method: Method
    latency_ms: float
    fallback_reason: str | None = None


class PromptCompressorResource(dg.ConfigurableResource):
    """Compresses prompt contexts with LLMLingua-2, falling back to query-aware sentence extraction."""

    enabled: bool = Field(default=True, description="ENABLE_COMPRESSION: false passes prompts through.")
    compression_ratio: float = Field(
        default=DEFAULT_COMPRESSION_RATIO,
        description="ATHENA_COMPRESSION_RATIO: share of tokens to keep, in (0, 1]; 0.33 keeps a third.",
    )
    model: str = Field(
        default=DEFAULT_COMPRESSION_MODEL,
        description="ATHENA_COMPRESSION_MODEL: a Hugging Face repo id in the local cache or a model "
        f"directory (smaller option: {SMALL_COMPRESSION_MODEL}). Never downloaded.",
    )
    use_llmlingua2: bool = Field(
        default=True,
        description="Use LLMLingua-2; false: the extractive compressor (LLMLingua-1 needs a 7B causal LM).",
    )
    device: str = Field(
        default="auto", description="Torch device: auto (CUDA if present, else cpu), cpu, cuda."
    )
    cache_dir: str = Field(default="", description="Hugging Face cache to look in; empty: the default one.")
    force_tokens: list[str] = Field(
        default_factory=lambda: ["\n", "?"], description="Tokens LLMLingua-2 always keeps."
    )
    force_reserve_digit: bool = Field(
        default=True, description="Keep every word with a digit (dates, ids, amounts matter in memories)."
    )
    drop_consecutive: bool = Field(
        default=True, description="Drop a force token repeated with nothing kept in between."
    )
    llmlingua_max_tokens: int = Field(
        default=8192,
        description="Longest context given to LLMLingua-2; longer ones are pre-cut by the extractive ranker "
        "(0: no limit).",
    )
    usd_per_mtok: float = Field(
        default=DEFAULT_CLAUDE_INPUT_USD_PER_MTOK,
        description="ATHENA_CLAUDE_INPUT_USD_PER_MTOK: Claude's input price, US dollars per million tokens.",
    )
    embeddings: LlamaCppEmbeddingResource | None = Field(
        default=None, description="Embeddings that rank sentences in the extractive fallback."
    )

    _backend: LLMLingua2 | None = PrivateAttr(default=None)
    _reason: str | None = PrivateAttr(default=None)
    _prepared: bool = PrivateAttr(default=False)
    _prepare_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _metrics: MetricsCollector = PrivateAttr(default_factory=lambda: model_metrics)

    @classmethod
    def from_settings(cls, settings: Settings, embeddings: LlamaCppEmbeddingResource | None = None) -> Self:
        """The compressor configured by the environment (ENABLE_COMPRESSION, ATHENA_COMPRESSION_*)."""
        return cls(
            enabled=settings.enable_compression,
            compression_ratio=settings.compression_ratio,
            model=settings.compression_model,
            usd_per_mtok=settings.claude_input_usd_per_mtok,
            embeddings=embeddings,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Load the model at the start of a run and log which method the run will use, and why."""
        self.prepare()
        if context.log is not None:
            message = f"{type(self).__name__}: method {self.method}"
            if self.fallback_reason:
                context.log.warning(f"{message}; {self.fallback_reason}")
            else:
                context.log.info(message)

    def use_metrics(self, collector: MetricsCollector) -> Self:
        """Record into `collector` instead of the process-wide `model_metrics`; returns self."""
        self._metrics = collector
        return self

    def _check(self) -> None:
        if not 0 < self.compression_ratio <= 1:
            raise ValueError(
                f"compression_ratio={self.compression_ratio} must be in (0, 1]; 0.33 keeps a third"
            )
        if len(self.force_tokens) > MAX_FORCE_TOKENS:
            raise ValueError(f"{len(self.force_tokens)} force_tokens; llmlingua allows {MAX_FORCE_TOKENS}")
        if self.usd_per_mtok < 0:
            raise ValueError(f"usd_per_mtok={self.usd_per_mtok} is negative")

    def prepare(self) -> str | None:
        """Load LLMLingua-2 if enabled and possible (once); returns the fallback reason (None: loaded)."""
        self._check()
        with self._prepare_lock:
            if not self._prepared:
                if self.enabled and not self.use_llmlingua2:
                    self._reason = "use_llmlingua2 is false; the extractive compressor is configured"
                elif self.enabled:
                    try:
                        self._backend = load_llmlingua2(self.model, self.device, self.cache_dir)
                    except ModelUnavailable as err:
                        self._reason = f"LLMLingua-2 is unavailable: {err}; using the extractive compressor"
                self._prepared = True
        return self._reason

    @property
    def method(self) -> Method:
        """The method `compress` uses for a non-empty context (per-call fallbacks aside)."""
        self.prepare()
        if not self.enabled:
            return "passthrough"
        return "llmlingua2" if self._backend is not None else "extractive"

    @property
    def fallback_reason(self) -> str | None:
        """Why the configured method is not used (None when it is, or when compression is disabled)."""
        return self.prepare()

    def compress(self, context: str, instruction: str = "", question: str = "") -> CompressionResult:
        """`context` compressed to about `compression_ratio` of its tokens.

        `instruction` and `question` are not part of the result; they only steer which sentences the
        extractive method keeps. Never raises for a missing model or embedding server: it falls back.
        """
        self.prepare()
        started = time.perf_counter()
        try:
            original = count_tokens(context)
            query = " ".join(filter(None, (instruction, question)))
            text, method, reason = self._compress(context, original, query)
            compressed = count_tokens(text)
        except Exception:
            self._metrics.record("compression", (time.perf_counter() - started) * 1000, success=False)
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        self._metrics.record(
            "compression", latency_ms, tokens=original, original_tokens=original, compressed_tokens=compressed
        )
        saved = original - compressed
        return CompressionResult(
            text=text,
            original_tokens=original,
            compressed_tokens=compressed,
            ratio=compressed / original if original else 1.0,
            tokens_saved=saved,
            dollars_saved=dollars(saved, self.usd_per_mtok),
            method=method,
            latency_ms=latency_ms,
            fallback_reason=reason,
        )

    def _compress(self, context: str, total: int, query: str) -> tuple[str, Method, str | None]:
        if not self.enabled or not context.strip():
            return context, "passthrough", None
        units = split_units(context)
        budget = max(1, math.floor(self.compression_ratio * total))
        reason = self._reason
        if self._backend is not None:
            limit = self.llmlingua_max_tokens
            if limit and total > limit and budget >= limit:
                reason = (
                    f"the context has {total} tokens, over llmlingua_max_tokens={limit}, and the target "
                    f"keeps {budget}, so LLMLingua-2 has nothing to do after the extractive pass"
                )
            else:
                try:
                    text, note = self._llmlingua(units, total, budget, query)
                    return text, "llmlingua2", note
                # A prompt the model or llmlingua chokes on (odd characters, a special-token string) is
                # compressed the other way rather than failing the run.
                except Exception as err:
                    reason = (
                        f"LLMLingua-2 failed on this prompt ({type(err).__name__}: {err}); used extraction"
                    )
        embedder = ResourceEmbedder(self.embeddings) if self.embeddings is not None else None
        result = extract(units, query, budget, embedder)
        return result.text, "extractive", "; ".join(filter(None, (reason, result.note))) or None

    def _llmlingua(
        self, units: list[TextUnit], total: int, budget: int, query: str
    ) -> tuple[str, str | None]:
        """LLMLingua-2's text, and a note when the coarse pass had to rank sentences by words."""
        backend = self._backend
        assert backend is not None
        limit = self.llmlingua_max_tokens
        rate = self.compression_ratio
        note = None
        if limit and total > limit:
            embedder = ResourceEmbedder(self.embeddings) if self.embeddings is not None else None
            coarse = extract(units, query, limit, embedder)
            units, note = list(coarse.kept), coarse.note
            rate = min(1.0, budget / max(1, sum(unit.tokens for unit in units)))
        text = backend.compress(
            units,
            rate,
            force_tokens=self.force_tokens,
            force_reserve_digit=self.force_reserve_digit,
            drop_consecutive=self.drop_consecutive,
        )
        return text, note
