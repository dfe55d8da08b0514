"""Tier (b): consolidating clusters with the deterministic stand-in clients, without any server or
database: which events cluster, what the model is shown, how its answer maps back, retries and reuse."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import numpy as np

from athena_assets.knowledge import cluster_prompt
from athena_assets.knowledge.ask_model import Prompting
from athena_assets.knowledge.clustering import Cluster, PatternDraft, cluster_events, cluster_key
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.consolidate_day import consolidate_cluster, pattern_text
from athena_assets.knowledge.gate import rejection, ungrounded_sentence
from athena_assets.knowledge.supersession import replaced
from resources.llamacpp.http import LlamaCppOutputError
from resources.llamacpp.standins import HashingEmbedder, ScriptedReasoner
from resources.memory.pattern_records import KnownPattern

EVENTS = {
    "a1": "pytest fixture timed out waiting for the postgres socket in CI",
    "a2": "pytest fixture timed out again waiting for postgres socket on the CI runner",
    "a3": "the postgres socket was not ready when the pytest fixture timed out in CI",
}
PATTERN = {
    "title": "Postgres socket timeouts in pytest fixtures",
    "kind": "problem-solution",
    "description": "The CI fixture times out while waiting for the postgres socket.",
    "confidence": "high",
}


class RememberedAnswers:
    """The pattern store's memory of answers, in a dict (the real one is a table)."""

    def __init__(self) -> None:
        self.kept: dict[str, Any] = {}

    def remembered_answer(self, request_sha256: str) -> Any | None:
        return self.kept.get(request_sha256)

    def remember_answer(self, request_sha256: str, cluster_key: str, version: str, answer: Any, tokens: int):
        self.kept[request_sha256] = answer


def _cluster(by_centrality: tuple[str, ...] = ("a1", "a2", "a3")) -> Cluster:
    return Cluster(cluster_key(sorted(by_centrality)), tuple(sorted(by_centrality)), by_centrality)


def _prompting(reasoner: ScriptedReasoner, **config: Any) -> Prompting:
    return Prompting(ConsolidationConfig(**config), reasoner, RememberedAnswers(), "stand-in model")  # type: ignore[arg-type]


def test_recurring_events_cluster_and_one_offs_stay_alone() -> None:
    texts = {
        **EVENTS,
        "b1": "the user prefers dark mode in the dashboard",
        "b2": "user asked again for dark mode in the dashboard",
        "b3": "dark mode in the dashboard is what the user prefers",
        "x1": "bought coffee beans for the office",
        "x2": "renamed the release branch to main",
    }
    embedder = HashingEmbedder(dimension=256)
    ids = list(texts)
    vectors = np.array([result.embedding for result in embedder.embed_batch(list(texts.values()))])
    clusters = cluster_events(ids, vectors, [True] * len(ids), threshold=0.4, min_size=3)
    assert sorted(cluster.member_ids for cluster in clusters) == [("a1", "a2", "a3"), ("b1", "b2", "b3")]


def test_the_answer_maps_labels_back_to_event_ids_and_drops_unknown_ones() -> None:
    reasoner = ScriptedReasoner(
        lambda prompt, schema: {"patterns": [PATTERN | {"evidence": ["E1", "E3", "E9"]}]}
    )
    outcome, drafts = consolidate_cluster(_cluster(), EVENTS, _prompting(reasoner, constrain_evidence=False))
    [draft] = drafts
    assert draft.title == PATTERN["title"]
    assert draft.evidence_ids == ("a1", "a3")
    assert (outcome.shown, outcome.calls, outcome.evidence_dropped, outcome.failure) == (3, 1, 1, None)
    [prompt] = reasoner.prompts
    assert f"E1: {EVENTS['a1']}" in prompt and f"E3: {EVENTS['a3']}" in prompt


def test_an_unusable_answer_is_retried_once_then_reported_and_every_call_is_counted() -> None:
    answers = iter(
        [LlamaCppOutputError("cut off at max_tokens"), {"patterns": [PATTERN | {"evidence": ["E2"]}]}]
    )
    reasoner = ScriptedReasoner(lambda prompt, schema: next(answers))
    outcome, drafts = consolidate_cluster(_cluster(), EVENTS, _prompting(reasoner))
    assert (outcome.calls, len(drafts), drafts[0].evidence_ids) == (2, 1, ("a2",))
    stats = reasoner.metrics.get_stats("reasoning")
    assert (stats["total_calls"], stats["failed_calls"]) == (2, 1)

    always_bad = ScriptedReasoner(lambda prompt, schema: LlamaCppOutputError("not JSON"))
    failed, [fallback] = consolidate_cluster(_cluster(), EVENTS, _prompting(always_bad))
    assert (failed.calls, failed.failure, failed.method) == (2, "not JSON", "extractive")
    assert fallback.method == "extractive" and set(fallback.evidence_ids) == set(EVENTS)


