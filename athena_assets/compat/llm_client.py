"""The seed's `LocalLLMClient`: async `embed`, `embed_batch`, `reason`, `compress_prompt`, `check_health`
and `consolidate_with_reasoning`, with the seed's result types, over this project's resources.

A script written for the seed runs unchanged but for its imports (`from athena_assets.compat import
LocalLLMClient, get_monitor`). Behind each method is the resource the pipeline uses, so the client gets
their retries, API key, replicas, batching and metrics (`get_monitor()` sees every call). Where this
project does better than the seed, the client does too: embeddings use the model's document prefix,
`reason` uses the chat template of an instruction model (a base model is asked to continue text, as the
seed did for every model), `compress_prompt` falls back to the extractive method instead of returning
the context unchanged, and `consolidate_with_reasoning` returns patterns grounded in the given events
(the consolidation's gate, with the extractive fallback) instead of whatever the model wrote.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, replace

import numpy as np

from athena_assets.api.app import App
from athena_assets.knowledge.ask_model import Prompting
from athena_assets.knowledge.clustering import Cluster, cluster_key
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.consolidate_day import consolidate_cluster
from resources.compression.compressor import PromptCompressorResource
from resources.numeric import unit_rows
from resources.settings import Settings

DEFAULT_TASK = "Extract semantic patterns from these episodic events"
# A line of `events_text` that is only a list marker, a number or a bullet before the event itself.
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\[[^\]]*\])\s*")


@dataclass
class EmbeddingResult:
    """The seed's embedding result."""

    embedding: list[float]
    dimension: int
    latency_ms: float


@dataclass
class ReasoningResult:
    """The seed's reasoning result: the text and the tokens generated."""

    text: str
    tokens: int
    latency_ms: float


@dataclass
class CompressionResult:
    """The seed's compression result; `compression_ratio` is compressed / original tokens."""

    compressed_prompt: str
    original_tokens: int
    compressed_tokens: int
    compression_ratio: float
    latency_ms: float


