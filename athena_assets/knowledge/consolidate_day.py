"""Consolidating one day: cluster its events, ask the reasoning model for the patterns of each cluster,
embed the patterns and store them. A cluster whose events are mostly evidence of a pattern of earlier
days reinforces that pattern without a call (a theme recurring all week is asked about once). An event
no cluster holds that names outright a change of a current pattern ("Switched the task queue from rq to
celery") becomes a pattern of its own, in its own words, that closes the old one. Plain Python over the
resources, so the asset and the benchmark run exactly the same steps.

Generation is as deterministic as the server allows (temperature 0 and a seed derived from the cluster's
members); since llama-server still varies when its prompt cache is reused, the answer to each exact
request is remembered and reused by a re-run. Storage replaces the day's earlier contributions in one
transaction, so a re-run converges to the same rows.
An answer that does not parse, validate or pass the gate is retried once, and then the cluster gets an
extractive pattern built from its own events; a cluster whose events do not fit the prompt budget
keeps its most central events (and is reported as trimmed); an unreachable server fails the day before
anything is written. Asking the model about one cluster is `ask_model.py`.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

import numpy as np

from athena_assets.knowledge import cluster_prompt
from athena_assets.knowledge.ask_model import Prompting
from athena_assets.knowledge.clustering import (
    Cluster,
    PatternDraft,
    cluster_events,
    cluster_key,
    evidence_centroid,
    joining,
    map_answer,
)
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.day_report import ClusterOutcome, DayReport, reasoning_summary
from athena_assets.knowledge.extractive_pattern import extractive_pattern
from athena_assets.knowledge.gate import gate
from athena_assets.knowledge.inferences import cut_unsupported_inferences
from athena_assets.knowledge.pattern_kind import with_evidence_kind
from athena_assets.knowledge.supersession import (
    names_change,
    replaced,
    stated_change,
    statement,
    supersessions,
)
from resources.call_metrics import MetricsCollector
from resources.llamacpp.interfaces import Embedder, Reasoner
from resources.memory.pattern_records import EventVector, KnownPattern, NewObservation
from resources.memory.pattern_store import PatternStore
from resources.memory.store import MemoryStore

# A cluster reinforces an earlier pattern when at least this share of the smaller of the two (the
# cluster's events, the pattern's evidence) is common to both: a model cites only some of a cluster's
# events, so the cluster's size alone would rarely recognise the theme again.
KNOWN_SHARE = 0.5
KNOWN_MIN_SHARED = 2


@dataclass(frozen=True)
class Clients:
    """The clients one consolidation uses."""

    reasoning: Reasoner
    embeddings: Embedder
    memory: MemoryStore
    patterns: PatternStore


def pattern_text(draft: PatternDraft) -> str:
    """The text whose embedding decides whether a pattern reinforces a stored one. An extractive
    pattern's description quotes one event, which differs from window to window for the same theme,
    so only its key phrases count; a model's pattern is its title and description."""
    return draft.title if draft.method == "extractive" else f"{draft.title}. {draft.description}"


def consolidate_cluster(
    cluster: Cluster,
    content: Mapping[str, str],
    prompting: Prompting,
    event_types: Mapping[str, str | None] | None = None,
    known: KnownPattern | None = None,
) -> tuple[ClusterOutcome, list[PatternDraft]]:
    """The patterns of one cluster: the `known` pattern of earlier days when it still passes the gate
    with this cluster's events as evidence (no call), else the model's, where an answer passes the gate
    (`gate.py`) once the inferences its evidence does not make are cut (`inferences.py`), else one
    extractive pattern built from the events (`extractive_pattern.py`); its kind the one its evidence's
    `event_types` name, where they name one (`pattern_kind.py`). `content` holds the texts of the whole
    window (the rarer a phrase there, the more it names the cluster); the outcome says what was shown,
    asked, kept and rejected."""
    kept = set(prompting.shown(cluster, content))
    shown_ids = [event_id for event_id in cluster.member_ids if event_id in kept]
    trimmed = len(cluster.member_ids) - len(shown_ids)
    members = len(cluster.member_ids)
    if not shown_ids:
        failure = "not one event fits max_prompt_tokens"
        return ClusterOutcome(cluster.key, members, 0, trimmed, 0, 0, 0, 0, failure), []
    labels = [cluster_prompt.event_label(position) for position in range(len(shown_ids))]
    judge = partial(prompting.judge, cluster) if prompting.reasoning.judges_support else None
    if known is not None and prompting.config.track_changes:
        # The cluster's newer events may say the known pattern changed: then the model is asked afresh.
        newer = [content[i] for i in shown_ids if i not in known.evidence_ids]
        if replaced(prompting, cluster, known, newer):
            known = None
    if known is not None:
        draft = PatternDraft(
            known.title, known.description, known.kind, known.confidence, tuple(shown_ids), known.method
        )
        draft = with_evidence_kind(draft, event_types or {})
        if gate([draft], content, judge)[0]:
            outcome = ClusterOutcome(
                cluster.key, members, len(shown_ids), trimmed, 0, 1, 0, 0, method=known.method,
                known=known.title,
            )  # fmt: skip
            return outcome, [draft]
    label_ids = dict(zip(labels, shown_ids, strict=True))
    lines = [
        cluster_prompt.event_line(label, content[event_id], prompting.config.max_event_chars)
        for label, event_id in label_ids.items()
    ]

    def usable(answer: Any) -> str | None:
        drafts = cut_unsupported_inferences(map_answer(answer, label_ids).drafts, content)
        accepted, reasons = gate(drafts, content, judge)
        return None if accepted else "; ".join(reasons) or "the answer held no pattern with evidence"

    answer, failure, calls, reused = prompting.ask(cluster, lines, labels, usable)
    if answer is not None:
        mapped = map_answer(answer, label_ids)
        drafts, rejected = gate(cut_unsupported_inferences(mapped.drafts, content), content, judge)
        drafts = [with_evidence_kind(draft, event_types or {}) for draft in drafts]
        discarded, dropped = mapped.discarded + len(rejected), mapped.evidence_dropped
    else:
        config = prompting.config
        drafts = [
            extractive_pattern(
                shown_ids, cluster.by_centrality, content, event_types or {}, config.title_chars,
                config.description_chars,
            )
        ]  # fmt: skip
        discarded = dropped = 0
    outcome = ClusterOutcome(
        cluster.key, members, len(shown_ids), trimmed, calls, len(drafts), discarded, dropped,
        failure=failure, reused=reused, method=drafts[0].method,
    )  # fmt: skip
    return outcome, drafts