def test_the_same_request_twice_reuses_the_remembered_answer() -> None:
    reasoner = ScriptedReasoner(lambda prompt, schema: {"patterns": [PATTERN | {"evidence": ["E1"]}]})
    prompting = _prompting(reasoner)
    first, _ = consolidate_cluster(_cluster(), EVENTS, prompting)
    again, drafts = consolidate_cluster(_cluster(), EVENTS, prompting)
    assert (first.reused, again.reused, again.calls, len(reasoner.prompts)) == (False, True, 0, 1)
    assert drafts[0].evidence_ids == ("a1",)


def test_a_small_prompt_budget_shows_the_most_central_events_first() -> None:
    reasoner = ScriptedReasoner(lambda prompt, schema: {"patterns": [PATTERN | {"evidence": ["E1"]}]})
    line = reasoner.count_tokens(f"E1: {EVENTS['a3']}", add_special=False) + 1
    budget = _prompting(reasoner).frame_cost() + line
    shown = _prompting(reasoner, max_prompt_tokens=budget).shown(_cluster(("a3", "a1", "a2")), EVENTS)
    assert shown == ["a3"], "only the most central event fits"


PLACEHOLDERS = [
    {"title": "Test 3", "description": "Test 3: Test 3"},
    {"title": "1.1", "description": "pytest fixture timed out waiting for postgres"},
    {"title": "The first thing I did was", "description": "pytest fixture timed out waiting for postgres"},
    {"title": "Lasting pattern", "description": "A lasting pattern the events show, with a title and kind."},
    {"title": "Weekly report formatting", "description": "The user wants shorter weekly reports in bullets."},
    {
        "title": "Runner",
        "description": "pytest fixture timed out again waiting for postgres on the CI runner",
    },
]


def test_placeholder_answers_never_reach_the_store_an_extractive_pattern_replaces_them() -> None:
    for placeholder in PLACEHOLDERS:
        answer = {"patterns": [PATTERN | placeholder | {"evidence": ["E1", "E2", "E3"]}]}
        reasoner = ScriptedReasoner(lambda prompt, schema, answer=answer: answer)
        outcome, [draft] = consolidate_cluster(
            _cluster(), EVENTS, _prompting(reasoner), {"a1": "error", "a2": "error", "a3": "fix"}
        )
        assert outcome.calls == 2, f"{placeholder['title']!r} is asked again once"
        assert draft.method == "extractive", placeholder
        assert draft.title != placeholder["title"]
        assert draft.kind == "problem-solution"  # errors with a fix
        # Grounded by construction: every word of the title stands in the events.
        words = " ".join(EVENTS.values()).lower()
        assert all(word.lower() in words for word in re.findall(r"[\w-]+", draft.title)), draft.title
        assert draft.description == EVENTS["a1"]


def test_patterns_of_one_cluster_with_the_same_evidence_are_kept_once() -> None:
    second = PATTERN | {"title": "Postgres fixture in CI times out", "evidence": ["E1", "E2"]}
    answer = {"patterns": [PATTERN | {"evidence": ["E2", "E1"]}, second]}
    outcome, drafts = consolidate_cluster(
        _cluster(), EVENTS, _prompting(ScriptedReasoner(lambda p, s: answer))
    )
    assert [draft.title for draft in drafts] == [PATTERN["title"]]
    assert (outcome.method, outcome.discarded) == ("llm", 1)


def test_extractive_patterns_of_one_theme_are_compared_by_their_key_phrases() -> None:
    # Two windows of one theme quote different central events: only the key phrases decide a merge.
    one = PatternDraft("Migration lock", EVENTS["a1"], "pitfall", 0.6, ("a1",), method="extractive")
    other = PatternDraft("Migration lock", EVENTS["a2"], "pitfall", 0.6, ("a2",), method="extractive")
    assert pattern_text(one) == pattern_text(other) == "Migration lock"
    model = PatternDraft("Migration lock", "Staging deploys wait on the lock.", "pitfall", 0.6, ("a1",))
    assert pattern_text(model) == "Migration lock. Staging deploys wait on the lock."


