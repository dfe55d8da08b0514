"""Tiers (b) and (c): the embedding resource against the session's real llama-server (all-MiniLM-L6-v2)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import dagster as dg
import httpx
import numpy as np
import pytest

from athena_assets.defs.observability.observations import stats_observation
from athena_assets_tests.helpers import StackHandle
from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.embedding_tokens import split_tokens
from resources.llamacpp.http import LlamaCppConfigError, LlamaCppInputError

WORDS = [
    *("memory", "agent", "user", "prefers", "concise", "answers", "dark", "mode", "deploy", "failed"),
    *("staging", "migration", "postgres", "vector", "recall", "meeting", "notes", "budget", "latency"),
    *("retry", "timeout", "summary", "preference", "habit", "weekly", "report", "schedule"),
]


def varied_texts(count: int, seed: int = 3) -> list[str]:
    """Deterministic texts of 1 to ~120 words, some with punctuation, digits and unicode."""
    rng = random.Random(seed)
    extras = ["", " café", " 東京", " 🚀", " naïve résumé", " 42%", "\ttabbed", " (note)"]
    return [
        f"{index}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 120))) + rng.choice(extras)
        for index in range(count)
    ]


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


@pytest.fixture
def embeddings(stack: StackHandle) -> Iterator[LlamaCppEmbeddingResource]:
    resource = LlamaCppEmbeddingResource(urls=[stack.embeddings_url], embedding_dim=384, batch_size=16)
    with resource.use_metrics(MetricsCollector()) as opened:
        yield opened


@pytest.mark.timeout(240)
def test_batch_keeps_order_and_matches_one_by_one(embeddings: LlamaCppEmbeddingResource):
    texts = varied_texts(200)

    batch = embeddings.embed_batch(texts)
    single = [embeddings.embed(text) for text in texts]

    assert len(batch) == len(texts)
    for index, (together, alone) in enumerate(zip(batch, single, strict=True)):
        assert cosine(together.embedding, alone.embedding) > 0.999, f"text {index} differs"
        # Both token counts are the server's: /tokenize for the batch, usage.prompt_tokens for one text.
        assert together.tokens == alone.tokens
        assert together.dimension == 384
        assert not together.split
    # Several batched requests went out (200 texts / 16 per request), not one per text.
    assert embeddings.metrics.get_stats("embedding")["total_calls"] == 13 + 200


@pytest.mark.timeout(120)
def test_input_longer_than_a_server_batch_is_split_and_pooled(embeddings: LlamaCppEmbeddingResource):
    long_text = " ".join(WORDS[index % len(WORDS)] for index in range(1400))
    assert embeddings.count_tokens(long_text) > 512

    alone = embeddings.embed(long_text)
    batch = embeddings.embed_batch(["a short one", long_text, "another short one"])

    assert alone.split and alone.chunks >= 3
    assert alone.tokens > 512
    assert np.linalg.norm(alone.embedding) == pytest.approx(1.0, abs=1e-6)
    assert [result.chunks for result in batch] == [1, alone.chunks, 1]
    assert cosine(batch[1].embedding, alone.embedding) > 0.999
    # The pooled vector stays close to the vector of its first part (same topic, same words).
    head = embeddings.embed(" ".join(long_text.split()[:300]))
    assert cosine(alone.embedding, head.embedding) > 0.8


@pytest.mark.timeout(120)
def test_too_high_max_input_tokens_adapts_to_the_servers_batch(stack: StackHandle):
    resource = LlamaCppEmbeddingResource(urls=[stack.embeddings_url], max_input_tokens=4096)
    long_text = "recall " * 900
    with resource:
        result = resource.embed_batch(["first", long_text])[1]
    assert result.split


def test_empty_and_nul_texts_are_refused_with_their_names(embeddings: LlamaCppEmbeddingResource):
    with pytest.raises(LlamaCppInputError, match="empty"):
        embeddings.embed("")
    with pytest.raises(LlamaCppInputError, match=r"text 1 \(event 'evt-2'\) is empty"):
        embeddings.embed_batch(["fine", "   "], ids=["evt-1", "evt-2"])
    with pytest.raises(LlamaCppInputError, match=r"text 2 .*NUL"):
        embeddings.embed_batch(["fine", "also fine", "bad\x00text"])


def test_unicode_emoji_and_control_characters_pass(embeddings: LlamaCppEmbeddingResource):
    texts = [
        "Zoë’s café in 東京 — naïve résumé",
        "🚀🔥 launch day 🎉",
        "tab\there\nnew line\x07bell\x1b[31m",
        "ﷺ ∑ ∞ ≠",
    ]
    results = embeddings.embed_batch(texts)
    assert all(result.dimension == 384 and result.tokens > 2 for result in results)
    for text, result in zip(texts, results, strict=True):
        assert cosine(embeddings.embed(text).embedding, result.embedding) > 0.999


def test_document_and_query_prefixes_are_applied(stack: StackHandle):
    resource = LlamaCppEmbeddingResource(
        urls=[stack.embeddings_url], document_prefix="search_document: ", query_prefix="search_query: "
    )
    text = "user prefers dark mode"
    with resource:
        document = resource.embed_batch([text])[0]
        query = resource.embed_query(text)
        raw = httpx.post(
            f"{stack.embeddings_url}/v1/embeddings", json={"input": f"search_query: {text}"}
        ).json()
        plain = resource.count_tokens(text)
    assert document.tokens == plain + resource.count_tokens("search_document: ", add_special=False)
    assert cosine(query.embedding, tuple(raw["data"][0]["embedding"])) > 0.9999
    assert cosine(document.embedding, query.embedding) < 0.9999


def test_a_wrong_embedding_dim_fails_at_setup_naming_both_numbers(stack: StackHandle):
    with pytest.raises(LlamaCppConfigError, match=r"LLAMACPP_EMBEDDING_DIM=768.*384-dimensional"):
        LlamaCppEmbeddingResource(urls=[stack.embeddings_url], embedding_dim=768).open()
    with pytest.raises(LlamaCppConfigError, match=r"embedding_dim=1024.*384-dimensional"):
        LlamaCppEmbeddingResource(urls=[stack.embeddings_url], model_embedding_dim=1024).open()

    @dg.asset
    def needs_embeddings(embeddings: LlamaCppEmbeddingResource) -> None:
        embeddings.embed("never reached")

    wrong = LlamaCppEmbeddingResource(urls=[stack.embeddings_url], embedding_dim=768)
    result = dg.materialize([needs_embeddings], resources={"embeddings": wrong}, raise_on_error=False)
    assert not result.success
    failures = [event for event in result.all_events if event.is_failure]
    assert any(
        "768" in str(event.event_specific_data) and "384" in str(event.event_specific_data)
        for event in failures
    )


def test_usable_inside_dagster_with_metrics_as_an_observation(stack: StackHandle):
    @dg.asset
    def tiny_embeddings(context, embeddings: LlamaCppEmbeddingResource) -> dg.MaterializeResult:
        results = embeddings.embed_batch(["remember the budget", "user likes tea"], ids=["e1", "e2"])
        context.log_event(stats_observation(context.asset_key, embeddings.metrics.get_stats("embedding")))
        return dg.MaterializeResult(
            metadata={
                "count": len(results),
                "dimension": results[0].dimension,
                "tokens": sum(r.tokens for r in results),
            }
        )

    resource = LlamaCppEmbeddingResource(urls=[stack.embeddings_url], embedding_dim=384)
    result = dg.materialize([tiny_embeddings], resources={"embeddings": resource})

    assert result.success
    materialization = result.asset_materializations_for_node("tiny_embeddings")[0]
    assert materialization.metadata["count"] == dg.MetadataValue.int(2)
    assert materialization.metadata["dimension"] == dg.MetadataValue.int(384)
    observations = [
        event.asset_observation_data.asset_observation for event in result.get_asset_observation_events()
    ]
    assert observations and observations[0].asset_key == dg.AssetKey("tiny_embeddings")
    assert observations[0].metadata["successful_calls"].value >= 1
    assert observations[0].metadata["tokens_processed"].value >= 6


def test_split_tokens_makes_near_equal_parts():
    parts = split_tokens(list(range(1100)), 500)
    assert [len(part) for part in parts] == [367, 367, 366]
    assert [token for part in parts for token in part] == list(range(1100))
    assert split_tokens([1, 2, 3], 5) == [[1, 2, 3]]
