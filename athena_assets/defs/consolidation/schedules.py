"""When consolidation runs by itself: `consolidation_job` and the `nightly_consolidation` schedule,
which consolidates the day that just ended (the partitions' timezone) every night and then compresses
its Claude prompt."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.partitions import HISTORY_START, daily_partitions
from athena_assets.defs.prompts.assets import compressed_prompts
from resources.settings import Settings

consolidation_job = dg.define_asset_job(
    "consolidation_job",
    selection=[consolidated_patterns, compressed_prompts],
    partitions_def=daily_partitions,
    description="Consolidate one day's events into semantic patterns, then compress its Claude prompt.",
)


def previous_day_key(scheduled_at: datetime | None) -> str | None:
    """The partition key of the day before `scheduled_at` (default: now) in the partitions' timezone,
    or None before the history starts."""
    moment = scheduled_at or datetime.now(UTC)
    day = moment.astimezone(ZoneInfo(daily_partitions.timezone)).date() - timedelta(days=1)
    return day.isoformat() if day >= HISTORY_START else None


def build_nightly_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """`nightly_consolidation` at `settings.consolidation_hour:minute` in the partitions' timezone."""

    @dg.schedule(
        name="nightly_consolidation",
        job=consolidation_job,
        # The cron and timezone come from the partitions. Not build_schedule_from_partitioned_job: with
        # end_offset=1 the last partition at 03:00 is today, and the night belongs to yesterday.
        cron_schedule=daily_partitions.get_cron_schedule(
            minute_of_hour=settings.consolidation_minute, hour_of_day=settings.consolidation_hour
        ),
        execution_timezone=daily_partitions.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every night, consolidate the day that just ended into semantic patterns and compress "
        "its Claude prompt (ATHENA_CONSOLIDATION_HOUR / _MINUTE set the time).",
    )
    def nightly_consolidation(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        key = previous_day_key(context.scheduled_execution_time)
        if key is None:
            return dg.SkipReason(f"the day before this tick is before ATHENA_HISTORY_START={HISTORY_START}")
        # The run key is the day: a tick evaluated twice still starts one run for it.
        return dg.RunRequest(run_key=key, partition_key=key, tags={"athena/trigger": "nightly_consolidation"})

    return nightly_consolidation