def test_a_base_model_is_asked_by_worked_examples_for_one_pattern_and_copies_are_rejected() -> None:
    schemas: list[dict[str, Any]] = []

    def answer(prompt: str, schema: dict[str, Any] | None) -> Any:
        schemas.append(schema or {})
        return PATTERN | {"evidence": ["E1", "E2", "E3"]}

    reasoner = ScriptedReasoner(answer, prompting="few-shot")
    outcome, [draft] = consolidate_cluster(
        _cluster(), EVENTS, _prompting(reasoner, max_patterns_per_cluster=3)
    )
    [text] = reasoner.prompts
    assert text.startswith(cluster_prompt.FEW_SHOT) and text.endswith(f"E3: {EVENTS['a3']}\nPattern: ")
    # One pattern under the grammar, not a list the base model would fill with copies.
    assert set(schemas[0]["properties"]) == {"title", "kind", "description", "confidence", "evidence"}
    assert schemas[0]["properties"]["evidence"]["items"]["enum"] == ["E1", "E2", "E3"]
    assert (outcome.calls, draft.method, draft.title) == (1, "llm", PATTERN["title"])

    # A description that borrows the examples' subject instead of the events' is not stored.
    copied = PATTERN | {"description": "The user wants British spelling for the postgres fixture in CI."}
    copier = ScriptedReasoner(lambda p, s: copied | {"evidence": ["E1", "E2", "E3"]}, prompting="few-shot")
    rejected, [fallback] = consolidate_cluster(_cluster(), EVENTS, _prompting(copier))
    assert rejected.calls == 2 and "copies british, spelling" in (rejected.failure or "")
    assert fallback.method == "extractive"


def test_a_cluster_of_a_known_pattern_reinforces_it_without_a_call_if_it_still_passes_the_gate() -> None:
    known = KnownPattern(
        "p1", PATTERN["title"], PATTERN["description"], PATTERN["kind"], 0.9, "llm", 3, 3, 0.9
    )
    reasoner = ScriptedReasoner(lambda p, s: LlamaCppOutputError("must not be asked"))
    outcome, [draft] = consolidate_cluster(_cluster(), EVENTS, _prompting(reasoner), known=known)
    assert (outcome.calls, outcome.known, reasoner.prompts) == (0, PATTERN["title"], [])
    assert (draft.title, draft.method, set(draft.evidence_ids)) == (PATTERN["title"], "llm", set(EVENTS))
    assert "reinforces the known pattern" in outcome.describe(date(2026, 11, 20))

    # A known title that names nothing in these events is not reused: the model is asked.
    stale = KnownPattern("p2", "Dark mode in the editor", "The user wants dark mode.", "preference", 0.9,
                         "llm", 2, 3, 0.71)  # fmt: skip
    asked = ScriptedReasoner(lambda p, s: {"patterns": [PATTERN | {"evidence": ["E1", "E2"]}]})
    outcome, [draft] = consolidate_cluster(_cluster(), EVENTS, _prompting(asked), known=stale)
    assert (outcome.calls, outcome.known, draft.title) == (1, None, PATTERN["title"])


FREE_PORTS = [
    "Session note: Tests now take free ports for PostgreSQL and both llama-servers instead of the defaults.",
    "Again: Tests now take free ports for PostgreSQL and both llama-servers instead of the defaults.",
]


def _draft(title: str, description: str) -> PatternDraft:
    return PatternDraft(title, description, "procedure", 0.9, ("e1", "e2"))


def test_the_gate_refuses_a_pattern_that_contradicts_or_adds_to_its_evidence() -> None:
    # The pattern the demo once stored: the events say the opposite, and nothing of the second sentence.
    contradicting = _draft(
        "Free ports for PostgreSQL",
        "No longer takes free ports for PostgreSQL. This is a bug in the latest version of PostgreSQL.",
    )
    assert "does not" in (rejection(contradicting, FREE_PORTS, []) or "")
    negated = _draft("Free ports for PostgreSQL", "Tests do not take free ports for PostgreSQL.")
    assert "negates" in (rejection(negated, FREE_PORTS, []) or "")
    # The same words stated as the events state them pass, inflections included ("take"/"takes").
    true = _draft("Free ports for PostgreSQL tests", "Tests take free ports for PostgreSQL and servers.")
    assert rejection(true, FREE_PORTS, []) is None
    # One inflected word alone decides: "taking" is the evidence's "take".
    assert ungrounded_sentence("Taking it.", {"take"}) is None
    assert ungrounded_sentence("Making it.", {"take"}) == "Making it."
    # A negation the evidence itself makes may be repeated.
    assert rejection(negated, [f"{FREE_PORTS[0]} They do not use 5432.", FREE_PORTS[1]], []) is None


