"""Consolidation measured against ground truth: do the stored patterns name the themes a history really
has, with evidence from one theme each, in words of their own events?

    .venv/bin/python benchmarks/consolidation_quality.py                      # both histories
    .venv/bin/python benchmarks/consolidation_quality.py --history sample     # the bundled sample only

Histories: the bundled sample (21 days, 304 events, 7 themes in `metadata.topic`) and a generated one
(30 days, 8 themes of 24 events each in varied words, plus 40 one-off events), neither seen by the
prompts. The theme labels stay in this script: events reach the pipeline with their content, type and
time only. Every day is consolidated, oldest first, by the same `consolidate_day` the asset runs, with
the default `ConsolidationConfig` (or one changed by `--threshold` and `--set FIELD=VALUE`), on a private
stack (embedded PostgreSQL, both llama-servers).

Reported per pattern method (`llm`: the model's answer passed the gate; `extractive`: built from the
events) and in total: themes covered by a pattern whose evidence is at least 80% one theme; mean
evidence purity; placeholder titles (numbered, generic, or sharing no word with their evidence);
patterns of one cluster with the same evidence; patterns made mostly of one-off events; patterns
closed as replaced (the sample changes no value, so each closed there was closed wrongly; the generated
themes move a few values: "moved the quarterly budget review to Thursday"); reasoning calls; wall time.
"""

import argparse
import hashlib
import json
import random
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from consolidation import SUBJECTS, add_config_options, chosen_config, loaded_clients, private_stack

from athena_assets.api.sample_history import BUNDLED_FILE
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.consolidate_day import consolidate_day
from resources.memory.event_line import Event
from resources.memory.pattern_records import PatternRecord

MODEL_SHA256 = "quality-benchmark"
ONE_OFF = "one-off"
GENERATED_START = date(2026, 9, 1)
GENERATED_DAYS = 30
GENERATED_THEMES = 8
EVENTS_PER_THEME = 24
ONE_OFF_EVENTS = 40
# Forty unrelated events, each about something no other event mentions.
ONE_OFF_SUBJECTS = (
    "renewed the passport", "watered the balcony plants", "read an article about tides",
    "fixed a squeaky door hinge", "bought new running shoes", "watched a documentary on owls",
    "cleaned the mechanical keyboard", "called the bank about a card", "repotted the basil",
    "returned a library book", "tuned the guitar", "sorted old photographs",
    "booked a dentist appointment", "assembled a bookshelf", "baked sourdough bread",
    "replaced the bike chain", "painted the fence", "defrosted the freezer",
    "learned a chess opening", "mended a torn jacket", "planted tulip bulbs",
    "descaled the kettle", "framed a poster", "sharpened the kitchen knives",
    "changed the smoke alarm battery", "donated old clothes", "visited the aquarium",
    "oiled the wooden table", "knitted a scarf", "cleared the gutter leaves",
    "polished the silver spoons", "hung a bird feeder", "calibrated the bathroom scale",
    "wrote a postcard to grandma", "untangled the fairy lights", "swapped the winter tyres",
    "organised the spice rack", "vacuumed the car seats", "fed the neighbour's cat",
    "patched the garden hose",
)  # fmt: skip
_PLACEHOLDER = re.compile(
    r"^\W*(?:(?:test|pattern|title|item|e)\s*\d+\b|\d+(?:[.)]\d*)*\W*$|the \w+ thing\b)", re.I
)
_WORD = re.compile(r"[a-z][a-z0-9_\-]{2,}")


@dataclass(frozen=True)
class History:
    """Events to consolidate and, kept apart from them, the theme of each event id."""

    name: str
    events: list[Event]
    themes: dict[str, str]

    @property
    def days(self) -> list[date]:
        """The days the history covers, oldest first."""
        return sorted({event.day for event in self.events})


def _event(event_id: str, at: datetime, content: str, event_type: str) -> Event:
    return Event(
        id=event_id,
        occurred_at=at,
        content=content,
        event_type=event_type,
        source="benchmark",
        session_id=None,
        metadata={},
        content_sha256=hashlib.sha256(content.encode()).hexdigest(),
        source_file="benchmark",
        source_line=1,
    )


def sample_history() -> History:
    """The bundled sample, its `metadata.topic` taken out of the events."""
    events, themes = [], {}
    for line in BUNDLED_FILE.read_text().splitlines():
        row = json.loads(line)
        at = datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00"))
        events.append(_event(row["id"], at, row["content"], row.get("event_type") or "note"))
        themes[row["id"]] = row["metadata"]["topic"]
    return History("sample", events, themes)


