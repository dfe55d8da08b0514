"""The gate every model answer passes before it is stored: a pattern must be specific, grounded in the
events it cites, and distinct from the other patterns of its cluster.

A small base model fills the slots a schema offers: titles such as `Test 3: Test 3`, `1.1` or `The first
thing I did was`, words copied from the prompt, three patterns with the same evidence. Each rule below
names one such failure; a rejected pattern is never stored (the cluster is asked again once, then given
an extractive pattern built from its own events, see `extractive_pattern.py`).
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from athena_assets.knowledge.cluster_prompt import EXAMPLE_WORDS, instruction_text
from athena_assets.knowledge.clustering import PatternDraft
from athena_assets.knowledge.stop_words import stop_words

_WORD = re.compile(r"[a-z][a-z0-9_\-]{2,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Words that turn a statement into its opposite: "No longer takes free ports" from events saying tests
# now take free ports. A description may negate only where its evidence does.
_NEGATION = re.compile(r"\b(?:no|not|never|without|cannot|nor)\b|n't\b", re.IGNORECASE)
_SUFFIXES = ("ing", "ed", "es", "s")
# Numbered or ordinal slot-fillers: "Test 3", "Pattern 2", "1.1", "3. ...", "The third thing I did".
_PLACEHOLDER = re.compile(
    r"""^\W*(?:
        (?:test|pattern|title|example|item|note|event|step|thing|entry|point|e)\s*\d+\b
      | \d+(?:[.)]\d*)*\s*(?:[.):]|$)
      | (?:the\s+)?(?:first|second|third|fourth|fifth|next|last|other)\s+(?:thing|pattern|step|one|item)\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_GENERIC = {
    "pattern",
    "patterns",
    "title",
    "summary",
    "events",
    "event",
    "memory",
    "other",
    "none",
    "unknown",
}
# Words of the prompt's frame: a title made only of them describes the task, not the events.
# Whether the evidence events (texts) support a statement: True, False, or None for no judgement.
Judge = Callable[[Sequence[str], str], bool | None]
_PROMPT_WORDS = frozenset(_WORD.findall(instruction_text().lower()))


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning: lower case, three letters or more, no stop words."""
    stops = stop_words()
    return {word for word in _WORD.findall(text.lower()) if word not in stops}


def _stem(word: str) -> str:
    """`word` without one common English suffix, so "takes", "taking" and "take" compare equal."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    # "take" and "tak(es)": a silent final e goes too.
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def stems(text: str) -> set[str]:
    """The stems of the content words of `text` (see `content_words`)."""
    return {_stem(word) for word in content_words(text)}


def sentences(text: str) -> list[str]:
    """The sentences of `text`."""
    return _SENTENCE_END.split(text.strip())


def mostly_known(text: str, known: set[str]) -> bool:
    """Whether at least half the content words of `text` (stems) are among `known` (true of none)."""
    words = stems(text)
    return 2 * len(words & known) >= len(words)


def ungrounded_sentence(description: str, evidence_words: set[str]) -> str | None:
    """The first sentence of `description` whose content words are mostly absent from the evidence
    (a claim the events do not make, such as "This is a bug in the latest version"), or None."""
    known = {_stem(word) for word in evidence_words}
    return next((sentence for sentence in sentences(description) if not mostly_known(sentence, known)), None)


def _normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def rejection(
    draft: PatternDraft,
    evidence_texts: Sequence[str],
    accepted: Iterable[PatternDraft],
    judge: Judge | None = None,
) -> str | None:
    """Why `draft` must not be stored, or None when it passes; `evidence_texts` are its evidence events'
    contents, `accepted` the patterns of the same cluster that passed before it.

    The word rules judge grounding by words. Where they refuse a description, a `judge` (a model
    trusted to judge meaning) decides instead: a correct abstraction in other words than the events'
    passes, a claim they do not make stays refused. Only those descriptions cost a judgement."""
    title, description = draft.title.strip(), draft.description.strip()
    title_words, description_words = content_words(title), content_words(description)
    per_event = [content_words(text) for text in evidence_texts]
    evidence_words = set().union(*per_event)
    if _PLACEHOLDER.match(title) or _normalised(title) in _GENERIC:
        return f"placeholder title {title!r}"
    if not title_words - _PROMPT_WORDS:
        return f"title {title!r} only repeats the prompt's words"
    if not title_words & evidence_words:
        return f"title {title!r} shares no word with its evidence"
    copied = sorted((title_words | description_words) & EXAMPLE_WORDS - evidence_words)
    if copied:
        return f"copies {', '.join(copied)} from the prompt's examples"
    # A pattern's title names what its events share, not a detail of one of them.
    if 2 * sum(bool(title_words & words) for words in per_event) < len(per_event):
        return f"title {title!r} names fewer than half of its evidence events"
    if _normalised(description).startswith(_normalised(title)) and len(description_words - title_words) < 2:
        return f"description {description!r} only repeats the title"
    for other in accepted:
        if set(other.evidence_ids) == set(draft.evidence_ids) or _normalised(other.title) == _normalised(
            title
        ):
            return f"repeats the cluster's pattern {other.title!r}"
    words = _ungrounded(title, description, evidence_texts, description_words, evidence_words)
    if words is None or judge is None:
        return words
    verdict = judge(evidence_texts, description)
    if verdict is None:
        return words
    return None if verdict else f"{words}, and the model judges it unsupported"


def _ungrounded(
    title: str,
    description: str,
    evidence_texts: Sequence[str],
    description_words: set[str],
    evidence_words: set[str],
) -> str | None:
    """Why the words of `description` are not grounded in the evidence's, or None."""
    if len(description_words & evidence_words) < 2:
        return f"description {description!r} is not grounded in its evidence"
    claim = ungrounded_sentence(description, evidence_words)
    if claim is not None:
        return f"description says {claim!r}, which its evidence does not"
    negated = _NEGATION.search(f"{title} {description}")
    if negated and not any(_NEGATION.search(text) for text in evidence_texts):
        return f"pattern {title!r} negates what its evidence states"
    return None


def gate(
    drafts: Sequence[PatternDraft], content: Mapping[str, str], judge: Judge | None = None
) -> tuple[list[PatternDraft], list[str]]:
    """The drafts that pass, in order, and the reasons of those that do not (`judge`: see `rejection`)."""
    accepted: list[PatternDraft] = []
    reasons: list[str] = []
    for draft in drafts:
        evidence = [content[event_id] for event_id in draft.evidence_ids]
        reason = rejection(draft, evidence, accepted, judge)
        if reason is None:
            accepted.append(draft)
        else:
            reasons.append(reason)
    return accepted, reasons
