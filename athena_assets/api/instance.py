"""Running materialisations through the same Dagster instance the UI shows (DAGSTER_HOME on PostgreSQL)."""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Mapping, Sequence

import dagster as dg
import psycopg

from athena_assets.defs.resources import AthenaResources
from resources.settings import Settings, application_database_url
from resources.stack.liveness import process_runs

# Every run `athena` starts records which process on which machine runs it, so a run whose process was
# killed can be recognised later (no daemon watches in-process runs).
PID_TAG = "athena/pid"
HOST_TAG = "athena/host"
# How long a command waits for the database before saying it is down (Dagster's own client retries
# for about 15 s, then prints a traceback).
DATABASE_CHECK_TIMEOUT_S = 3

# Dagster's PostgreSQL storages open a new connection for every statement unless pooled, and a range
# run writes a few thousand events: measured on a 900-day backfill, 9,300 connections (scram-sha-256
# authentication and a backend each) took 46 of its 132 s. The webserver pools them; so do we, with
# the webserver's defaults (one connection kept per storage, recycled hourly) and no statement timeout.
POOL_RECYCLE_S = 3600
POOL_MAX_OVERFLOW = 20
# A range run writes a materialisation per partition; Dagster writes such events in batches of this
# many when DAGSTER_EVENT_BATCH_SIZE is set (one INSERT and one transaction per batch instead of each).
# A batch covers 27 years of days, so a step's materialisations go in one write (measured on 2,700
# days: the events step 1.53 s with batches of 500, 1.45 s with one batch).
EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 10_000

# The console shows the run's own log lines (progress, counts), not every engine event.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance configured in `settings.dagster_home` (written by `athena stack up`)."""
    dagster_home = settings.dagster_home or settings.home / "dagster"
    if not (dagster_home / "dagster.yaml").is_file():
        raise RuntimeError(f"{dagster_home}/dagster.yaml does not exist yet; run `athena stack up` first")
    # The instance lives in the same PostgreSQL as the memory: a server that is down is reported at once
    # (psycopg.OperationalError, which `athena` prints as one line naming the database).
    with psycopg.connect(application_database_url(settings), connect_timeout=DATABASE_CHECK_TIMEOUT_S):
        pass
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    instance.optimize_for_webserver(
        statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=POOL_MAX_OVERFLOW
    )
    fail_abandoned_runs(instance)
    return instance


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark as failed the runs an `athena` process of this machine started and can no longer finish (it
    was killed, or the machine restarted, or the database went away under it); returns their ids.

    Such a run would otherwise stay STARTED for ever in the UI, holding its concurrency pool slots. Its
    finished partitions are kept, and re-running the command is safe (every write is idempotent)."""
    host = socket.gethostname()
    running = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host}
        )
    )
    failed = []
    for run in running:
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if pid and not process_runs(pid):
            instance.report_run_failed(
                run,
                message=f"the athena process that ran this run (pid {pid} on {host}) ended without "
                "finishing it (killed, or the machine restarted); run the same command again: finished "
                "partitions are kept and re-running is safe",
            )
            # Its pool slots too: a killed process never gave them back, and the next run of that asset
            # would wait for them for ever.
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            failed.append(run.run_id)
    return failed


def materialize(
    settings: Settings,
    assets: Sequence[dg.AssetsDefinition],
    instance: dg.DagsterInstance,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialise `assets` in `instance` with the code location's resources (a run the UI shows)."""
    os.environ.setdefault(EVENT_BATCH_ENV, str(EVENT_BATCH_SIZE))  # Dagster reads it while the run writes
    # What is alive now (Dagster's modules, the definitions: ~240,000 objects in a fresh CLI) outlives
    # the run; frozen, the run's full garbage collections stop scanning it (measured on a 2,700-day
    # backfill: 0.34-0.64 s of collection down to 0.11-0.18 s). Freezing is instant; only reference
    # cycles already unreachable now are never freed (3 objects in a fresh CLI).
    gc.freeze()
    return dg.materialize(
        assets,
        resources=AthenaResources.from_settings(settings).as_dict(),
        instance=instance,
        partition_key=partition_key,
        tags={PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), **(tags or {})},
        raise_on_error=raise_on_error,
        run_config=QUIET_CONSOLE,
    )
