"""Knowledge that changes, measured against ground truth: after consolidating a history whose changes are
known (`changing_history.py`), does the memory state each subject's current value, and only that, and
what was current before each change?

    .venv/bin/python benchmarks/knowledge_changes.py --models-dir ~/.athena/models
    .venv/bin/python benchmarks/knowledge_changes.py --no-track-changes     # the baseline: no supersession

Every day is consolidated, oldest first, by the same `consolidate_day` the asset runs, on a private stack
(embedded PostgreSQL, both llama-servers of the profile). A subject's patterns are those whose evidence is
mostly its events; a pattern "states" a value when its title or description has one of the value's words.
Reported per changing subject: a current pattern states the new value and none the old one alone (right),
a current pattern states the old value alone (stale), and, as of the day before the change, a pattern
states the old value (as-of); per stable subject: it has a pattern, and none of its patterns was closed.
The whole history is then consolidated again, and the stored patterns must not change.
"""

import argparse
import re
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from changing_history import CHANGING, STABLE, START, ChangingHistory, Subject, changing_history
from consolidation import add_config_options, chosen_config, loaded_clients, private_stack

from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.consolidate_day import Clients, consolidate_day
from resources.memory.pattern_records import PatternRecord
from resources.memory.pattern_store import PatternStore

MODEL_SHA256 = "changes-benchmark"
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)*")


def _states(pattern: PatternRecord, values: tuple[str, ...]) -> bool:
    return bool(set(_WORD.findall(f"{pattern.title} {pattern.description}".lower())) & set(values))


def _of(subject: str, patterns: list[PatternRecord], history: ChangingHistory) -> list[PatternRecord]:
    """The patterns whose evidence is mostly the subject's events."""
    mine = []
    for pattern in patterns:
        labels = Counter(history.subject_of[i] for i in pattern.evidence_event_ids)
        if labels.most_common(1)[0][0] == subject:
            mine.append(pattern)
    return mine


def score_changing(subject: Subject, store: PatternStore, history: ChangingHistory) -> dict[str, Any]:
    """Right / stale / as-of figures of one changing subject."""
    current = _of(subject.name, store.patterns(), history)
    old_alone = [p for p in current if _states(p, subject.old_value) and not _states(p, subject.new_value)]
    right = any(_states(p, subject.new_value) for p in current) and not old_alone
    before = START + timedelta(days=subject.change_day - 1)
    then = _of(subject.name, store.patterns(as_of=before), history)
    return {
        "right": right,
        "stale": bool(old_alone),
        "as_of": any(_states(p, subject.old_value) for p in then),
        "current": [p.title for p in current],
    }


def score_stable(subject: Subject, store: PatternStore, history: ChangingHistory) -> dict[str, Any]:
    """Covered / wrongly closed figures of one stable subject."""
    every = _of(subject.name, store.patterns(include_superseded=True), history)
    return {"covered": bool(every), "closed": sum(not p.current for p in every)}


def consolidate(
    history: ChangingHistory, clients: Clients, config: ConsolidationConfig
) -> tuple[int, int, float]:
    """(reasoning calls, supersessions, seconds) of consolidating every day, oldest first."""
    started = time.perf_counter()
    calls = superseded = 0
    for day in history.days:
        report = consolidate_day(day, config, clients, MODEL_SHA256, "changes-benchmark")
        calls += report.reasoning.calls
        superseded += report.written.superseded
    return calls, superseded, time.perf_counter() - started


def _snapshot(store: PatternStore) -> list[tuple[Any, ...]]:
    return [
        (p.pattern_id, p.title, p.support, p.valid_from, p.valid_to, p.superseded_by, *p.evidence_event_ids)
        for p in store.patterns(include_superseded=True)
    ]


def run(urls: tuple[str, str, str], config: ConsolidationConfig, profile: str) -> None:
    """Load, embed and consolidate the history twice; print the table."""
    history = changing_history()
    with loaded_clients(urls, profile, history.events, MODEL_SHA256, "changes") as clients:
        store = clients.patterns
        calls, superseded, seconds = consolidate(history, clients, config)
        first = _snapshot(store)
        consolidate(history, clients, config)
        stable_rerun = _snapshot(store) == first

    print(
        f"{len(history.events)} events over {len(history.days)} days; profile {profile}; track_changes "
        f"{config.track_changes}; similarity_threshold {config.similarity_threshold}; lookback_days "
        f"{config.lookback_days}; recurring_similarity {config.recurring_similarity}; {calls} reasoning "
        f"calls, {superseded} supersessions, {seconds:.0f} s"
    )
    print(f"{'changing subject':18} {'right':>5} {'stale':>5} {'as-of':>5}  current patterns")
    totals: Counter[str] = Counter()
    for subject in CHANGING:
        figures = score_changing(subject, store, history)
        totals.update({key: int(figures[key]) for key in ("right", "stale", "as_of")})
        marks = " ".join(f"{'yes' if figures[key] else 'no':>5}" for key in ("right", "stale", "as_of"))
        print(f"{subject.name:18} {marks}  {' | '.join(figures['current'])}")
    print(f"{'total':18} {totals['right']:>2}/{len(CHANGING)} {totals['stale']:>2}/{len(CHANGING)} "
          f"{totals['as_of']:>2}/{len(CHANGING)}")  # fmt: skip
    print(f"{'stable subject':18} {'has':>5} {'closed':>6}")
    covered = closed = 0
    for subject in STABLE:
        figures = score_stable(subject, store, history)
        covered += figures["covered"]
        closed += figures["closed"]
        print(f"{subject.name:18} {'yes' if figures['covered'] else 'no':>5} {figures['closed']:>6}")
    print(f"{'total':18} {covered:>2}/{len(STABLE)} {closed:>6}")
    print(f"re-run of every day left the patterns unchanged: {stable_rerun}")


def main() -> None:
    """Parse the arguments, start a private stack, run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, help="reuse model files from here (default: a temp dir)")
    parser.add_argument("--profile", default="local", help="the models profile (models.toml) to measure")
    parser.add_argument("--no-track-changes", action="store_true", help="measure without supersession")
    add_config_options(parser)
    args = parser.parse_args()
    config = chosen_config(parser, args, track_changes=not args.no_track_changes)
    with (
        tempfile.TemporaryDirectory(prefix="athena-changes-") as home,
        private_stack(Path(home), args.models_dir, args.profile) as urls,
    ):
        run(urls, config, args.profile)


if __name__ == "__main__":
    main()