class LocalLLMClient:
    """The seed's unified client for local embedding, reasoning and prompt compression."""

    def __init__(
        self,
        embedding_url: str = "http://localhost:8001",
        reasoning_url: str = "http://localhost:8002",
        enable_compression: bool = True,
        timeout_seconds: float = 60.0,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.embedding_url = embedding_url
        self.reasoning_url = reasoning_url
        self.enable_compression = enable_compression
        base = settings or Settings.from_env()
        urls = {"embeddings_urls": (embedding_url,), "reasoning_urls": (reasoning_url,)}
        resources = App(replace(base, enable_compression=enable_compression, **urls)).resources
        self.embeddings = resources.embeddings.model_copy(update={"timeout_s": timeout_seconds})
        self.reasoning = resources.reasoning.model_copy(update={"timeout_s": timeout_seconds})
        self.compressor = resources.compressor.model_copy(update={"embeddings": self.embeddings})
        self._compressors: dict[float, PromptCompressorResource] = {}

    async def check_health(self) -> dict[str, bool]:
        """{"embedding": ..., "reasoning": ...: the server answers /health; "compression": enabled}."""
        embedding, reasoning = await asyncio.gather(
            asyncio.to_thread(self.embeddings.check_health), asyncio.to_thread(self.reasoning.check_health)
        )
        return {"embedding": embedding, "reasoning": reasoning, "compression": self.enable_compression}

    async def embed(self, text: str) -> EmbeddingResult:
        """The embedding of `text` (a document)."""
        result = await asyncio.to_thread(self.embeddings.embed, text)
        return EmbeddingResult(list(result.embedding), result.dimension, result.latency_ms)

    async def embed_batch(self, texts: list[str], batch_size: int = 32) -> list[EmbeddingResult]:
        """The embeddings of `texts`, in order, `batch_size` texts per request."""
        results = []
        for start in range(0, len(texts), batch_size):
            batch = await asyncio.to_thread(self.embeddings.embed_batch, texts[start : start + batch_size])
            results += [EmbeddingResult(list(r.embedding), r.dimension, r.latency_ms) for r in batch]
        return results

    async def reason(
        self,
        prompt: str,
        system: str | None = None,
        max_tokens: int = 2048,
        temperature: float = 0.7,
        top_p: float = 0.9,
    ) -> ReasoningResult:
        """The model's answer to `prompt` after an optional `system` prompt."""
        result = await asyncio.to_thread(
            self.reasoning.ask, prompt, system, max_tokens, temperature, top_p=top_p
        )
        return ReasoningResult(result.text, result.output_tokens, result.latency_ms)

    async def compress_prompt(
        self, context: str, instruction: str, compression_ratio: float = 0.5
    ) -> CompressionResult:
        """`context` compressed to about `compression_ratio` of its tokens (LLMLingua-2, or the extractive
        fallback); with compression disabled, the context unchanged."""
        if not self.enable_compression:
            tokens = len(context.split())
            return CompressionResult(context, tokens, tokens, 1.0, 0.0)
        compressor = self._compressors.get(compression_ratio)
        if compressor is None:
            compressor = self.compressor.model_copy(update={"compression_ratio": compression_ratio})
            self._compressors[compression_ratio] = compressor
        result = await asyncio.to_thread(compressor.compress, context, instruction)
        return CompressionResult(
            result.text, result.original_tokens, result.compressed_tokens, result.ratio, result.latency_ms
        )

    async def consolidate_with_reasoning(
        self, events_text: str, task_description: str = DEFAULT_TASK
    ) -> ReasoningResult:
        """The semantic pattern of the events in `events_text` (one event per line; list markers are
        ignored), as the seed's JSON: {"patterns": [{"name", "confidence", "evidence_count",
        "description"}], "relationships": [], "insights": [...]}. The events are treated as one cluster
        and go through the consolidation's prompt and gate; an answer the gate rejects twice is replaced
        by an extractive pattern, so every pattern is grounded in the events. `task_description` is
        accepted for the seed's signature; the consolidation's own prompt is what works with the model."""
        del task_description
        events = [_LIST_MARKER.sub("", line).strip() for line in events_text.splitlines()]
        events = [event for event in events if event]
        if not events:
            raise ValueError("events_text holds no event: give one event per line")
        return await asyncio.to_thread(self._consolidate, events)

    def _consolidate(self, events: list[str]) -> ReasoningResult:
        ids = [f"event-{position + 1}" for position in range(len(events))]
        content = dict(zip(ids, events, strict=True))
        vectors = unit_rows(
            np.array([r.embedding for r in self.embeddings.embed_batch(events)], dtype=np.float32)
        )
        centrality = vectors @ unit_rows(vectors.sum(axis=0, keepdims=True))[0]
        by_centrality = tuple(ids[position] for position in np.argsort(-centrality, kind="stable"))
        cluster = Cluster(cluster_key(ids), tuple(ids), by_centrality)
        prompting = Prompting(ConsolidationConfig(), self.reasoning, None, self.reasoning.model_name)
        _, drafts = consolidate_cluster(cluster, content, prompting)
        answer = {
            "patterns": [
                {
                    "name": draft.title,
                    "confidence": draft.confidence,
                    "evidence_count": len(draft.evidence_ids),
                    "description": draft.description,
                    "kind": draft.kind,
                    "method": draft.method,
                    "evidence": [content[event_id] for event_id in draft.evidence_ids],
                }
                for draft in drafts
            ],
            "relationships": [],
            "insights": [],
        }
        output_tokens = sum(result.output_tokens for result in prompting.results)
        latency_ms = sum(result.latency_ms for result in prompting.results)
        return ReasoningResult(json.dumps(answer, ensure_ascii=False), output_tokens, latency_ms)


def get_llm_client(
    embedding_url: str | None = None, reasoning_url: str | None = None, enable_compression: bool = True
) -> LocalLLMClient:
    """A client of the configured servers (LLAMACPP_EMBEDDINGS_URL, LLAMACPP_REASONING_URL: the first
    URL of each), unless given."""
    settings = Settings.from_env()
    return LocalLLMClient(
        embedding_url or settings.embeddings_urls[0],
        reasoning_url or settings.reasoning_urls[0],
        enable_compression,
        settings=settings,
    )
