"""The daily partitions every memory asset shares: UTC days of the events' `occurred_at`."""

from datetime import date, timedelta

import dagster as dg

from resources.settings import Settings

HISTORY_START = Settings.from_env().history_start

# end_offset=1 includes today, so events of the current day can be embedded before it ends.
daily_partitions = dg.DailyPartitionsDefinition(start_date=HISTORY_START.isoformat(), end_offset=1)

# A backfill runs a whole range of days in one run (one load, one bulk write). `athena backfill` sizes
# its runs by events (`api/backfill_plan.py`); a backfill from the UI cannot count events first, so it
# takes a year of days a run.
BACKFILL_DAYS_PER_RUN = 366
history_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=BACKFILL_DAYS_PER_RUN)


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The first and last day (inclusive) of the run's partition range: one day or a backfill range."""
    key_range = context.partition_key_range
    return date.fromisoformat(key_range.start), date.fromisoformat(key_range.end)


def day_keys(first: date, last: date) -> list[str]:
    """The partition keys from `first` to `last`, inclusive."""
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]
