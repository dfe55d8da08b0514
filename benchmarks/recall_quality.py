"""Recall measured against known answers: does `recall` find the event a question is about?

    .venv/bin/python benchmarks/recall_quality.py [--sessions 60] [--models-dir DIR]

A history of assistant sessions is generated deterministically: each session works on one project,
states eight facts of four kinds (decisions, errors and their fixes, preferences, settings), mentions
most of their subjects again without the answer, and chats; other sessions state the same kinds of
facts in the same words with other values. Each fact gets a
question phrased differently from it ("Which port does the staging cache listen on?" for "staging
redis runs on port 6391"), whose evidence is that one event. Questions are asked unscoped and scoped
to their session, through the store's `recall` in each mode, and against an exact-cosine baseline
computed with numpy over the same vectors (no index).

Reported per mode and scope: recall@5, recall@10 (share of questions whose evidence is in the top k)
and MRR (mean reciprocal rank of the evidence, 0 beyond the top 10). `either (bound)` takes, per
question, the better of the vector and text ranks: what a perfect fusion of the two branches could
reach, so hybrid's headroom is visible. Histories (`HISTORIES`): `facts` (one statement per event),
`turns` (each statement among two or three unrelated asides, as a conversation's turn says more than
the answer), `conversation` (two friends' chat, `conversation_history.py`), `echoed` (the same chat,
its questions in the evidence's words, where words are the stronger clue) and `sample` (the demo's
history, asked as the assistant asks, unscoped: `sample_questions.py`).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import conversation_history
import numpy as np
import sample_questions
from consolidation import private_stack

from athena_assets.api.sample_history import BUNDLED_FILE, BUNDLED_START
from athena_assets.defs.memory.embeddings import embed_events
from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.embedding_context import DEFAULT_CONTEXT
from resources.memory.event_files import parse_event_file
from resources.memory.event_line import Event
from resources.memory.recall import MODES
from resources.memory.recall_scope import RecallScope
from resources.memory.records import StoredEvent
from resources.memory.store import MemoryStore

MODEL_SHA256 = "recall-benchmark"
START = datetime(2026, 6, 1, tzinfo=UTC)
PROJECTS = ("billing", "search", "checkout", "inventory", "analytics", "auth", "mobile-api", "notifier")
# (purpose as stated, purpose as asked, choices)
DECISIONS = (
    ("database migrations", "schema changes", ("alembic", "flyway", "sqitch", "liquibase", "atlas")),
    ("the task queue", "background jobs", ("celery", "dramatiq", "rq", "arq", "huey")),
    ("HTTP clients", "outgoing requests", ("httpx", "aiohttp", "requests", "urllib3", "pycurl")),
    ("configuration loading", "reading settings", ("pydantic-settings", "dynaconf", "hydra", "environs")),
    ("the feature flags", "toggling features", ("unleash", "flagsmith", "growthbook", "launchdarkly")),
)
# (component, error code, fix)
ERRORS = (
    ("the ingest worker", "ECONNRESET", "raising the keepalive timeout to 75 seconds"),
    ("the nightly export", "OOMKilled", "streaming rows in batches of 5000"),
    ("the payment webhook", "HTTP 429", "adding exponential backoff with jitter"),
    ("the search indexer", "SIGSEGV", "pinning libxml2 to 2.11"),
    ("the CI pipeline", "ENOSPC", "pruning docker images before the build"),
    ("the login service", "JWT expired", "syncing the clock with chrony"),
)
# (situation as stated, situation as asked, preferences)
PREFERENCES = (
    ("reviewing pull requests", "code review", ("small commits", "one reviewer", "inline suggestions")),
    ("writing tests", "testing", ("pytest fixtures", "property-based tests", "table-driven tests")),
    ("logging", "log output", ("structured JSON logs", "plain text logs", "logfmt lines")),
)
# (setting as stated, setting as asked)
SETTINGS = (
    ("staging redis runs on port {v}", "Which port does the staging cache listen on?"),
    ("the connection pool size is set to {v}", "How many database connections may the pool hold?"),
    ("the request timeout is {v} seconds", "After how long do requests give up?"),
)
# What else a turn of a real conversation says: in the `turns` history every event is one statement
# above among two or three of these, as an assistant's turn mixes the answer with everything around it.
ASIDES = (
    "I will keep an eye on the dashboards after lunch.",
    "The meeting with the platform team moved to Thursday.",
    "Let me know if the numbers look odd tomorrow.",
    "Most of the afternoon went into reading old tickets.",
    "The new laptop finally arrived and is set up.",
    "We should write this down somewhere the whole team can find it.",
    "The staging environment was slow all morning.",
    "Someone asked whether the service could be split in two.",
    "I skimmed the design document again before the call.",
    "The coffee machine on the third floor is broken again.",
    "There is a holiday next week, so the release waits.",
    "The product manager wants a demo by the end of the sprint.",
    "A few flaky tests showed up again in unrelated modules.",
    "I also cleaned up some old branches while waiting.",
    "The on-call rotation changes on Monday.",
    "Half of the team is at a conference this week.",
    "Let us revisit the architecture diagram when there is time.",
    "The build took twelve minutes, longer than usual.",
    "I answered a couple of questions from the support channel.",
    "Documentation for the public API still needs screenshots.",
    "There was a short outage of the VPN around noon.",
    "The database dashboard shows a lot of idle connections.",
    "I renamed a few variables to make the diff easier to read.",
    "The linter complained about line length in three files.",
    "We might need more disk on the build machines soon.",
    "Next sprint planning is on Wednesday afternoon.",
    "The intern asked good questions about the deploy process.",
    "Nothing else stood out in the logs today.",
)
CHATTER = (
    "ran the test suite again, all green",
    "pushed the branch and opened a draft pull request",
    "looked through the logs of the last deploy",
    "paired on the refactoring of the service layer",
    "updated the README with the new setup steps",
    "rebased on main and resolved two conflicts",
)


HISTORIES = {
    "facts": "one statement per event",
    "turns": "each statement among asides, as an assistant's turn",
    "conversation": "two friends' chat, a turn per event (benchmarks/conversation_history.py)",
    "echoed": "the same chat, its questions worded with the evidence's words",
    "sample": "the demo's sample history, asked as the assistant asks (benchmarks/sample_questions.py)",
}
# The histories of benchmarks/conversation_history.py: their turns have a speaker, so each embedding
# context is measured on them.
CHATS = ("conversation", "echoed")


@dataclass(frozen=True)
class Question:
    """A question, its kind, where it is asked (the recall's scope when scoped) and the events that
    answer it."""

    text: str
    kind: str
    scope: RecallScope | None
    evidence_ids: tuple[str, ...]
    any_copy: bool = False  # the evidence events are copies of one statement: one of them answers


def _event(event_id: str, at: datetime, content: str, session_id: str, project: str) -> Event:
    return Event(
        id=event_id,
        occurred_at=at,
        content=content,
        event_type="note",
        source="benchmark",
        session_id=session_id,
        metadata={"repo": project},
        content_sha256=hashlib.sha256(content.encode()).hexdigest(),
        source_file="benchmark",
        source_line=1,
    )


def history(sessions: int, turns: bool = False, seed: int = 7) -> tuple[list[Event], list[Question]]:
    """Events of `sessions` sessions and one question per fact, deterministically.

    Each session states eight facts (two of each kind), mentions each fact's subject again without its
    answer (the distractors a real session has: "looked at the ECONNRESET logs again"), and chats. With
    `turns`, every event is a conversation turn: its statement among two or three asides."""
    rng = random.Random(seed)
    events: list[Event] = []
    questions: list[Question] = []
    for number in range(sessions):
        session = f"session-{number:03d}"
        project = PROJECTS[number % len(PROJECTS)]
        at = START + timedelta(hours=7 * number)
        lines: list[tuple[str, str]] = []
        for stated, asked, choices in rng.sample(DECISIONS, 2):
            lines += [
                (f"Decided to use {rng.choice(choices)} for {stated} in the {project} service.",
                 f"Which library did we settle on for {asked}?"),
                (f"Compared a few options for {stated}; no decision yet.", ""),
            ]  # fmt: skip
        for component, code, fix in rng.sample(ERRORS, 2):
            lines += [
                (f"{component} failed with {code}; fixed it by {fix}.",
                 f"How did we get rid of the {code} problem?"),
                (f"Saw {code} in the logs of {component} again, still looking.", ""),
            ]  # fmt: skip
        for stated, asked, options in rng.sample(PREFERENCES, 2):
            lines += [
                (f"User prefers {rng.choice(options)} when {stated}.",
                 f"What does the user like for {asked}?"),
                (f"Talked with the user about {stated} for a while.", ""),
            ]  # fmt: skip
        for template, question in rng.sample(SETTINGS, 2):
            lines += [(template.format(v=rng.randrange(2, 9000)).capitalize() + ".", question)]
        lines += [(rng.choice(CHATTER), "") for _ in range(20)]
        rng.shuffle(lines)
        if turns:
            lines = [(_turn(rng, content), question) for content, question in lines]
        for position, (content, question) in enumerate(lines):
            event_id = f"{session}-{position:02d}"
            events.append(_event(event_id, at + timedelta(minutes=position), content, session, project))
            if question:
                questions.append(Question(question, "single", RecallScope(session_id=session), (event_id,)))
    return events, questions


def _turn(rng: random.Random, statement: str) -> str:
    """`statement` at a random place among two or three asides."""
    sentences = rng.sample(ASIDES, rng.randint(2, 3))
    sentences.insert(rng.randrange(len(sentences) + 1), statement)
    return " ".join(sentences)


def _found(hits: list[str], question: Question, k: int) -> float:
    """The share of the question's evidence among the first `k` of `hits` (evidence recall@k); 1 or 0
    for a question any copy answers."""
    found = sum(event_id in hits[:k] for event_id in question.evidence_ids)
    return float(found > 0) if question.any_copy else found / len(question.evidence_ids)


def _mrr(hits: list[str], evidence: tuple[str, ...]) -> float:
    ranks = [hits.index(event_id) + 1 for event_id in evidence if event_id in hits[:10]]
    return 1 / min(ranks) if ranks else 0.0


@dataclass(frozen=True)
class Figures:
    """recall@5, recall@10 and MRR of one mode over a set of questions."""

    at5: float
    at10: float
    mrr: float


def _figures(rankings: list[list[str]], questions: list[Question]) -> Figures:
    pairs = list(zip(rankings, questions, strict=True))
    count = len(pairs)
    return Figures(
        sum(_found(hits, q, 5) for hits, q in pairs) / count,
        sum(_found(hits, q, 10) for hits, q in pairs) / count,
        sum(_mrr(hits, q.evidence_ids) for hits, q in pairs) / count,
    )


def _bound(vector: list[str], text: list[str], question: Question) -> list[str]:
    """The better of the two branches' rankings for this question (what a perfect choice between them
    reaches): the one finding more evidence in its top 5, then top 10."""
    return max(text, vector, key=lambda hits: (_found(hits, question, 5), _found(hits, question, 10)))


def load_history(name: str, sessions: int) -> tuple[list[Event], list[Question]]:
    """The events and questions of history `name` (`HISTORIES`)."""
    if name == "sample":
        events = parse_event_file(BUNDLED_FILE, BUNDLED_START).events
        asked = sample_questions.evidence(events)
        return events, [Question(text, kind, None, ids, any_copy=True) for text, kind, ids in asked]
    if name in CHATS:
        wording = "echoed" if name == "echoed" else "paraphrased"
        events, asked = conversation_history.history(sessions=max(8, sessions // 3), wording=wording)
        return events, [
            Question(q.text, q.kind, RecallScope(source=q.conversation), q.evidence_ids) for q in asked
        ]
    return history(sessions, name == "turns")


def run(
    database_url: str, embeddings_url: str, name: str, sessions: int, context: str
) -> list[tuple[str, str, str, Figures]]:
    """Load a history, ask every question in every mode and scope; the figures per (mode, scope, kind).
    Events are embedded with `context` (`embedding_context.py`)."""
    events, questions = load_history(name, sessions)
    memory = MemoryStore(database_url=database_url, schema_name=f"recall_{uuid.uuid4().hex[:8]}")
    embeddings = LlamaCppEmbeddingResource(urls=[embeddings_url], context=context)
    embeddings.use_metrics(MetricsCollector())
    rows = []
    with embeddings:
        memory.upsert_events(events)
        stored = memory.events_for_days(events[0].day, max(event.day for event in events))
        embed_events(stored, embeddings, memory, MODEL_SHA256)
        ids = [event.id for event in stored]
        matrix = np.stack([np.asarray(v.embedding, dtype=np.float32) for v in embeddings.embed_batch(
            [embeddings.document(e.content, e.occurred_at, e.metadata) for e in stored])])  # fmt: skip
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        by_id = {event.id: event for event in stored}
        query_vectors = [embeddings.embed_query(question.text) for question in questions]
        # The sample history's questions have no scope: the assistant recalls over everything.
        for scoped in (False, True) if any(question.scope for question in questions) else (False,):
            found: dict[str, list[list[str]]] = {"exact cosine": [], **{mode: [] for mode in MODES}}
            for question, vector in zip(questions, query_vectors, strict=True):
                scope = question.scope if scoped else None
                for mode in MODES:
                    hits = memory.recall(
                        list(vector.embedding), MODEL_SHA256, vector.dimension, k=10,
                        query_text=question.text, mode=mode, scope=scope,  # type: ignore[arg-type]
                    )  # fmt: skip
                    found[mode].append([hit.event_id for hit in hits])
                query = np.asarray(vector.embedding, dtype=np.float32)
                order = np.argsort(-(matrix @ (query / np.linalg.norm(query))), kind="stable")
                in_scope = [ids[i] for i in order if scope is None or _within(by_id[ids[i]], scope)]
                found["exact cosine"].append(in_scope[:10])
            found["either (bound)"] = [
                _bound(vector, text, question)
                for vector, text, question in zip(found["vector"], found["text"], questions, strict=True)
            ]
            kinds = ["all", *sorted({question.kind for question in questions})]
            for mode, rankings in found.items():
                for kind in kinds if len(kinds) > 2 else kinds[:1]:
                    chosen = [i for i, q in enumerate(questions) if kind in ("all", q.kind)]
                    figures = _figures([rankings[i] for i in chosen], [questions[i] for i in chosen])
                    rows.append((mode, "scoped" if scoped else "none", kind, figures))
    return rows


def _within(event: StoredEvent, scope: RecallScope) -> bool:
    """Whether `event` is in `scope` (the benchmark's scopes name a source or a session only)."""
    return (scope.source is None or event.source == scope.source) and (
        scope.session_id is None or event.session_id == scope.session_id
    )


def main() -> None:
    """Parse the arguments, start a private stack, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=60, help="sessions of the facts and turns histories")
    parser.add_argument("--models-dir", type=Path, help="reuse model files from here (default: a temp dir)")
    parser.add_argument(
        "--history",
        choices=[*HISTORIES, "all"],
        default="all",
        help="; ".join(f"{name}: {what}" for name, what in HISTORIES.items()),
    )
    parser.add_argument(
        "--context",
        action="append",
        help="embedding context(s) to measure, e.g. none, speaker, date, date,speaker (repeatable; default: "
        f"{DEFAULT_CONTEXT}); only conversation turns have a speaker",
    )
    args = parser.parse_args()
    chosen = list(HISTORIES) if args.history == "all" else [args.history]
    contexts = args.context or [DEFAULT_CONTEXT]
    print(f"{'history':12} {'context':12} {'mode':14} {'scope':6} {'kind':8} "
          f"{'recall@5':>8} {'recall@10':>9} {'MRR':>6}")  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="athena-recall-") as home,
        private_stack(Path(home), args.models_dir) as (database_url, embeddings_url, _reasoning),
    ):
        for name in chosen:
            for context in contexts if name in CHATS else contexts[:1]:
                for mode, scope, kind, f in run(database_url, embeddings_url, name, args.sessions, context):
                    print(f"{name:12} {context:12} {mode:14} {scope:6} {kind:8} {f.at5:8.3f} {f.at10:9.3f} "
                          f"{f.mrr:6.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
