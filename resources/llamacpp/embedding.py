"""`LlamaCppEmbeddingResource`: embeddings from llama-server (`/v1/embeddings`), one text or many.

`embed_stream` (and `embed_batch`, which collects it) tokenizes each batch with one `/tokenize`
request, so every result carries the server's own token count for its text, over-long texts are split
before they are sent (see `resources.llamacpp.embedding_tokens`), and the batch is then embedded as token
ids; several batches are in flight at once and results come back in input order. At the start of a run
the servers' embedding width is checked against `LLAMACPP_EMBEDDING_DIM` and the models manifest.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, PrivateAttr

from resources.llamacpp.base import LlamaCppResourceBase
from resources.llamacpp.embedding_context import DEFAULT_CONTEXT, document, parse_context, vector_key
from resources.llamacpp.embedding_request import embed_text, embeddings_request, response_vectors
from resources.llamacpp.embedding_tokens import (
    InputType,
    TokenLayout,
    batch_limit,
    input_problem,
    learn_layout,
    pool,
    tokenize_texts,
)
from resources.llamacpp.http import (
    LlamaCppConfigError,
    LlamaCppHttp,
    LlamaCppInputError,
    LlamaCppResponseError,
)

_PROBE_TEXT = "dimension probe"
# Requests queued per request in flight in `embed_stream`: enough that storing a chunk of results never
# drains the queue (a COPY of 1,024 vectors takes about as long as one request).
_QUEUED_PER_SLOT = 4


@dataclass(frozen=True)
class EmbeddingResult:
    """One text's embedding: a unit vector, the server's token count and how long it took.

    `latency_ms` is the wall time of the request(s) that carried the text (a whole batch in
    `embed_batch`). `chunks` > 1 means the text was longer than one server batch and was split, its
    parts' vectors mean-pooled; `tokens` then counts every part, special tokens included.
    """

    embedding: tuple[float, ...]
    dimension: int
    tokens: int
    latency_ms: float
    chunks: int = 1

    @property
    def split(self) -> bool:
        """Whether the text was split into several parts (see `chunks`)."""
        return self.chunks > 1


class LlamaCppEmbeddingResource(LlamaCppResourceBase):
    """Embeddings from one or more llama-server replicas started with `--embedding`."""

    embedding_dim: int = Field(
        default=0, description="LLAMACPP_EMBEDDING_DIM: expected width; 0 reads it from the server."
    )
    model_embedding_dim: int = Field(default=0, description="The width the models manifest states (0: none).")
    model_name: str = Field(default="", description="The manifest's model name, for messages.")
    document_prefix: str = Field(
        default="", description="Prepended to documents (nomic: 'search_document: ')."
    )
    query_prefix: str = Field(default="", description="Prepended to queries (nomic: 'search_query: ').")
    context: str = Field(
        default=DEFAULT_CONTEXT,
        description="What is read besides a conversation turn's content: date, speaker, both, or none "
        "(resources/llamacpp/embedding_context.py). Part of the vectors' key: changing it re-embeds.",
    )
    batch_size: int = Field(default=32, description="Texts per /v1/embeddings request in embed_batch.")
    max_input_tokens: int = Field(
        default=0, description="Tokens one input may have before it is split; 0 asks the server."
    )

    _dimension: int = PrivateAttr(default=0)
    _max_tokens: int = PrivateAttr(default=0)
    _layout: TokenLayout | None = PrivateAttr(default=None)
    _limit_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _on_open(self, http: LlamaCppHttp) -> None:
        """Check every replica's width against the configuration; learn the input limit and tokenizer."""
        widths: dict[str, int] = {}
        limits: list[int] = []
        for url in self.urls:
            body = http.post("/v1/embeddings", embeddings_request(_PROBE_TEXT), url=url).body
            widths[url] = len(response_vectors(body, 1)[0])
            meta = self.server_meta(url)
            limits += [int(meta[key]) for key in ("n_ctx", "n_ctx_train") if int(meta.get(key) or 0) > 0]
        if len(set(widths.values())) > 1:
            raise LlamaCppConfigError(
                f"the embedding replicas disagree on the width: {widths}; serve the same model on every URL"
            )
        width = next(iter(widths.values()))
        where = f"the embedding server at {', '.join(self.urls)} returns {width}-dimensional vectors"
        if self.embedding_dim and self.embedding_dim != width:
            raise LlamaCppConfigError(
                f"LLAMACPP_EMBEDDING_DIM={self.embedding_dim} but {where}; set "
                f"LLAMACPP_EMBEDDING_DIM={width} (0 reads it from the server), or serve the configured model"
            )
        if self.model_embedding_dim and self.model_embedding_dim != width:
            model = self.model_name or "the profile's embedding model"
            raise LlamaCppConfigError(
                f"the models manifest gives {model} embedding_dim={self.model_embedding_dim} but {where}; "
                "the server runs another model than ATHENA_MODEL_PROFILE names"
            )
        self._dimension = width
        self._max_tokens = self.max_input_tokens or (min(limits) if limits else 512)
        self._layout = learn_layout(http, {"document": self.document_prefix, "query": self.query_prefix})

    def describe(self) -> str:
        """One line for the run log: replicas, width and input limit."""
        return f"{super().describe()}; {self._dimension}-d, inputs up to {self._max_tokens} tokens"

    @property
    def dimension(self) -> int:
        """The servers' embedding width (checked when the resource opens)."""
        self.open()
        return self._dimension

    def document(self, content: str, occurred_at: datetime, metadata: Mapping[str, Any]) -> str:
        """The text this resource embeds for an event (`embedding_context.document`)."""
        return document(content, occurred_at, metadata, parse_context(self.context))

    def vector_key(self, model_sha256: str) -> str:
        """The key of the event vectors this resource writes with the model `model_sha256`."""
        return vector_key(model_sha256, parse_context(self.context))

    def _prefixed(self, text: str, input_type: InputType) -> str:
        return (self.query_prefix if input_type == "query" else self.document_prefix) + text

    def embed(self, text: str, *, input_type: InputType = "document") -> EmbeddingResult:
        """The embedding of one text (a document unless `input_type="query"`), in one request."""
        problem = input_problem(text)
        if problem:
            raise LlamaCppInputError(f"text {problem}")
        http = self.http
        started = time.monotonic()
        try:
            vector, tokens, latency_ms = embed_text(http, self._prefixed(text, input_type))
        except LlamaCppInputError as err:
            if batch_limit(str(err)) is None:
                self.metrics.record("embedding", (time.monotonic() - started) * 1000, success=False)
                raise LlamaCppInputError(f"text rejected by the server: {err}") from None
            # Longer than one server batch: the batch path splits it on token boundaries.
            self._lower_limit(batch_limit(str(err)))
            return self.embed_batch([text], input_type=input_type)[0]
        self.metrics.record("embedding", latency_ms, tokens=tokens, dimension=len(vector))
        return self._result(vector, tokens, latency_ms, 1)

    def embed_query(self, text: str) -> EmbeddingResult:
        """The embedding of a search query (the model's query prefix applied)."""
        return self.embed(text, input_type="query")

    def embed_batch(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        *,
        ids: Sequence[object] | None = None,
        input_type: InputType = "document",
    ) -> list[EmbeddingResult]:
        """Embeddings of `texts`, in input order, `batch_size` texts per request, several in flight
        (`embed_stream`, collected)."""
        return list(self.embed_stream(texts, batch_size, ids=ids, input_type=input_type))

    def embed_stream(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        *,
        ids: Sequence[object] | None = None,
        input_type: InputType = "document",
    ) -> Iterator[EmbeddingResult]:
        """Embeddings of `texts` yielded in input order as their requests complete, `batch_size` texts per
        request, `concurrency` requests in flight and a few more queued.

        A caller that stores results while later ones are embedded keeps the server busy from the first
        text to the last: collecting a chunk before sending the next left server slots idle at each
        chunk's end. `ids` (e.g. event ids, same length as `texts`) name the offending text in errors.
        Every text is checked before anything is sent: an empty or NUL-containing one raises
        `LlamaCppInputError` at the first result.
        """
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"ids has {len(ids)} entries for {len(texts)} texts")
        labels = [_label(index, ids) for index in range(len(texts))]
        for index, text in enumerate(texts):
            problem = input_problem(text)
            if problem:
                raise LlamaCppInputError(f"{labels[index]} {problem}")
        if not texts:
            return
        self.open()
        size = max(1, batch_size or self.batch_size)
        prefixed = [self._prefixed(text, input_type) for text in texts]
        groups = [(start, prefixed[start : start + size]) for start in range(0, len(prefixed), size)]
        if len(groups) == 1:
            yield from self._embed_group(groups[0][1], labels, 0, input_type)
            return
        # Requests are submitted as results are taken, so a slow consumer holds at most this many.
        queued = _QUEUED_PER_SLOT * self.concurrency
        pending: deque[Future[list[EmbeddingResult]]] = deque()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(groups))) as pool_:
            try:
                for start, group in groups:
                    pending.append(pool_.submit(self._embed_group, group, labels, start, input_type))
                    if len(pending) >= queued:
                        yield from pending.popleft().result()
                while pending:
                    yield from pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def _embed_group(
        self, texts: list[str], labels: list[str], start: int, input_type: InputType, retried: bool = False
    ) -> list[EmbeddingResult]:
        http = self.http
        started = time.monotonic()
        try:
            layout = self._layout
            assert layout is not None
            inputs, counts = layout.inputs(tokenize_texts(http, layout, texts), input_type, self._max_tokens)
            answer = http.post("/v1/embeddings", embeddings_request(inputs))
            vectors = response_vectors(answer.body, len(inputs))
        except LlamaCppInputError as err:
            self.metrics.record("embedding", (time.monotonic() - started) * 1000, success=False)
            limit = batch_limit(str(err))
            if limit is not None and limit < self._max_tokens and not retried:
                self._lower_limit(limit)
                return self._embed_group(texts, labels, start, input_type, retried=True)
            if len(texts) > 1:
                # Resend one by one so the error names the text the server refuses.
                return [
                    result
                    for offset, text in enumerate(texts)
                    for result in self._embed_group([text], labels, start + offset, input_type, retried)
                ]
            raise LlamaCppInputError(f"{labels[start]} rejected by the server: {err}") from None
        except Exception:
            self.metrics.record("embedding", (time.monotonic() - started) * 1000, success=False)
            raise
        latency_ms = (time.monotonic() - started) * 1000
        self.metrics.record(
            "embedding", latency_ms, tokens=sum(len(tokens) for tokens in inputs), dimension=len(vectors[0])
        )
        results: list[EmbeddingResult] = []
        cursor = 0
        for count in counts:
            parts = inputs[cursor : cursor + count]
            vector = (
                vectors[cursor]
                if count == 1
                else pool(vectors[cursor : cursor + count], [len(p) for p in parts])
            )
            results.append(self._result(vector, sum(len(p) for p in parts), latency_ms, count))
            cursor += count
        return results

    def _lower_limit(self, limit: int | None) -> None:
        with self._limit_lock:
            if limit is not None and 0 < limit < self._max_tokens:
                self._max_tokens = limit

    def _result(self, vector: list[float], tokens: int, latency_ms: float, chunks: int) -> EmbeddingResult:
        if len(vector) != self._dimension:
            raise LlamaCppResponseError(f"got a {len(vector)}-d vector from a {self._dimension}-d server")
        return EmbeddingResult(tuple(vector), len(vector), tokens, latency_ms, chunks)


def _label(index: int, ids: Sequence[object] | None) -> str:
    return f"text {index}" + (f" (event {ids[index]!r})" if ids is not None else "")
