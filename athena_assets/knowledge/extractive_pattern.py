"""The extractive pattern: what a cluster says, built from its own events when the model's answers do
not pass the gate. Grounded by construction, it never invents a word.

- title: the cluster's most distinctive key phrases, phrases of up to four words that many of its
  events share and the rest of the window's events rarely use (document frequency against inverse
  document frequency, as TF-IDF weighs them);
- description: the first sentence of the most central event;
- kind: from the events' types (`pattern_kind.py`: preferences a preference, decisions a decision,
  errors with fixes a problem and its solution, errors alone a pitfall, commands a procedure), else a fact;
- confidence: from the cluster's size; evidence: every event shown to the model.
"""

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

from athena_assets.knowledge.cluster_prompt import CONFIDENCE_LEVELS
from athena_assets.knowledge.clustering import PatternDraft
from athena_assets.knowledge.pattern_kind import kind_of
from athena_assets.knowledge.stop_words import stop_words

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_\-./]*[A-Za-z0-9]|[A-Za-z]")
# A phrase never spans a clause: punctuation other than inside a token ends it.
_CLAUSE_END = re.compile(r"[,;:()!?\[\]\"]|\.(?=\s|$)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
# The only stop words a phrase may hold inside it: "timeout of the fixture", "port in use".
_CONNECTORS = {"of", "in", "on", "for", "to", "with", "the", "a"}
MAX_PHRASE_WORDS = 4


def _phrases(text: str) -> dict[str, str]:
    """{lower-case phrase: its first spelling} of the runs of 1-4 words within one clause that neither
    start nor end with a stop word, nor hold one but a connector."""
    found: dict[str, str] = {}
    for clause in _CLAUSE_END.split(text):
        tokens = _TOKEN.findall(clause)
        stops = stop_words()
        lowered = [token.lower() for token in tokens]
        for start in range(len(tokens)):
            for length in range(1, MAX_PHRASE_WORDS + 1):
                words = lowered[start : start + length]
                if len(words) < length:
                    break
                inner = words[1:-1]
                if words[0] in stops or words[-1] in stops or len(words[-1]) < 3:
                    continue
                if any(word in stops and word not in _CONNECTORS for word in inner):
                    continue
                found.setdefault(" ".join(words), " ".join(tokens[start : start + length]))
    return found


def key_phrases(cluster_texts: Sequence[str], window_texts: Sequence[str], count: int = 2) -> list[str]:
    """Up to `count` phrases that name what `cluster_texts` share, most distinctive first, no two sharing
    a word; weighed by how many cluster texts hold them times how rare they are in `window_texts`."""
    in_cluster: Counter[str] = Counter()
    spelling: dict[str, str] = {}
    for text in cluster_texts:
        phrases = _phrases(text)
        in_cluster.update(phrases.keys())
        for phrase, spelt in phrases.items():
            spelling.setdefault(phrase, spelt)
    in_window: Counter[str] = Counter()
    for text in window_texts:
        in_window.update(phrase for phrase in _phrases(text) if phrase in in_cluster)
    total = max(len(window_texts), len(cluster_texts))

    def weight(phrase: str) -> float:
        idf = math.log((1 + total) / (1 + max(in_window[phrase], in_cluster[phrase]))) + 1
        # A longer phrase held by as many events says more: a mild bonus per extra word.
        return in_cluster[phrase] * idf * (1 + 0.25 * (phrase.count(" ")))

    # A key phrase stands in at least half of the cluster's events (two at the least).
    needed = max(2, math.ceil(len(cluster_texts) / 2))
    chosen: list[str] = []
    used: set[str] = set()
    for phrase in sorted(in_cluster, key=lambda p: (-weight(p), p)):
        words = set(phrase.split()) - _CONNECTORS
        # A phrase a quarter of the whole window uses ("session note", "again") names no theme.
        common = total >= 8 and in_window[phrase] > total / 4 and in_window[phrase] > in_cluster[phrase]
        # After the first, only phrases of several words: a lone word rarely adds to a title.
        if in_cluster[phrase] < needed or words & used or common or (chosen and " " not in phrase):
            continue
        chosen.append(spelling[phrase])
        used |= words
        if len(chosen) == count:
            break
    return chosen


def _first_sentence(text: str, limit: int) -> str:
    sentence = _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def extractive_pattern(
    shown_ids: Sequence[str],
    by_centrality: Sequence[str],
    content: Mapping[str, str],
    event_types: Mapping[str, str | None],
    title_chars: int,
    description_chars: int,
) -> PatternDraft:
    """The pattern of the events `shown_ids` (`by_centrality` orders them, most central first)."""
    central = next(event_id for event_id in by_centrality if event_id in set(shown_ids))
    phrases = key_phrases([content[event_id] for event_id in shown_ids], list(content.values()))
    title = ", ".join(phrases) if phrases else _first_sentence(content[central], title_chars)
    title = title[:1].upper() + title[1:]
    if len(title) > title_chars:
        title = title[: title_chars - 1].rstrip() + "…"
    size = len(shown_ids)
    level = "high" if size >= 6 else "medium" if size >= 4 else "low"
    return PatternDraft(
        title=title,
        description=_first_sentence(content[central], description_chars),
        kind=kind_of([event_types.get(event_id) for event_id in shown_ids]) or "fact",
        confidence=CONFIDENCE_LEVELS[level],
        evidence_ids=tuple(shown_ids),
        method="extractive",
    )
