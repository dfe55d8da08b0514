"""Dagster's PostgreSQL event log, recording a range run's partitions in bulk.

A run over a range of daily partitions logs a "materialisation planned" event per partition and asset
(5,400 for two assets over 2,700 days), a planned row per partition and asset check, and then a
materialisation per partition and asset; Dagster builds, serialises and writes each on its own while
the embedding server waits. This storage writes the same rows, so the UI sees the same partitions
planned, failed, in progress or materialised, with the repeated work done once:

- Dagster can plan a range as one event per asset holding the partitions, but then marks no partition
  failed when the run fails: it reads failed and in-progress partitions from a planned row per
  partition. This storage takes the one event and has PostgreSQL expand it into those rows (the event
  serialised once, each row's partition key substituted into its text).
- A planned asset check gets a row per partition, expanded the same way.
- A range run's materialisations differ only in their partition and time: the first of a batch is
  serialised with placeholders for both, the others substitute theirs into that text (checked: the
  text is what Dagster's serialiser writes for each), and the rows go as parameters of one statement.

Instance configs name it as their `event_log_storage` (`resources/stack/local.py`, `docker/dagster.yaml`);
everything else is Dagster's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION
# Stands for a partition key in an event serialised once for every partition of a range (a key is a
# plain string; as JSON it is quoted, so the placeholder is replaced with the key's JSON).
_KEY = "athena-partition-key-placeholder"
_KEY_JSON = json.dumps(_KEY)
# Stands for an event's time in the same way (a float whose text no real event time has).
_TIME = 1234.5678901234567
_TIME_JSON = json.dumps(_TIME)
# Dagster's tables (`SqlEventLogStorageTable`, `AssetCheckExecutionsTable`), a row per partition key.
_PLANNED_ROWS = sa.text(
    "INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition) "
    "SELECT :run_id, replace(:event, :placeholder, key_json), :dagster_event_type, :timestamp, "
    ":step_key, :asset_key, key "
    "FROM unnest(CAST(:keys AS text[]), CAST(:key_jsons AS text[])) AS planned(key, key_json) "
    "RETURNING id, asset_key"
)
_PLANNED_CHECK_ROWS = sa.text(
    "INSERT INTO asset_check_executions (asset_key, check_name, partition, run_id, "
    "execution_status, evaluation_event, evaluation_event_timestamp, evaluation_event_storage_id) "
    "SELECT :asset_key, :check_name, key, :run_id, :execution_status, :evaluation_event, "
    ":evaluation_event_timestamp, :evaluation_event_storage_id FROM unnest(CAST(:keys AS text[])) AS key"
)


def _with_placeholders(event: dg.EventLogEntry) -> dg.EventLogEntry | None:
    """A partitioned materialisation with `_KEY` for its partition and `_TIME` for its time; None for any
    other event."""
    dagster_event = event.get_dagster_event()
    data = dagster_event.event_specific_data
    materialization = getattr(data, "materialization", None)
    if not isinstance(materialization, dg.AssetMaterialization) or materialization.partition is None:
        return None
    data = data._replace(materialization=materialization._replace(partition=_KEY))  # type: ignore[union-attr]
    return event._replace(timestamp=_TIME, dagster_event=dagster_event._replace(event_specific_data=data))


class BatchedPostgresEventLogStorage(PostgresEventLogStorage):
    """`PostgresEventLogStorage` that plans a range run's partitions in bulk (see the module doc)."""

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

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        """Dagster then plans a range run with one event per asset holding the partitions, instead of an
        event per partition; `_store_planned` still writes the rows per partition the UI reads."""
        return True

    def store_event(self, event: dg.EventLogEntry) -> None:
        """Store one event (a planned materialisation as `_store_planned` does)."""
        if event.dagster_event_type == PLANNED:
            self._store_planned([event])
        else:
            super().store_event(event)

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        """Store `events`: the planned materialisations among them in one statement, the rest as Dagster
        does (a batch mixes them only where one asset's events end and the next's begin)."""
        planned = [event for event in events if event.dagster_event_type == PLANNED]
        others = [event for event in events if event.dagster_event_type != PLANNED]
        if others and {event.dagster_event_type for event in others} == {MATERIALIZATION}:
            self._store_materializations(others)
        elif others:
            super().store_event_batch(others)
        if planned:
            self._store_planned(planned)

    def _store_materializations(self, events: Sequence[dg.EventLogEntry]) -> None:
        """A batch of materialisations as Dagster's storage writes it (the rows, their tags, the asset's
        row from the last), the rows built by `_materialization_rows` and sent as parameters rather than
        compiled into the statement (see `_insert_returning`)."""
        ids = self._insert_returning(self._materialization_rows(events))
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, events, [event_id for event_id, _ in ids])
            self._store_asset_event(conn, events[-1], ids[-1][0])

    def _materialization_rows(self, events: Sequence[dg.EventLogEntry]) -> list[dict[str, Any]]:
        """Dagster's row of each event; a run of events that differ only in partition and time is
        serialised once (see the module doc)."""
        rows = []
        shape: dg.EventLogEntry | None = None
        template: dict[str, Any] = {}
        usable = False
        for event in events:
            candidate = _with_placeholders(event)
            if candidate is not None and candidate != shape:
                shape, template = candidate, self._event_to_row(candidate)
                # Placeholders found elsewhere (a metadata value equal to one) could not be told apart.
                usable = template["event"].count(_KEY_JSON) == 1 and template["event"].count(_TIME_JSON) == 1
            if candidate is None or not usable:
                rows.append(self._event_to_row(event))
                continue
            partition = event.get_dagster_event().partition
            text = template["event"].replace(_TIME_JSON, json.dumps(event.timestamp))
            rows.append(
                {
                    **template,
                    "event": text.replace(_KEY_JSON, json.dumps(partition)),
                    "timestamp": self._event_insert_timestamp(event),
                    "partition": partition,
                }
            )
        return rows

    def _insert_returning(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
        """Insert event log `rows`; their (id, asset key) in order. The rows go as parameters, not as
        one VALUES list: SQLAlchemy compiles a bind parameter for every value of a list (20,000 for
        2,700 rows: seconds), and sends parameters in pages of one statement."""
        if not rows:
            return []
        insert = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, SqlEventLogStorageTable.c.asset_key, sort_by_parameter_order=True
        )
        with self._connect() as conn:
            return [(int(row[0]), str(row[1])) for row in conn.execute(insert, list(rows)).fetchall()]

    def _store_planned(self, planned: Sequence[dg.EventLogEntry]) -> None:
        """Planned materialisations as a row per planned partition. An event planning a range of
        partitions is written as the events Dagster would have written, one per partition (the row and
        the event name the partition: the UI marks a partition failed or in progress from it): one
        INSERT that PostgreSQL expands from the event serialised once with a placeholder for the key."""
        stored = self._insert_returning(
            [
                self._event_to_row(event)
                for event in planned
                if event.get_dagster_event().event_specific_data.partitions_subset is None
            ]
        )
        for event in planned:
            data = event.get_dagster_event().event_specific_data
            if data.partitions_subset is None:
                continue
            one = event._replace(
                dagster_event=event.get_dagster_event()._replace(
                    event_specific_data=data._replace(partition=_KEY, partitions_subset=None)
                )
            )
            keys = list(data.partitions_subset.get_partition_keys())
            parameters = {
                **self._event_to_row(one),
                "placeholder": _KEY_JSON,
                "keys": keys,
                "key_jsons": [json.dumps(key) for key in keys],
            }
            with self._connect() as conn:
                stored += [(int(row[0]), str(row[1])) for row in conn.execute(_PLANNED_ROWS, parameters)]
        # The asset's row records the latest planned event (its run); one update per asset suffices.
        latest_id: dict[str, int] = {}
        for event_id, asset_key in stored:
            latest_id[asset_key] = max(event_id, latest_id.get(asset_key, 0))
        by_asset = {event.get_dagster_event().asset_key: event for event in planned}
        with self.index_transaction() as conn:
            for asset_key, event in by_asset.items():
                self._store_asset_event(conn, event, latest_id[asset_key.to_string()])

    def _store_asset_check_evaluation_planned(self, event: dg.EventLogEntry, event_id: int | None) -> None:
        """Dagster's rows for a planned check (one per partition of the run), expanded by PostgreSQL from
        the event serialised once."""
        planned = event.get_dagster_event().asset_check_planned_data
        subset = planned.partitions_subset
        with self.index_connection() as conn:
            conn.execute(
                _PLANNED_CHECK_ROWS,
                {
                    "asset_key": planned.asset_key.to_string(),
                    "check_name": planned.check_name,
                    "keys": list(subset.get_partition_keys()) if subset is not None else [None],
                    "run_id": event.run_id,
                    "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                    "evaluation_event": serialize_value(event),
                    "evaluation_event_timestamp": self._event_insert_timestamp(event),
                    "evaluation_event_storage_id": event_id,
                },
            )


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
