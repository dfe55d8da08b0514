"""Knowledge that changes: whether newer events replace what a stored pattern says.

"Moved the Redis cache from port 6391 to 6392", "Replaced black with ruff format", "Reversed the feature
flag decision": the older pattern is no longer true, and must be closed rather than reinforced or left
current beside its replacement. Two steps decide it:

1. Words, free: a change named outright ("from 6391 to 6392", "replaced black with ruff", "detailed
   answers instead of short ones", "dropped LaunchDarkly") decides by itself, for the pattern whose
   value it names. Such an event is enough on its own: where no cluster holds it (its subject's events
   too unlike to cluster), consolidation makes it a cluster of one when it names a change of a current
   pattern (`consolidate_day`). Otherwise the newer events must share a content word with the old
   statement (the same subject) and carry a change cue (a verb of change such as switched, moved,
   replaced, reverted, upgraded, or "now", "instead", "no longer") or a number the old statement never
   had (numbers that are all the old statement's own restate it). A verb that moves a quantity (raised,
   lowered, upgraded) counts only where a value is named: "raised the fixture timeout" after "pytest timed
   out waiting for postgres" fixes an incident. A repeated statement carries neither and is never asked
   about, so reinforcing costs nothing. The latest word wins: a newer event after the last change that
   gives the old value again (latency above 200 ms, then "back under 50 ms") leaves the old pattern true,
   and so does a new pattern whose own words give it (`supersessions`).
2. Meaning, one short question, where words cannot decide: a model trusted to judge (`judges_support`)
   is asked under a yes/no schema whether the newer events give another value for the same setting or
   choice than the old pattern's latest two events (its own words, not the model's description, whose
   added detail hid changes). `benchmarks/change_judge.py` measures the question against hand labels. A
   model not trusted to judge falls back on the words alone, and only on the strongest cues
   (`_STRONG_CUES`).

`benchmarks/knowledge_changes.py` measures both against a history whose changes are known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime

import numpy as np

from athena_assets.knowledge.ask_model import Prompting
from athena_assets.knowledge.clustering import Cluster, PatternDraft
from athena_assets.knowledge.gate import stems
from athena_assets.knowledge.stop_words import stop_words
from resources.memory.pattern_records import KnownPattern, Supersession
from resources.memory.pattern_store import PatternStore

CHANGE_VERSION = "3"
SYSTEM = "You compare notes about the same project. Answer with JSON only."
_QUESTION = (
    "Old note: {statement}\nNewer notes:\n{events}\n\n"
    "Do the newer notes give a different value for the same setting or choice as the old note (for "
    "example another number, port, version, weekday, tool or preference)? Repeating the same value is "
    "not different; a different topic is not different."
)
SCHEMA = {
    "type": "object",
    "properties": {"different": {"type": "boolean"}},
    "required": ["different"],
    "additionalProperties": False,
}
# A number stands alone: "eu-west-1" or "utf-8" name things, they are no values.
_NUMBER = re.compile(r"(?<![\w-])\d+(?:[.:]\d+)*(?![\w-])")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|(?<![\w-])\d+(?:[.:]\d+)*(?![\w-])")
_NO_LONGER = re.compile(r"\bno longer\b", re.IGNORECASE)
# A change named outright: "from 6391 to 6392", "from rq to celery", "replaced black with ruff".
# A token may hold dots inside ("3.11", "settings.toml") but never ends with one: a term stops at the
# end of its sentence ("... so reverted it. Left a TODO" gives up "it", not "left").
_TERM_WORD = r"[\w\-]+(?:\.[\w\-]+)*"
_TERM = rf"({_TERM_WORD}(?:\s+{_TERM_WORD})?)"
_STATED = (
    re.compile(rf"\bfrom\s+{_TERM}\s+to\s+{_TERM}", re.IGNORECASE),
    re.compile(rf"\breplaced\s+{_TERM}\s+with\s+{_TERM}", re.IGNORECASE),
)
# The new value first: "now want detailed answers instead of short ones", "use ruff instead of black".
_INSTEAD = re.compile(rf"\binstead\s+of\s+{_TERM}", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[.;:!?]")
# A value given up outright: "dropped LaunchDarkly", "removed black from pre-commit".
_GIVEN_UP = re.compile(
    rf"\b(?:dropped|abandoned|removed|reverted|retired)\s+(?:{_TERM_WORD}\s+){{0,2}}{_TERM_WORD}",
    re.IGNORECASE,
)
# Without a judge, only these decide: each names a replacement outright.
_STRONG_CUES = frozenset(
    {"switched", "replaced", "migrated", "reverted", "reversed", "instead", "dropped", "abandoned"}
)
_CUES = _STRONG_CUES | frozenset(
    {
        "switch", "switching", "replace", "replacing", "moved", "move", "changed", "change", "migrate",
        "revert", "reverse", "drop", "removed", "upgraded", "upgrade", "downgraded", "raised", "lowered",
        "reduced", "increased", "bumped", "now", "anymore", "stopped", "mind",
    }
)  # fmt: skip
# Cues that move a quantity: they change a value only where one is named, by the old statement or by
# the new text ("raised the postgres fixture timeout" after "pytest timed out waiting for postgres" fixes
# an incident; it changes no value the old statement holds).
_QUANTITY_CUES = frozenset({"raised", "lowered", "reduced", "increased", "bumped", "upgraded", "downgraded"})
_TO_VALUE = re.compile(r"\bto\s+\w", re.IGNORECASE)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def statement(old: KnownPattern) -> str:
    """Everything a stored pattern says: its title, description and latest evidence."""
    return " ".join([old.title, old.description, *old.recent_evidence])


def _instead(text: str) -> list[tuple[str, str]]:
    """(B, A) of each "B instead of A" in `text`: B is the clause before "instead of", from the start
    of its sentence or clause. Found by the words "instead of" first, so a long text without them costs
    one scan (a pattern starting with the clause backtracked over every position)."""
    pairs = []
    for match in _INSTEAD.finditer(text):
        before = text[: match.start()]
        starts = [end.end() for end in _CLAUSE_END.finditer(before)]
        pairs.append((before[starts[-1] if starts else 0 :], match.group(1)))
    return pairs


def names_change(text: str) -> bool:
    """Whether `text` names some change outright ("from A to B", "replaced A with B", "B instead of A",
    "dropped A")."""
    return any(pattern.search(text) for pattern in (*_STATED, _INSTEAD, _GIVEN_UP))


def cue(old_text: str, new_texts: Sequence[str]) -> bool:
    """Whether the newer texts could state a change of `old_text`: a word of its subject, and a strong
    cue, or else a change cue or a number it lacks, where the numbers they give are not only its own
    ("exports up to 60 seconds now pass" after the timeout became 60 seconds restates the new value)."""
    joined = " ".join(new_texts)
    if not stems(joined) & stems(old_text):
        return False
    # A cue the old text uses too is part of what it says ("switch the editor to dark mode" again).
    new_words = _words(joined) - (_words(old_text) & _CUES)
    if new_words & _STRONG_CUES:
        return True
    numbers = {word for word in new_words if _NUMBER.fullmatch(word)}
    old_numbers = set(_NUMBER.findall(old_text))
    if numbers and numbers <= old_numbers:
        return False
    cues = new_words & _CUES
    if not old_numbers and not numbers and not _TO_VALUE.search(joined):
        cues -= _QUANTITY_CUES
    return bool(cues or _NO_LONGER.search(joined) or numbers - old_numbers)


def restates(old_text: str, text: str) -> bool:
    """Whether `text` gives the old statement's value again: its subject, and numbers that are all the old
    statement's own ("recall latency is back under 50 ms" after "... under 50 ms this morning")."""
    numbers = set(_NUMBER.findall(text))
    return bool(numbers) and numbers <= set(_NUMBER.findall(old_text)) and bool(stems(text) & stems(old_text))


