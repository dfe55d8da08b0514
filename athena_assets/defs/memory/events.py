"""Episodic events: the inbox's event files loaded into PostgreSQL, one UTC day per partition.

Re-materialising a day is idempotent: events are upserted on their id, an event whose content changed
is updated (and its embedding becomes due again), and unusable lines go to the dead-letter table with
file, line and reason while the rest of the file is kept.
"""

from datetime import date

import dagster as dg

from athena_assets.defs.memory.code_versions import EVENTS_CODE_VERSION
from athena_assets.defs.partitions import daily_partitions, history_backfill_policy, partition_days
from resources.memory.event_files import RejectedLine
from resources.memory.event_line import Event
from resources.memory.inbox import InboxResource
from resources.memory.redaction import redaction_counts
from resources.memory.store import MemoryStore

DEAD_LETTER_CHECK = "no_dead_letters"
REDACTION_CHECK = "no_secrets_redacted"


@dg.asset(
    group_name="memory",
    kinds={"postgres"},
    owners=["team:athena"],
    partitions_def=daily_partitions,
    backfill_policy=history_backfill_policy,
    code_version=EVENTS_CODE_VERSION,
    description=__doc__,
    check_specs=[
        dg.AssetCheckSpec(
            DEAD_LETTER_CHECK,
            asset="episodic_events",
            description="Lines of the partition's days that were rejected (a warning: valid lines are kept).",
        ),
        dg.AssetCheckSpec(
            REDACTION_CHECK,
            asset="episodic_events",
            description="Secrets replaced by [REDACTED:<kind>] in the partition's events (a warning: the "
            "events are kept, the secrets are not).",
        ),
    ],
)
def episodic_events(
    context: dg.AssetExecutionContext, inbox: InboxResource, memory: MemoryStore
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    # Later files win for an id seen in several files: a re-sent event is an update.
    events: dict[str, Event] = {}
    rejected: list[RejectedLine] = []
    files = inbox.files()
    loaded: dict[str, list[date]] = {}
    for item in files:
        parsed = inbox.parse(item.path)
        memory.record_dead_letters(parsed.rejected, parsed.sha256)
        events.update((event.id, event) for event in parsed.events if first <= event.day <= last)
        rejected += [line for line in parsed.rejected if line.day is not None and first <= line.day <= last]
        loaded[parsed.sha256] = [day for day in parsed.days if first <= day <= last]
    counts = memory.upsert_events(list(events.values()))
    # Recorded after the events are in: a backfill finding every pair here skips the range.
    for file_sha256, days in loaded.items():
        memory.record_loaded(file_sha256, days, EVENTS_CODE_VERSION)
    context.log.info(
        f"{first}..{last}: {len(events)} events from {len(files)} files "
        f"({counts.new} new, {counts.updated} updated), {len(rejected)} lines rejected"
    )
    dead_letters = dg.AssetCheckResult(
        check_name=DEAD_LETTER_CHECK,
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "dead_letters": dg.MetadataValue.int(len(rejected)),
            "first_reasons": dg.MetadataValue.md(
                "\n".join(f"- `{line.file}:{line.line}` {line.reason}" for line in rejected[:10]) or "none"
            ),
        },
    )
    redacted = redaction_counts(events.values())
    secrets = dg.AssetCheckResult(
        check_name=REDACTION_CHECK,
        passed=not redacted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "redactions": dg.MetadataValue.int(sum(redacted.values())),
            "by_kind": dg.MetadataValue.json(dict(redacted.most_common())),
        },
    )
    return dg.MaterializeResult(
        metadata={
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "events": dg.MetadataValue.int(len(events)),
            "new": dg.MetadataValue.int(counts.new),
            "updated": dg.MetadataValue.int(counts.updated),
            "unchanged": dg.MetadataValue.int(counts.unchanged),
            "rejected": dg.MetadataValue.int(len(rejected)),
            "files": dg.MetadataValue.int(len(files)),
            "redactions": dg.MetadataValue.int(sum(redacted.values())),
        },
        check_results=[dead_letters, secrets],
    )