def _judging(description: str, verdicts: dict[str, bool], judges: bool = True) -> ScriptedReasoner:
    """A model whose pattern has `description`, and which judges statements as `verdicts` says."""

    def answer(prompt: str, schema: dict[str, Any] | None) -> Any:
        if schema is not None and "supported" in schema["properties"]:
            return {"supported": next(v for words, v in verdicts.items() if words in prompt)}
        return {"patterns": [PATTERN | {"description": description, "evidence": ["E1", "E2", "E3"]}]}

    return ScriptedReasoner(answer, judges_support=judges)


def test_a_trusted_model_judges_meaning_where_the_words_fall_short() -> None:
    # An abstraction in words the events do not use: the word rules refuse it, the judge accepts it.
    abstract = "Slow database start-up makes CI fixtures give up; wait for readiness instead."
    assert "not grounded" in (rejection(_draft("Postgres socket", abstract), list(EVENTS.values()), []) or "")
    reasoner = _judging(abstract, {"Slow database": True})
    outcome, [draft] = consolidate_cluster(_cluster(), EVENTS, _prompting(reasoner))
    assert (draft.method, draft.description, outcome.calls) == ("llm", abstract, 1)
    judged = [p for p in reasoner.prompts if p.startswith("Events:")]
    assert len(judged) == 1, "judged once, though the gate sees the draft twice"

    # A claim the words refuse and the model judges unsupported too: refused, then the extractive pattern.
    false_claim = "Every runner needs a kernel upgrade before any database can start."
    liar = _judging(false_claim, {"kernel upgrade": False})
    outcome, [fallback] = consolidate_cluster(_cluster(), EVENTS, _prompting(liar))
    assert fallback.method == "extractive" and "judges it unsupported" in (outcome.failure or "")

    # A description the words already ground costs no judgement.
    grounded = _judging(PATTERN["description"], {})
    consolidate_cluster(_cluster(), EVENTS, _prompting(grounded))
    assert not [p for p in grounded.prompts if p.startswith("Events:")]


def test_a_model_not_trusted_to_judge_is_never_asked() -> None:
    abstract = "Slow database start-up makes CI fixtures give up; wait for readiness instead."
    reasoner = _judging(abstract, {"Slow database": True}, judges=False)
    _, [draft] = consolidate_cluster(_cluster(), EVENTS, _prompting(reasoner))
    assert draft.method == "extractive", "the word rules decide, and they refuse the abstraction"
    assert not [p for p in reasoner.prompts if p.startswith("Events:")]


def test_a_value_that_moved_and_came_back_leaves_the_old_pattern_true_without_asking() -> None:
    # The generated history's recall latency: "above 200 ms" after lunch, "back under 50 ms" by evening.
    said = ("user recall latency is back under 50 ms this morning",)
    old = KnownPattern("p1", "Recall latency is under 50 ms", "Recall is fast again.", "observation", 0.9,
                       "llm", 2, 2, 0.9, recent_evidence=said)  # fmt: skip
    went_up = "user recall API latency went above 200 ms"
    back = "user recall latency is back under 50 ms in the evening"
    asked = ScriptedReasoner(lambda p, s: {"different": True}, judges_support=True)
    assert replaced(_prompting(asked), _cluster(), old, [went_up, back]) is False
    assert asked.prompts == []
    # Still above 200 ms at the end: the model is asked whether that is another value.
    assert replaced(_prompting(asked), _cluster(), old, [back, went_up]) is True
    assert len(asked.prompts) == 1 and went_up in asked.prompts[0]


def test_a_cluster_of_stated_preferences_is_a_preference_whatever_kind_the_model_copies() -> None:
    from athena_assets.knowledge.consolidate_day import consolidate_cluster
    from athena_assets_tests.consolidation.test_consolidation_logic import _prompting
    from resources.llamacpp.standins import ScriptedReasoner

    events = {
        "s1": "Style preference: comments say why, never what; commented-out code gets deleted",
        "s2": "Again: style preference, comments say why and never what",
        "s3": "The user repeated the style preference: comments say why, never what",
    }
    answer = {
        "title": "Comments say why, never what",
        "kind": "problem-solution",  # the worked example's kind, copied
        "description": "Comments say why, never what; commented-out code gets deleted.",
        "confidence": "high",
        "evidence": ["E1", "E2", "E3"],
    }
    cluster = Cluster(cluster_key(sorted(events)), tuple(sorted(events)), tuple(events))

    def ask(types: dict[str, str | None]) -> PatternDraft:
        reasoner = ScriptedReasoner(lambda prompt, schema: {"patterns": [answer]})
        _, [draft] = consolidate_cluster(cluster, events, _prompting(reasoner), types)
        assert draft.method == "llm"
        return draft

    assert ask(dict.fromkeys(events, "preference")).kind == "preference"
    assert ask(dict.fromkeys(events)).kind == "problem-solution"  # a chat log: no types, the model's kind