def stated_change(old_text: str, text: str) -> bool | None:
    """Whether `text` names a change of `old_text` outright: True when it gives up one of its values
    ("dropped A", "removed A") or moves from one of them to a value new to it ("from A to B", "replaced A
    with B", "B instead of A"); False when the A it moves from is not the old text's (another subject's
    change) or the B is already its own (a restatement); None when it names no change."""
    old = _words(old_text)
    # Giving up a word of the old text, unless the old text says the same (it already records that).
    given_up = [p for p in _GIVEN_UP.findall(text.lower()) if p not in old_text.lower()]
    if any((_words(phrase) - stop_words() - _CUES) & old for phrase in given_up):
        return True
    verdicts = []
    for pattern in _STATED:
        for was_text, now_text in pattern.findall(text):
            was = _words(was_text) - stop_words()
            # The new value is the first word of B that A does not share ("port 6392" after "port 6391").
            now = next((w for w in _WORD.findall(now_text.lower()) if w not in was), None)
            verdicts.append(bool(was & old) and now is not None and now not in old)
    for now_text, was_text in _instead(text):
        # A restatement's clause says nothing the old text does not ("free ports instead of the defaults").
        now_words = _words(now_text) - stop_words() - _CUES - old
        verdicts.append(bool((_words(was_text) - stop_words()) & old) and bool(now_words))
    return any(verdicts) if verdicts else None


