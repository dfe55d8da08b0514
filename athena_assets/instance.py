"""Running materialisations through the same Dagster instance the UI shows (DAGSTER_HOME on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from athena_assets.environment import build_resources
from resources.settings import Settings


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance configured in `settings.dagster_home` (written by `athena stack up`)."""
    dagster_home = settings.dagster_home or settings.home / "dagster"
    if not (dagster_home / "dagster.yaml").is_file():
        raise RuntimeError(f"{dagster_home}/dagster.yaml does not exist yet; run `athena stack up` first")
    return dg.DagsterInstance.from_config(str(dagster_home))


def materialize(
    settings: Settings,
    assets: Sequence[dg.AssetsDefinition],
    instance: dg.DagsterInstance,
    partition_key: str | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise `assets` in `instance` with the code location's resources; raises on failure."""
    return dg.materialize(
        assets,
        resources=build_resources(settings),
        instance=instance,
        partition_key=partition_key,
    )