def _clusters(
    day: date, events: list[EventVector], replaced: set[str], config: ConsolidationConfig
) -> tuple[list[Cluster], int]:
    """The day's clusters and how many earlier events could join them: the look-back's similar events
    and the window's near-repeats, but none that a replaced pattern cites (`replaced`), so that a
    restatement of the new value never clusters with the old one's statements."""
    today = [event for event in events if event.day == day]
    earlier = [event for event in events if event.day != day and event.id not in replaced]
    if not today:
        return [], 0
    if earlier:
        recent = day - timedelta(days=config.lookback_days)
        joins = joining(
            np.stack([event.vector for event in today]),
            np.stack([event.vector for event in earlier]),
            np.array([event.day >= recent for event in earlier]),
            config.similarity_threshold,
            config.recurring_similarity,
        )
        earlier = [event for event, joined in zip(earlier, joins, strict=True) if joined]
    # Chronological input order keeps clustering and member order deterministic.
    chosen = sorted(earlier + today, key=lambda event: (event.occurred_at, event.id))
    clusters = cluster_events(
        [event.id for event in chosen],
        np.stack([event.vector for event in chosen]),
        [event.day == day for event in chosen],
        config.similarity_threshold,
        config.min_cluster_size,
        days=[event.day for event in chosen],
        recurring_threshold=config.recurring_similarity,
    )
    return clusters, len(earlier)


def stated_change_pattern(
    cluster: Cluster,
    content: Mapping[str, str],
    event_types: Mapping[str, str | None],
    config: ConsolidationConfig,
) -> tuple[ClusterOutcome, list[PatternDraft]]:
    """The pattern of one event naming a change (`_stated_changes`), built from its own words without a
    call: they name the new value and the old, where the small model's summary of one sentence dropped
    the new value ("Redis port conflict resolved" for a move to port 6392)."""
    ids = list(cluster.member_ids)
    draft = extractive_pattern(ids, ids, content, event_types, config.title_chars, config.description_chars)
    return ClusterOutcome(cluster.key, len(ids), len(ids), 0, 0, 1, 0, 0, method=draft.method), [draft]


def _stated_changes(
    day: date,
    events: Sequence[EventVector],
    clusters: Sequence[Cluster],
    store: PatternStore,
    model_sha256: str,
    config: ConsolidationConfig,
) -> list[Cluster]:
    """A cluster of one for each of the day's events that no cluster holds and that names outright a
    change of a current pattern of its subject ("Switched the task queue from rq to celery"): one such
    event makes what it replaces no longer true, also where its subject's events are worded too unlike
    to cluster. Its pattern (`stated_change_pattern`) closes the old one as any new pattern does."""
    if not config.track_changes:
        return []
    clustered = {event_id for cluster in clusters for event_id in cluster.member_ids}
    found = []
    for event in events:
        if event.day != day or event.id in clustered or not names_change(event.content):
            continue
        rivals = store.subject_patterns(
            event.vector, event.vector, day, model_sha256, config.subject_similarity
        )
        if any(stated_change(statement(rival), event.content) for rival in rivals):
            found.append(Cluster(cluster_key([event.id]), (event.id,), (event.id,)))
    return found