def question(old_notes: Sequence[str], events: Sequence[str]) -> tuple[str, str]:
    """(system, prompt) of the question whether `events` give another value than `old_notes`."""
    lines = "\n".join(f"E{n}: {' '.join(text.split())}" for n, text in enumerate(events, start=1))
    old = "\n".join(" ".join(text.split()) for text in old_notes)
    return SYSTEM, _QUESTION.format(statement=old, events=lines)


def old_notes(old: KnownPattern) -> list[str]:
    """What the old pattern says, in its latest two events' words (oldest first), else in the model's:
    a model's description adds detail ("retries are added before lunch") that hid the change from it."""
    return list(reversed(old.recent_evidence[:2])) or [f"{old.title}. {old.description}"]


def replaced(prompting: Prompting, cluster: Cluster, old: KnownPattern, new_texts: Sequence[str]) -> bool:
    """Whether `new_texts` (events the old pattern does not cite) replace what `old` states. Only the
    events with a cue of their own are shown: a restatement of the old value beside the change made the
    model answer that nothing changed."""
    notes = old_notes(old)
    said = statement(old)
    # An event saying exactly what one of the old events said repeats it, whatever its words.
    repeated = {" ".join(text.split()) for text in old.recent_evidence}
    moved = [
        n for n, text in enumerate(new_texts) if " ".join(text.split()) not in repeated and cue(said, [text])
    ]
    changing = [new_texts[n] for n in moved]
    stated = [stated_change(said, text) for text in changing]
    if True in stated:
        return True
    # The latest word wins: a value that moved and came back ("went above 200 ms", then "back under 50
    # ms again") leaves the old statement true. `new_texts` are in the order they happened.
    if moved and any(restates(said, text) for text in new_texts[moved[-1] + 1 :]):
        return False
    # A change named outright of something else, or naming the old value's replacement again, is no
    # change of this pattern; the model judges only what words cannot decide.
    changing = [text for text, verdict in zip(changing, stated, strict=True) if verdict is None]
    if not changing:
        return False
    if not prompting.reasoning.judges_support:
        return bool(set().union(*map(_words, changing)) & _STRONG_CUES)
    system, prompt = question(notes, changing)
    answer = prompting.yes_no(cluster, system, prompt, SCHEMA, f"change-{CHANGE_VERSION}")
    return isinstance(answer, dict) and answer.get("different") is True


def supersession(
    prompting: Prompting,
    cluster: Cluster,
    old: KnownPattern,
    evidence_ids: Sequence[str],
    content: Mapping[str, str],
    occurred_at: Mapping[str, datetime],
) -> Supersession | None:
    """How a new pattern citing `evidence_ids` replaces `old`, or None when it does not: the change is
    dated by the first of its events that `old` does not cite and that carries a change cue (else the
    first of them)."""
    new_ids = sorted(
        (i for i in dict.fromkeys(evidence_ids) if i not in old.evidence_ids and i in content),
        key=lambda i: (occurred_at[i], i),
    )
    if not replaced(prompting, cluster, old, [content[i] for i in new_ids]):
        return None
    said = statement(old)
    first = next((i for i in new_ids if cue(said, [content[i]])), new_ids[0])
    return Supersession(old.pattern_id, occurred_at[first], first)


def supersessions(
    prompting: Prompting,
    cluster: Cluster,
    draft: PatternDraft,
    vectors: tuple[np.ndarray, np.ndarray],
    store: PatternStore,
    day: date,
    model_sha256: str,
    content: Mapping[str, str],
    occurred_at: Mapping[str, datetime],
) -> tuple[Supersession, ...]:
    """The current patterns of days before `day` that `draft` replaces: those about its subject (its text
    vector or its evidence centroid, `vectors`, as close as `subject_similarity`) whose statement the
    draft's newer events make no longer true, unless the draft itself gives their value again."""
    text_vector, centroid = vectors
    threshold = prompting.config.subject_similarity
    rivals = store.subject_patterns(text_vector, centroid, day, model_sha256, threshold)
    # A draft that gives the rival's value again restates it, whatever its newer events went through
    # ("recall latency is back under 50 ms" after a spell above 200 ms).
    said = f"{draft.title}. {draft.description}"
    found = (
        supersession(prompting, cluster, rival, draft.evidence_ids, content, occurred_at)
        for rival in rivals
        if not restates(statement(rival), said)
    )
    return tuple(change for change in found if change is not None)
