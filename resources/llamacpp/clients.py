"""The llama.cpp clients in one import: the two resources, their results, errors and health helper.

`from resources.llamacpp.clients import LlamaCppEmbeddingResource, LlamaCppReasoningResource, check_health`.
"""

from __future__ import annotations

from resources.llamacpp.base import LlamaCppResourceBase, check_health
from resources.llamacpp.embedding import EmbeddingResult, LlamaCppEmbeddingResource
from resources.llamacpp.http import (
    LlamaCppAuthError,
    LlamaCppConfigError,
    LlamaCppError,
    LlamaCppInputError,
    LlamaCppOutputError,
    LlamaCppResponseError,
    LlamaCppUnavailableError,
)
from resources.llamacpp.reasoning import PATTERNS_SCHEMA, LlamaCppReasoningResource, ReasoningResult

__all__ = [
    "PATTERNS_SCHEMA",
    "EmbeddingResult",
    "LlamaCppAuthError",
    "LlamaCppConfigError",
    "LlamaCppEmbeddingResource",
    "LlamaCppError",
    "LlamaCppInputError",
    "LlamaCppOutputError",
    "LlamaCppReasoningResource",
    "LlamaCppResourceBase",
    "LlamaCppResponseError",
    "LlamaCppUnavailableError",
    "ReasoningResult",
    "check_health",
]
