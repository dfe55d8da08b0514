"""The API of the system this project grew from, unchanged for its users: `LocalLLMClient` (async
`embed`, `embed_batch`, `reason`, `compress_prompt`, `check_health`, `consolidate_with_reasoning`) and
`get_monitor()` (`record_*`, `get_all_stats()` with the seed's field names), over this project's
resources. Not loaded by Dagster.
"""

from athena_assets.compat.llm_client import (
    CompressionResult,
    EmbeddingResult,
    LocalLLMClient,
    ReasoningResult,
    get_llm_client,
)
from athena_assets.compat.monitor import ModelPerformanceMonitor, get_monitor

__all__ = [
    "CompressionResult",
    "EmbeddingResult",
    "LocalLLMClient",
    "ModelPerformanceMonitor",
    "ReasoningResult",
    "get_llm_client",
    "get_monitor",
]