def _known(
    cluster: Cluster,
    day: date,
    config: ConsolidationConfig,
    store: PatternStore,
    model_sha256: str,
    vector_of: Mapping[str, np.ndarray],
) -> KnownPattern | None:
    """The earlier pattern this cluster is about, if reinforcing is on: one that shares enough events
    with it (see `KNOWN_SHARE`), or else whose evidence lies as close to the cluster's events as
    `known_similarity` asks (the same theme met again in new events)."""
    if not config.reinforce_known:
        return None
    centroid = evidence_centroid([vector_of[event_id] for event_id in cluster.member_ids])
    for found in store.known_patterns(cluster.member_ids, centroid, day, model_sha256):
        enough = max(KNOWN_MIN_SHARED, KNOWN_SHARE * min(len(cluster.member_ids), found.evidence))
        if found.shared >= enough or found.similarity >= config.known_similarity:
            return found
    return None


def consolidate_day(
    day: date,
    config: ConsolidationConfig,
    clients: Clients,
    model_sha256: str,
    reasoning_model: str,
    log: Callable[[str], None] | None = None,
) -> DayReport:
    """Consolidate partition `day` (with its look-back window) and store the result; see the module doc.

    `model_sha256` identifies the embedding model (whose vectors are clustered, and which embeds the
    patterns); `reasoning_model` identifies the reasoning model in the key of remembered answers.
    """
    say = log or (lambda _message: None)
    started = time.monotonic()
    events = clients.patterns.event_vectors(
        config.window_start(day), day, clients.embeddings.vector_key(model_sha256)
    )
    total = clients.memory.event_count(day, day)
    replaced = clients.patterns.replaced_evidence([event.id for event in events if event.day != day], day)
    clusters, lookback = _clusters(day, events, replaced, config)
    stated = _stated_changes(day, events, clusters, clients.patterns, model_sha256, config)
    clustered = time.monotonic()

    collector = MetricsCollector()
    previous = clients.reasoning.metrics
    clients.reasoning.use_metrics(collector)
    prompting = Prompting(config, clients.reasoning, clients.patterns, reasoning_model)
    content = {event.id: event.content for event in events}
    vector_of = {event.id: event.vector for event in events}
    event_types = {event.id: event.event_type for event in events}
    outcomes: list[ClusterOutcome] = []
    observations: list[tuple[Cluster, ClusterOutcome, int, PatternDraft]] = []
    try:
        for cluster in clusters + stated:
            if cluster in stated:
                outcome, drafts = stated_change_pattern(cluster, content, event_types, config)
            else:
                known = _known(cluster, day, config, clients.patterns, model_sha256, vector_of)
                outcome, drafts = consolidate_cluster(cluster, content, prompting, event_types, known)
            outcomes.append(outcome)
            observations += [(cluster, outcome, index, draft) for index, draft in enumerate(drafts)]
            say(outcome.describe(day))
        reasoned = time.monotonic()
        texts = [pattern_text(draft) for *_, draft in observations]
        embedded_texts = clients.embeddings.embed_batch(texts) if texts else []
        vectors = [np.asarray(v.embedding, dtype=np.float32) for v in embedded_texts]
        centroids = [evidence_centroid([vector_of[i] for i in d.evidence_ids]) for *_, d in observations]
        embedded = time.monotonic()
        occurred_at = {event.id: event.occurred_at for event in events}
        changes = [
            supersessions(
                prompting, cluster, draft, (vector, centroid), clients.patterns, day, model_sha256, content,
                occurred_at,
            )
            # A known pattern reused as it stands restates itself: nothing to compare.
            if config.track_changes and outcome.known is None else ()
            for (cluster, outcome, _, draft), vector, centroid in zip(
                observations, vectors, centroids, strict=True
            )
        ]  # fmt: skip
    finally:
        clients.reasoning.use_metrics(previous)
    compared = time.monotonic()
    rows = [
        NewObservation(
            day=day,
            cluster_key=outcome.cluster_key,
            pattern_index=index,
            title=draft.title,
            description=draft.description,
            kind=draft.kind,
            confidence=draft.confidence,
            evidence_ids=draft.evidence_ids,
            embedding=vector,
            evidence_centroid=centroid,
            model_sha256=model_sha256,
            prompt_version=cluster_prompt.PROMPT_VERSION,
            cluster_size=outcome.members,
            method=draft.method,
            supersedes=replacing,
        )
        for (_, outcome, index, draft), vector, centroid, replacing in zip(
            observations, vectors, centroids, changes, strict=True
        )
    ]
    written = clients.patterns.replace_day(day, rows, config.merge_threshold, config.merge_evidence_threshold)
    stored = time.monotonic()
    return DayReport(
        day=day,
        events=total,
        events_with_vector=sum(event.day == day for event in events),
        lookback_events=lookback,
        outcomes=tuple(outcomes),
        written=written,
        reasoning=reasoning_summary(collector, prompting.results),
        call_stats=collector.get_stats("reasoning"),
        seconds={
            "clustering": clustered - started,
            "reasoning": reasoned - clustered,
            "embedding": embedded - reasoned,
            "changes": compared - embedded,
            "storage": stored - compared,
        },
    )
