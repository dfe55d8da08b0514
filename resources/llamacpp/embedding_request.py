"""One /v1/embeddings request for one text, over `LlamaCppHttp` alone: the single-text path of the
embedding resource, and what `athena recall` uses to embed its query without loading Dagster."""

from __future__ import annotations

from typing import Any

from resources.llamacpp.http import LlamaCppHttp, LlamaCppResponseError


def response_vectors(body: Any, expected: int) -> list[list[float]]:
    """The vectors of a /v1/embeddings answer, ordered by their `index`."""
    try:
        data = sorted(body["data"], key=lambda item: item["index"])
        vectors = [item["embedding"] for item in data]
    except (KeyError, TypeError):
        raise LlamaCppResponseError("/v1/embeddings answered without data[].embedding") from None
    if len(vectors) != expected:
        raise LlamaCppResponseError(f"/v1/embeddings returned {len(vectors)} vectors for {expected} inputs")
    return vectors


def embed_text(http: LlamaCppHttp, text: str) -> tuple[list[float], int, float]:
    """(vector, tokens, latency in ms) of `text` exactly as given (any model prefix already applied).
    A text longer than one server batch is refused with `LlamaCppInputError`."""
    answer = http.post("/v1/embeddings", {"input": text})
    tokens = int(answer.body.get("usage", {}).get("prompt_tokens", 0))
    return response_vectors(answer.body, 1)[0], tokens, answer.latency_ms
