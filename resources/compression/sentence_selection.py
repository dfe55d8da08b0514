"""Query-aware extractive compression: keep the sentences closest to the instruction, in their order.

The fallback of `PromptCompressorResource` when LLMLingua-2 cannot run, and its coarse first pass on
contexts too long for the model. It never rewrites a sentence, it only chooses which ones stay:

1. The context is split into sentence units (`resources.compression.text_units`).
2. Each unit gets a score: the cosine similarity of its embedding to the query's (the instruction and
   question, embedded as a search query). Without a query the centroid of all units stands in for it,
   which keeps the sentences most typical of the context. Without embeddings (none configured, or the
   server failed) the score is the TF-IDF cosine of words instead, and the result says so.
3. Best score first, a unit is kept if it still fits the token budget; one that does not fit is skipped
   and smaller ones after it may still fit, so the budget is filled closely.
4. The kept units are joined in their original order.

Splitting, counting and embedding are linear in the context's length and ranking is one sort of the
units, so a 100k-token context costs about a hundred times a 1k-token one.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from resources.compression.text_units import TextUnit, join_units, subset
from resources.compression.token_counting import cl100k, count_tokens
from resources.numeric import unit_rows, within_budget

if TYPE_CHECKING:
    from resources.llamacpp.embedding import LlamaCppEmbeddingResource

Scoring = Literal["embeddings", "lexical"]

_WORD = re.compile(r"\w+")


class SentenceEmbedder(Protocol):
    """What the extractive compressor needs from an embedding model."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of a search query (the model's query prefix applied)."""
        ...


@dataclass(frozen=True)
class ResourceEmbedder:
    """`SentenceEmbedder` over the llama.cpp embedding resource (batched, query prefix applied)."""

    resource: LlamaCppEmbeddingResource

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One embedding per text, from `embed_batch`."""
        results = self.resource.embed_batch([_clean(text) for text in texts])
        return np.asarray([result.embedding for result in results], dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """The query's embedding, from `embed_query`."""
        return np.asarray(self.resource.embed_query(_clean(text)).embedding, dtype=np.float32)


@dataclass(frozen=True)
class Extract:
    """The outcome of one extraction: the text, the units kept and how they were scored."""

    text: str
    kept: tuple[TextUnit, ...]
    scoring: Scoring
    note: str | None = None


def _clean(text: str) -> str:
    # The embedding client refuses NUL characters; they carry no meaning for ranking anyway.
    return text.replace("\x00", " ")


def embedding_scores(units: Sequence[TextUnit], query: str, embedder: SentenceEmbedder) -> np.ndarray:
    """Cosine similarity of every unit to the query (or to the units' centroid when there is none)."""
    vectors = unit_rows(embedder.embed_documents([unit.text for unit in units]))
    target = embedder.embed_query(query) if query.strip() else vectors.mean(axis=0)
    return vectors @ unit_rows(np.asarray(target, dtype=np.float32))


def lexical_scores(units: Sequence[TextUnit], query: str) -> np.ndarray:
    """TF-IDF cosine of every unit's words to the query's (or to the whole context's without a query)."""
    bags = [Counter(_WORD.findall(unit.text.lower())) for unit in units]
    frequency: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for bag in bags:
        frequency.update(bag.keys())
        totals.update(bag)
    idf = {word: math.log((1 + len(bags)) / (1 + count)) + 1 for word, count in frequency.items()}
    query_bag = Counter(_WORD.findall(query.lower())) or totals

    def weigh(bag: Counter[str]) -> dict[str, float]:
        return {word: count * idf.get(word, 1.0) for word, count in bag.items()}

    target = weigh(query_bag)
    target_norm = math.sqrt(sum(value * value for value in target.values())) or 1.0
    scores = np.zeros(len(units), dtype=np.float32)
    for index, bag in enumerate(bags):
        weights = weigh(bag)
        norm = math.sqrt(sum(value * value for value in weights.values())) or 1.0
        scores[index] = sum(value * target.get(word, 0.0) for word, value in weights.items()) / (
            norm * target_norm
        )
    return scores


def _cost(unit: TextUnit) -> int:
    # A line break between kept units is a token of its own in cl100k; a space merges into the next word.
    return unit.tokens + (1 if unit.after == "\n" else 0)


def select(units: Sequence[TextUnit], scores: np.ndarray, budget: int) -> list[int]:
    """Indices of the units kept within `budget` tokens, best score first, returned in original order."""
    best_first = np.argsort(-scores, kind="stable").tolist()
    kept = within_budget([_cost(units[index]) for index in best_first], budget)
    return sorted(best_first[position] for position in kept)


def _truncated(unit: TextUnit, budget: int) -> TextUnit:
    tokens = cl100k().encode_ordinary(unit.text)[:budget]
    text = cl100k().decode(tokens).strip()
    return TextUnit(text, count_tokens(text), unit.after)


def extract(units: Sequence[TextUnit], query: str, budget: int, embedder: SentenceEmbedder | None) -> Extract:
    """The units that best match `query` within `budget` cl100k tokens, in their original order.

    Embeddings rank the units when `embedder` is given and works; otherwise words do (see the module
    docstring) and `note` says why. When not even one unit fits, the best one is cut to the budget.
    """
    if not units or budget <= 0:
        return Extract("", (), "embeddings" if embedder else "lexical")
    scoring: Scoring = "lexical"
    note: str | None = "no embedding resource is configured; sentences were ranked by shared words"
    scores: np.ndarray | None = None
    if embedder is not None:
        try:
            scores = embedding_scores(units, query, embedder)
            scoring, note = "embeddings", None
        # Any embedding failure (server down, refused input) must degrade the ranking, not the prompt.
        except Exception as err:
            note = (
                f"the embedding server failed ({type(err).__name__}: {err}); ranked sentences by shared words"
            )
    if scores is None:
        scores = lexical_scores(units, query)
    kept = select(units, scores, budget)
    if not kept:
        best = int(np.argmax(scores))
        chosen = [_truncated(units[best], budget)]
        return Extract(chosen[0].text, tuple(chosen), scoring, note)
    # Joining can merge or split a token at a seam; drop the weakest kept units until the count fits.
    text = join_units(subset(units, kept))
    while len(kept) > 1 and count_tokens(text) > budget:
        kept.remove(min(kept, key=lambda index: scores[index]))
        text = join_units(subset(units, kept))
    return Extract(text, tuple(subset(units, kept)), scoring, note)
