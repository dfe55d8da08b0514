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
reach, so hybrid's headroom is visible. Two histories: `facts` (one statement per event) and `turns`
(each statement among two or three unrelated asides, as a conversation's turn says more than the
answer).
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

import numpy as np
from consolidation import private_stack

from athena_assets.defs.memory.embeddings import embed_events
from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.memory.event_line import Event
from resources.memory.recall_scope import RecallScope
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


@dataclass(frozen=True)
class Question:
    """A question, the session it is asked in, and the one event that answers it."""

    text: str
    session_id: str
    evidence_id: str


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
                questions.append(Question(question, session, event_id))
    return events, questions


def _turn(rng: random.Random, statement: str) -> str:
    """`statement` at a random place among two or three asides."""
    sentences = rng.sample(ASIDES, rng.randint(2, 3))
    sentences.insert(rng.randrange(len(sentences) + 1), statement)
    return " ".join(sentences)


def _rank(found: list[str], wanted: str) -> int | None:
    return found.index(wanted) + 1 if wanted in found else None


def _figures(ranks: list[int | None]) -> tuple[float, float, float]:
    count = len(ranks)
    at5 = sum(rank is not None and rank <= 5 for rank in ranks) / count
    at10 = sum(rank is not None and rank <= 10 for rank in ranks) / count
    mrr = sum(1 / rank for rank in ranks if rank is not None and rank <= 10) / count
    return at5, at10, mrr


def run(
    database_url: str, embeddings_url: str, sessions: int, turns: bool
) -> list[tuple[str, str, tuple[float, ...]]]:
    """Load the history, ask every question in every mode and scope; the figures per (mode, scope)."""
    events, questions = history(sessions, turns)
    memory = MemoryStore(database_url=database_url, schema_name=f"recall_{uuid.uuid4().hex[:8]}")
    embeddings = LlamaCppEmbeddingResource(urls=[embeddings_url]).use_metrics(MetricsCollector())
    rows = []
    with embeddings:
        memory.upsert_events(events)
        stored = memory.events_for_days(events[0].day, events[-1].day)
        embed_events(stored, embeddings, memory, MODEL_SHA256)
        ids = [event.id for event in stored]
        matrix = np.stack([np.asarray(v.embedding, dtype=np.float32) for v in embeddings.embed_batch(
            [event.content for event in stored])])  # fmt: skip
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        session_of = {event.id: event.session_id for event in stored}
        query_vectors = [embeddings.embed_query(question.text) for question in questions]
        for scoped in (False, True):
            ranks: dict[str, list[int | None]] = {"exact cosine": [], "vector": [], "text": [], "hybrid": []}
            for question, vector in zip(questions, query_vectors, strict=True):
                scope = RecallScope(session_id=question.session_id) if scoped else None
                for mode in ("vector", "text", "hybrid"):
                    hits = memory.recall(
                        list(vector.embedding), MODEL_SHA256, vector.dimension, k=10,
                        query_text=question.text, mode=mode, scope=scope,  # type: ignore[arg-type]
                    )  # fmt: skip
                    ranks[mode].append(_rank([hit.event_id for hit in hits], question.evidence_id))
                query = np.asarray(vector.embedding, dtype=np.float32)
                order = np.argsort(-(matrix @ (query / np.linalg.norm(query))), kind="stable")
                exact = [ids[i] for i in order if not scoped or session_of[ids[i]] == question.session_id]
                ranks["exact cosine"].append(_rank(exact[:10], question.evidence_id))
            # What a perfect fusion of the two branches could reach: the better of their two ranks.
            ranks["either (bound)"] = [
                min((rank for rank in pair if rank is not None), default=None)
                for pair in zip(ranks["vector"], ranks["text"], strict=True)
            ]
            for mode, found in ranks.items():
                rows.append((mode, "session" if scoped else "none", _figures(found)))
    return rows


def main() -> None:
    """Parse the arguments, start a private stack, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=60, help="sessions of 34 events and 8 questions each")
    parser.add_argument("--models-dir", type=Path, help="reuse model files from here (default: a temp dir)")
    parser.add_argument(
        "--history",
        choices=["facts", "turns", "both"],
        default="both",
        help="facts: one statement per event; turns: each among asides, as in a conversation",
    )
    args = parser.parse_args()
    chosen = ["facts", "turns"] if args.history == "both" else [args.history]
    print(f"{args.sessions * 34} events, {args.sessions * 8} questions per history")
    print(f"{'history':8} {'mode':13} {'scope':8} {'recall@5':>8} {'recall@10':>9} {'MRR':>6}")
    with (
        tempfile.TemporaryDirectory(prefix="athena-recall-") as home,
        private_stack(Path(home), args.models_dir) as (database_url, embeddings_url, _reasoning),
    ):
        for name in chosen:
            for mode, scope, (at5, at10, mrr) in run(
                database_url, embeddings_url, args.sessions, name == "turns"
            ):
                print(f"{name:8} {mode:13} {scope:8} {at5:8.3f} {at10:9.3f} {mrr:6.3f}", flush=True)


if __name__ == "__main__":
    main()
