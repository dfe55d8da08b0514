"""Tiers (a) and (d): the consolidation asset, job and nightly schedule load into a code location, and
the schedule's cron and run requests say which day it consolidates."""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import pytest

from athena_assets.definitions import build_defs
from athena_assets.defs.consolidation.schedules import build_nightly_schedule, previous_day_key
from athena_assets.defs.partitions import HISTORY_START, daily_partitions
from athena_assets.knowledge.cluster_prompt import PROMPT_VERSION
from resources.settings import Settings, SettingsError


def _settings(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env({"ATHENA_HOME": str(tmp_path), **environ})


def test_the_code_location_with_consolidation_loads_and_validates(tmp_path: Path) -> None:
    defs = build_defs(_settings(tmp_path))
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_schedule_def("nightly_consolidation").job_name == "consolidation_job"
    job = defs.resolve_job_def("consolidation_job")
    assert job.partitions_def == daily_partitions
    # Consolidate, then compress the day's Claude prompt: both every night.
    assert set(job.asset_layer.selected_asset_keys) == {
        dg.AssetKey("consolidated_patterns"),
        dg.AssetKey("compressed_prompts"),
    }
    for name in ("event_embeddings", "consolidated_patterns", "compressed_prompts"):
        policy = defs.resolve_assets_def(name).op.retry_policy
        assert policy is not None and policy.max_retries == 2 and policy.backoff == dg.Backoff.EXPONENTIAL
    node = defs.resolve_asset_graph().get(dg.AssetKey("consolidated_patterns"))
    assert node.group_name == "consolidation"
    assert PROMPT_VERSION in (node.code_version or ""), "a new prompt version marks the asset stale"
    assert {dg.AssetKey("event_embeddings"), dg.AssetKey("reasoning_model_file")} <= set(node.parent_keys)
    assert set(node.check_keys) == {
        dg.AssetCheckKey(dg.AssetKey("consolidated_patterns"), "patterns_have_evidence"),
        dg.AssetCheckKey(dg.AssetKey("consolidated_patterns"), "no_failed_clusters"),
    }


def test_the_schedule_runs_at_three_utc_by_default_and_follows_the_settings(tmp_path: Path) -> None:
    default = build_nightly_schedule(_settings(tmp_path))
    assert default.name == "nightly_consolidation"
    assert (default.cron_schedule, default.execution_timezone) == ("0 3 * * *", "UTC")
    assert default.default_status == dg.DefaultScheduleStatus.RUNNING
    assert default.job_name == "consolidation_job"

    later = build_nightly_schedule(
        _settings(tmp_path, ATHENA_CONSOLIDATION_HOUR="5", ATHENA_CONSOLIDATION_MINUTE="30")
    )
    assert later.cron_schedule == "30 5 * * *"
    with pytest.raises(SettingsError, match="ATHENA_CONSOLIDATION_HOUR=24 is outside"):
        _settings(tmp_path, ATHENA_CONSOLIDATION_HOUR="24")
    with pytest.raises(SettingsError, match="ATHENA_CONSOLIDATION_MINUTE"):
        _settings(tmp_path, ATHENA_CONSOLIDATION_MINUTE="-1")


@pytest.mark.parametrize(
    ("tick", "day"),
    [
        (datetime(2026, 11, 3, 3, 0, tzinfo=UTC), "2026-11-02"),
        (datetime(2026, 11, 3, 0, 5, tzinfo=UTC), "2026-11-02"),
        (datetime(2027, 1, 1, 3, 0, tzinfo=UTC), "2026-12-31"),
    ],
)
def test_a_tick_consolidates_the_day_that_just_ended(tick: datetime, day: str, tmp_path: Path) -> None:
    context = dg.build_schedule_context(scheduled_execution_time=tick)
    request = build_nightly_schedule(_settings(tmp_path))(context)
    assert isinstance(request, dg.RunRequest)
    assert (request.partition_key, request.run_key) == (day, day), "one run per day, however often evaluated"
    assert request.tags["athena/trigger"] == "nightly_consolidation"
    # The partitions already hold today (end_offset=1), which is why the schedule names the day itself.
    with dg.partition_loading_context(effective_dt=tick):
        assert daily_partitions.get_last_partition_key() == tick.date().isoformat()


def test_a_tick_on_the_first_day_of_the_history_skips(tmp_path: Path) -> None:
    tick = datetime.combine(HISTORY_START, time(3), tzinfo=UTC)
    schedule = build_nightly_schedule(_settings(tmp_path))
    assert isinstance(schedule(dg.build_schedule_context(scheduled_execution_time=tick)), dg.SkipReason)
    assert previous_day_key(tick + timedelta(days=1)) == HISTORY_START.isoformat()
