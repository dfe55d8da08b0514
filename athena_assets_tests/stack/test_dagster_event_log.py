"""Our event log storage records a range run exactly as Dagster's own PostgreSQL storage does: the same
planned events, the same failed and materialised partitions, the same asset rows; only in fewer
statements. Both run the same failing and then succeeding range runs on databases of the session's
PostgreSQL, with batches small enough to mix assets and check events. Every row our storage wrote
holds the text Dagster's serialiser writes for its event, with that event's time and partition."""

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._serdes import deserialize_value, serialize_value
from psycopg import sql

from athena_assets_tests.helpers import StackHandle
from resources.stack.dagster_event_log import BatchedPostgresEventLogStorage, dagster_storage_yaml

DAYS = dg.DailyPartitionsDefinition(start_date="2026-03-01", end_date="2026-03-11")
FIRST, LAST = "2026-03-01", "2026-03-10"


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def upstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Succeeds for every partition of its range."""
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[upstream],
    check_specs=[dg.AssetCheckSpec("has_days", asset="downstream")],
    config_schema={"fail": bool},
)
def downstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Fails its whole range when told to."""
    if context.op_config["fail"]:
        raise RuntimeError("told to fail")
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])


ASSETS = (upstream, downstream)


def _range_run(instance: dg.DagsterInstance, fail: bool) -> bool:
    result = dg.materialize(
        ASSETS,
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: FIRST, ASSET_PARTITION_RANGE_END_TAG: LAST},
        run_config={"ops": {"downstream": {"config": {"fail": fail}}}},
        raise_on_error=False,
    )
    return result.success


def _partitions(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, list[str]]:
    status = get_and_update_asset_status_cache_value(instance, key, DAYS)
    assert status is not None
    return {
        "materialized": sorted(status.deserialize_materialized_partition_subsets(DAYS).get_partition_keys()),
        "failed": sorted(status.deserialize_failed_partition_subsets(DAYS).get_partition_keys()),
    }


def _record(instance: dg.DagsterInstance) -> dict[str, Any]:
    """What the UI and sensors read back: planned events, partition status, asset rows."""
    planned = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    )
    runs = {run.run_id: index for index, run in enumerate(reversed(instance.get_runs()))}
    return {
        "planned": sorted(
            (
                record.asset_key.to_user_string() if record.asset_key else "",
                record.partition_key or "",
                runs[record.run_id],
            )
            for record in planned
        ),
        "status": {
            key.to_user_string(): _partitions(instance, key) for key in (upstream.key, downstream.key)
        },
        "last_runs": {
            record.asset_entry.asset_key.to_user_string(): runs.get(record.asset_entry.last_run_id or "")
            for record in instance.get_asset_records()
        },
    }


def _rows_as_dagster_writes_them(dagster_url: str) -> dict[str, int]:
    """Check each event log row (and planned check row) against Dagster's serialiser and the event it
    holds; the number of rows checked per event type."""
    checked: dict[str, int] = {}
    with psycopg.connect(dagster_url.replace("+psycopg2", "")) as conn:
        rows = conn.execute(
            "SELECT event, dagster_event_type, timestamp, partition FROM event_logs"
        ).fetchall()
        for text, kind, stamp, partition in rows:
            event = deserialize_value(text, dg.EventLogEntry)
            assert serialize_value(event) == text, text
            assert stamp.timestamp() == pytest.approx(event.timestamp, abs=1e-5), text
            if event.dagster_event is not None:
                assert (kind, partition) == (event.dagster_event_type, event.dagster_event.partition), text
            checked[kind] = checked.get(kind, 0) + 1
        checks = conn.execute(
            "SELECT evaluation_event, partition FROM asset_check_executions "
            "WHERE execution_status = 'PLANNED'"
        ).fetchall()
        for text, partition in checks:
            planned = deserialize_value(text, dg.EventLogEntry).get_dagster_event().asset_check_planned_data
            assert planned.partitions_subset is not None, text
            assert partition in planned.partitions_subset.get_partition_keys(), partition
        checked["planned check rows"] = len(checks)
    return checked


@pytest.fixture
def dagster_url(stack: StackHandle) -> Iterator[str]:
    """An empty Dagster database on the session's PostgreSQL; dropped after."""
    name = f"dagster_log_{secrets.token_hex(4)}"
    server = urlsplit(stack.database_url)
    admin = server._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield server._replace(scheme="postgresql+psycopg2", path=f"/{name}").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.timeout(180)
def test_a_range_run_is_recorded_as_dagsters_own_storage_records_it(
    stack: StackHandle, dagster_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 21 planned events (10 days x 2 assets, 1 check) in batches of 4: batches that mix the assets
    # and the check's event.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "4")
    serialised: list[str] = []  # the materialisations our storage serialised itself
    to_row = BatchedPostgresEventLogStorage._event_to_row

    def counting_to_row(storage: BatchedPostgresEventLogStorage, event: dg.EventLogEntry) -> dict[str, Any]:
        if event.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            serialised.append(str(event.get_dagster_event().partition))
        return to_row(storage, event)

    monkeypatch.setattr(BatchedPostgresEventLogStorage, "_event_to_row", counting_to_row)
    configs = {
        "dagster's": f'storage:\n  postgres:\n    postgres_url: "{dagster_url}"\n',
        "ours": dagster_storage_yaml(f'"{dagster_url}"'),
    }
    recorded = {}
    for name, config in configs.items():
        home = tmp_path / name
        home.mkdir()
        (home / "dagster.yaml").write_text(config)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert (type(instance.event_log_storage) is BatchedPostgresEventLogStorage) == (name == "ours")
            assert not _range_run(instance, fail=True)
            failed = _record(instance)
            assert _range_run(instance, fail=False)
            recorded[name] = (failed, _record(instance))
            if name == "ours":
                checked = _rows_as_dagster_writes_them(dagster_url)
            instance.wipe()  # the next storage starts from the same empty tables
            instance.wipe_all_schedules()

    days = [f"2026-03-{day:02d}" for day in range(1, 11)]
    failed, done = recorded["ours"]
    assert failed["planned"] == sorted(
        (asset, day, 0) for asset in ("downstream", "upstream") for day in days
    )
    assert failed["status"]["downstream"] == {"materialized": [], "failed": days}
    assert failed["status"]["upstream"] == {"materialized": days, "failed": []}
    assert done["status"]["downstream"] == {"materialized": days, "failed": []}
    assert done["last_runs"] == {"upstream": 1, "downstream": 1}
    assert recorded["ours"] == recorded["dagster's"]
    # Two runs: 20 planned and 20 materialisation rows from each (10 days, 2 assets, 10 failed in the
    # first), a planned check row per day and run.
    assert checked["ASSET_MATERIALIZATION_PLANNED"] == 40, checked
    assert checked["ASSET_MATERIALIZATION"] == 30, checked
    assert checked["planned check rows"] == 20, checked
    # Serialised once per batch of 4 (its placeholder event), not once per row.
    assert 0 < len(serialised) <= 10 and set(serialised) == {"athena-partition-key-placeholder"}, serialised
