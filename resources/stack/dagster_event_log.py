"""Dagster's PostgreSQL event log, writing a run's planned-materialisation events in one statement.

A run over a range of daily partitions starts by logging one "materialisation planned" event per
partition and asset: 1,800 for two assets over 900 days. Dagster marks a partition failed from them when
the run fails, so they stay; it hands them to the storage in batches when `DAGSTER_EVENT_BATCH_SIZE` is
set (`athena` sets it), but `PostgresEventLogStorage` writes such a batch one event at a time, three
statements each: 4.1 s of a 900-day backfill's start, the embedding server idle (measured). This storage
writes them as one INSERT and updates each asset's row once, as Dagster already does for a batch of
materialisations. Instance configs name it as their `event_log_storage` (`resources/stack/local.py`,
`docker/dagster.yaml`); everything else is Dagster's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED


class BatchedPostgresEventLogStorage(PostgresEventLogStorage):
    """`PostgresEventLogStorage` whose batches of planned materialisations are one INSERT."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedPostgresEventLogStorage:
        """The storage for an instance config's `event_log_storage.config` (the same keys as Dagster's)."""
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        """Store `events`: the planned materialisations among them in one statement, the rest as Dagster
        does (a batch mixes them only where one asset's events end and the next's begin)."""
        planned = [event for event in events if event.dagster_event_type == PLANNED]
        others = [event for event in events if event.dagster_event_type != PLANNED]
        if others:
            super().store_event_batch(others)
        if not planned:
            return
        insert = self.prepare_insert_event_batch(planned).returning(SqlEventLogStorageTable.c.id)
        with self._connect() as conn:
            event_ids = [int(row[0]) for row in conn.execute(insert).fetchall()]
        # The asset's row records the latest planned event (its run); one update per asset suffices.
        latest = {
            event.get_dagster_event().asset_key: (event, event_id)
            for event, event_id in zip(planned, event_ids, strict=True)
        }
        with self.index_transaction() as conn:
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)


def dagster_storage_yaml(postgres_url_yaml: str) -> str:
    """The instance config's three storages on one PostgreSQL database, the event log being this one;
    `postgres_url_yaml` is the URL's YAML (a quoted string, or `{env: VARIABLE}`)."""
    storages = (
        ("run_storage", "dagster_postgres", "PostgresRunStorage"),
        ("event_log_storage", __name__, BatchedPostgresEventLogStorage.__name__),
        ("schedule_storage", "dagster_postgres", "PostgresScheduleStorage"),
    )
    return "".join(
        f"{key}:\n  module: {module}\n  class: {name}\n  config:\n    postgres_url: {postgres_url_yaml}\n"
        for key, module, name in storages
    )