def generated_history(seed: int = 2026) -> History:
    """Eight themes of 24 events in varied words over 30 days, and 40 one-offs, deterministically."""
    rng = random.Random(seed)
    details = ("", " again", " this morning", " after the standup", " before lunch", " in the evening")
    events, themes = [], {}
    start = datetime.combine(GENERATED_START, datetime.min.time(), tzinfo=UTC)
    subjects = list(SUBJECTS.items())[:GENERATED_THEMES]
    stream = [(theme, phrasing) for theme, phrasings in subjects for phrasing in phrasings * 6]
    stream += [(ONE_OFF, subject) for subject in ONE_OFF_SUBJECTS[:ONE_OFF_EVENTS]]
    rng.shuffle(stream)
    for index, (theme, text) in enumerate(stream):
        at = start + timedelta(seconds=rng.randrange(GENERATED_DAYS * 86_400))
        event_id = f"gen-{index:04d}"
        events.append(_event(event_id, at, f"user {text}{rng.choice(details)}", "note"))
        themes[event_id] = f"{ONE_OFF}-{index}" if theme == ONE_OFF else theme
    return History("generated", sorted(events, key=lambda event: event.occurred_at), themes)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def score(patterns: list[PatternRecord], history: History) -> dict[str, Any]:
    """The quality figures of `patterns` against the history's themes."""
    recurring = {theme for theme in history.themes.values() if not theme.startswith(ONE_OFF)}
    covered, purities, placeholders, one_offs = set(), [], 0, 0
    for pattern in patterns:
        labels = Counter(history.themes[event_id] for event_id in pattern.evidence_event_ids)
        theme, count = labels.most_common(1)[0]
        purity = count / sum(labels.values())
        purities.append(purity)
        if purity >= 0.8 and theme in recurring:
            covered.add(theme)
        if sum(n for label, n in labels.items() if label.startswith(ONE_OFF)) * 2 > sum(labels.values()):
            one_offs += 1
        evidence_words = set().union(*(_words(event.content) for event in pattern.evidence))
        if _PLACEHOLDER.match(pattern.title) or not _words(pattern.title) & evidence_words:
            placeholders += 1
    missed = ", ".join(sorted(recurring - covered)) or "-"
    return {
        "missed": missed,
        "patterns": len(patterns),
        "themes": len(recurring),
        "covered": len(covered),
        "purity": sum(purities) / len(purities) if purities else 0.0,
        "placeholders": placeholders,
        "one_off_patterns": one_offs,
    }


def _reason_kind(reason: str) -> str:
    """A gate rejection's reason without its quoted words: what kind of failure it is."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "...", reason.split(";")[0])[:70]


def run(
    history: History, urls: tuple[str, str, str], config: ConsolidationConfig, profile: str
) -> list[tuple[str, dict[str, Any]]]:
    """Load, embed and consolidate `history` day by day into a new schema; the figures per method."""
    with loaded_clients(urls, profile, history.events, MODEL_SHA256, "quality") as clients:
        store, days = clients.patterns, history.days
        started = time.perf_counter()
        calls = duplicates = 0
        rejected: Counter[str] = Counter()
        for day in days:
            report = consolidate_day(day, config, clients, MODEL_SHA256, "quality-benchmark")
            calls += report.reasoning.calls
            rejected.update(_reason_kind(o.failure) for o in report.outcomes if o.failure and o.patterns)
            window = day - timedelta(days=config.lookback_days)
            duplicates += store.check(day, window).same_evidence_duplicates
        seconds = time.perf_counter() - started
    patterns = store.patterns()
    rows = [
        (method, score([p for p in patterns if p.method == method], history))
        for method in ("llm", "extractive")
    ]
    total = score(patterns, history) | {
        "llm_patterns": sum(p.method == "llm" for p in patterns),
        "duplicates": duplicates,
        # On the sample, which changes no value, every closed pattern was closed wrongly.
        "closed": len(store.patterns(include_superseded=True)) - len(patterns),
        "calls": calls,
        "seconds": seconds,
        "rejected": rejected,
    }
    return [*rows, ("all", total)]


def main() -> None:
    """Parse the arguments, start a private stack, score each history, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--history", choices=["sample", "generated", "both"], default="both")
    parser.add_argument("--models-dir", type=Path, help="reuse model files from here (default: a temp dir)")
    parser.add_argument("--profile", default="local", help="the models profile (models.toml) to measure")
    add_config_options(parser)
    args = parser.parse_args()
    config = chosen_config(parser, args)
    histories = {"sample": [sample_history()], "generated": [generated_history()]}
    chosen = (
        histories["sample"] + histories["generated"] if args.history == "both" else histories[args.history]
    )
    header = (
        f"{'history':10} {'method':10} {'patterns':>8} {'covered':>9} {'purity':>6} {'placeholder':>11} "
        f"{'one-off':>7} {'dup':>4} {'closed':>6} {'calls':>5} {'seconds':>7}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="athena-quality-") as home,
        private_stack(Path(home), args.models_dir, args.profile) as urls,
    ):
        print(header)
        for history in chosen:
            for method, figures in run(history, urls, config, args.profile):
                print(
                    f"{history.name:10} {method:10} {figures['patterns']:8.0f} "
                    f"{figures['covered']:4.0f} / {figures['themes']:<2.0f} {figures['purity']:6.2f} "
                    f"{figures['placeholders']:11.0f} {figures['one_off_patterns']:7.0f} "
                    f"{figures.get('duplicates', 0):4.0f} {figures.get('closed', 0):6.0f} "
                    f"{figures.get('calls', 0):5.0f} "
                    f"{figures.get('seconds', 0):7.0f}  missed: {figures['missed']}",
                    flush=True,
                )
                if method == "all":
                    llm = figures["llm_patterns"]
                    share = llm / figures["patterns"] if figures["patterns"] else 0.0
                    print(f"{'':10} llm-written share {share:.0%}; answers rejected by the gate, by reason:")
                    for reason, count in figures["rejected"].most_common():
                        print(f"{'':10}   {count:3d}  {reason}", flush=True)


if __name__ == "__main__":
    main()
