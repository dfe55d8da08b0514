"""Event embeddings: each event's vector from the llama.cpp embedding server, stored in pgvector.

Vectors are keyed by event id and the embedding model's sha256, so a new model re-embeds everything
without losing the old vectors, and an event whose content changed is embedded again. Requests for the
next events stay in flight while a chunk of vectors is written with a binary COPY.
"""

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

import dagster as dg

from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.models.assets import MODEL_FILE_KEYS
from athena_assets.defs.observability.observations import stats_observation
from athena_assets.defs.partitions import daily_partitions, history_backfill_policy, partition_days
from athena_assets.defs.pools import EMBEDDING_POOL
from athena_assets.defs.retries import MODEL_RETRY_POLICY
from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.http import LlamaCppInputError
from resources.memory.event_line import Event
from resources.memory.records import EmbeddingRow, StoredEvent
from resources.memory.store import MemoryStore
from resources.models.files import ModelFilesResource

EMBEDDINGS_CODE_VERSION = "2"  # 2: conversation turns read with their date and speaker
# Vectors stored per COPY. The server does not wait for a chunk to be written: results stream from
# `embed_stream` while the writer thread stores the previous chunk.
CHUNK_EVENTS = 1024
COVERAGE_CHECK = "every_event_has_a_vector"
VALIDITY_CHECK = "vectors_are_valid"


def embed_events(
    events: Sequence[StoredEvent | Event],
    embeddings: LlamaCppEmbeddingResource,
    memory: MemoryStore,
    vectors_key: str,
) -> tuple[int, int]:
    """Embed and store `events` (stored, or just parsed) under `vectors_key` (the model's sha256 and the
    embedding context, `LlamaCppEmbeddingResource.vector_key`), a chunk written while the next is
    embedded; returns (vectors written, tokens embedded)."""
    texts = [embeddings.document(event.content, event.occurred_at, event.metadata) for event in events]
    results = embeddings.embed_stream(texts, ids=[event.id for event in events])
    written = tokens = 0
    pending: Future[int] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgvector-writer") as writer:
        for start in range(0, len(events), CHUNK_EVENTS):
            chunk = events[start : start + CHUNK_EVENTS]
            rows = [
                EmbeddingRow(
                    event.id, vectors_key, event.content_sha256, result.embedding, result.tokens, result.split
                )
                for event, result in zip(chunk, islice(results, len(chunk)), strict=True)
            ]
            tokens += sum(row.tokens for row in rows)
            if pending is not None:
                written += pending.result()
            pending = writer.submit(memory.write_embeddings, rows)
        if pending is not None:
            written += pending.result()
    return written, tokens


@dg.asset(
    group_name="memory",
    kinds={"llama.cpp", "pgvector"},
    owners=["team:athena"],
    partitions_def=daily_partitions,
    backfill_policy=history_backfill_policy,
    code_version=EMBEDDINGS_CODE_VERSION,
    retry_policy=MODEL_RETRY_POLICY,
    pool=EMBEDDING_POOL,
    description=__doc__,
    deps=[episodic_events, MODEL_FILE_KEYS["embedding"]],
    check_specs=[
        dg.AssetCheckSpec(
            COVERAGE_CHECK, asset="event_embeddings", description="Every event has a current vector."
        ),
        dg.AssetCheckSpec(
            VALIDITY_CHECK,
            asset="event_embeddings",
            description="Vectors have the model's width, finite, non-zero.",
        ),
    ],
)
def event_embeddings(
    context: dg.AssetExecutionContext,
    embeddings: LlamaCppEmbeddingResource,
    memory: MemoryStore,
    model_files: ModelFilesResource,
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    embedding_sha256 = model_files.sha256("embedding")
    key = embeddings.vector_key(embedding_sha256)
    run_metrics = MetricsCollector()
    embeddings.use_metrics(run_metrics)
    dimension = embeddings.dimension
    due = memory.events_due_for_embedding(first, last, key)
    total = memory.event_count(first, last)
    context.log.info(f"{first}..{last}: {len(due)} of {total} events due; {embeddings.describe()}")
    started = time.monotonic()
    try:
        written, tokens = embed_events(due, embeddings, memory, key)
    except LlamaCppInputError as err:
        raise dg.Failure(description=f"{first}..{last}: {err}", allow_retries=False) from err
    # Built after the load: bulk-loading then indexing is several times faster than indexing row by row.
    memory.ensure_vector_index(dimension)
    seconds = time.monotonic() - started
    check = memory.embedding_check(first, last, key, dimension)
    context.log_event(stats_observation(context.asset_key, run_metrics.get_stats("embedding")))
    return dg.MaterializeResult(
        metadata={
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "events": dg.MetadataValue.int(total),
            "embedded": dg.MetadataValue.int(written),
            "skipped": dg.MetadataValue.int(total - len(due)),
            "tokens": dg.MetadataValue.int(tokens),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "tokens_per_s": dg.MetadataValue.float(round(tokens / seconds, 1) if seconds > 0 else 0.0),
            "model_sha256": embedding_sha256,
            "vector_key": key,
            "dimension": dg.MetadataValue.int(dimension),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=COVERAGE_CHECK,
                passed=check.missing == 0,
                metadata={
                    "events": dg.MetadataValue.int(check.events),
                    "missing": dg.MetadataValue.int(check.missing),
                    "missing_ids": ", ".join(check.missing_ids) or "none",
                },
            ),
            dg.AssetCheckResult(
                check_name=VALIDITY_CHECK,
                passed=check.wrong_dimension == check.non_finite == check.zero_norm == 0,
                metadata={
                    "wrong_dimension": dg.MetadataValue.int(check.wrong_dimension),
                    "non_finite": dg.MetadataValue.int(check.non_finite),
                    "zero_norm": dg.MetadataValue.int(check.zero_norm),
                },
            ),
        ],
    )
