"""One /v1/embeddings request for one text, over `LlamaCppHttp` alone: the single-text path of the
embedding resource, and what `athena recall` uses to embed its query without loading Dagster."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from resources.llamacpp.http import LlamaCppHttp, LlamaCppResponseError


def embeddings_request(inputs: str | list[Any]) -> dict[str, Any]:
    """The body of a /v1/embeddings request for `inputs` (a text, or a list of texts or token ids).
    Vectors are asked as base64 float32: decoding 384 floats per text from JSON text took more client
    CPU than anything else in a backfill, on cores the server needs."""
    return {"input": inputs, "encoding_format": "base64"}


def _vector(embedding: Any) -> list[float]:
    """One answer's vector: base64 float32 (as asked), or a JSON list from a server that ignores the
    encoding asked for."""
    if not isinstance(embedding, str):
        return embedding
    try:
        raw = base64.b64decode(embedding, validate=True)
    except binascii.Error:
        raise LlamaCppResponseError("/v1/embeddings answered an embedding that is not base64") from None
    if len(raw) % 4:
        raise LlamaCppResponseError(f"/v1/embeddings answered {len(raw)} bytes, not float32 values")
    return np.frombuffer(raw, dtype="<f4").tolist()


def response_vectors(body: Any, expected: int) -> list[list[float]]:
    """The vectors of a /v1/embeddings answer, ordered by their `index`."""
    try:
        data = sorted(body["data"], key=lambda item: item["index"])
        vectors = [_vector(item["embedding"]) for item in data]
    except (KeyError, TypeError):
        raise LlamaCppResponseError("/v1/embeddings answered without data[].embedding") from None
    if len(vectors) != expected:
        raise LlamaCppResponseError(f"/v1/embeddings returned {len(vectors)} vectors for {expected} inputs")
    return vectors


def embed_text(http: LlamaCppHttp, text: str) -> tuple[list[float], int, float]:
    """(vector, tokens, latency in ms) of `text` exactly as given (any model prefix already applied).
    A text longer than one server batch is refused with `LlamaCppInputError`."""
    answer = http.post("/v1/embeddings", embeddings_request(text))
    tokens = int(answer.body.get("usage", {}).get("prompt_tokens", 0))
    return response_vectors(answer.body, 1)[0], tokens, answer.latency_ms
