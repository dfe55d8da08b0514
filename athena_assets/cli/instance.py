"""Running materialisations through the same Dagster instance the UI shows (DAGSTER_HOME on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
import psycopg

from athena_assets.defs.resources import AthenaResources
from resources.settings import Settings
from resources.stack.local import application_database_url

# How long a command waits for the database before saying it is down (Dagster's own client retries
# for about 15 s, then prints a traceback).
DATABASE_CHECK_TIMEOUT_S = 3

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
    return dg.DagsterInstance.from_config(str(dagster_home))


def materialize(
    settings: Settings,
    assets: Sequence[dg.AssetsDefinition],
    instance: dg.DagsterInstance,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialise `assets` in `instance` with the code location's resources (a run the UI shows)."""
    return dg.materialize(
        assets,
        resources=AthenaResources.from_settings(settings).as_dict(),
        instance=instance,
        partition_key=partition_key,
        tags=tags,
        raise_on_error=raise_on_error,
        run_config=QUIET_CONSOLE,
    )
