"""`new_events_sensor`: runs for exactly the days new files touch, once per file content."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg

from athena_assets.defs.memory.sensors import new_events_sensor
from resources.memory.inbox import InboxResource


def _file(path: Path, days: list[str]) -> Path:
    rows = [
        {"occurred_at": f"{day}T10:00:00Z", "content": f"something happened on {day} ({i})"}
        for i, day in enumerate(days)
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def _tick(inbox: InboxResource, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, resources={"inbox": inbox})
    result = new_events_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_new_files_request_exactly_their_days_and_the_cursor_moves_on(tmp_path: Path) -> None:
    inbox = InboxResource(inbox_dir=str(tmp_path / "inbox"), history_start="2026-01-01")
    inbox.ingest(_file(tmp_path / "a.jsonl", ["2026-11-02", "2026-11-02", "2026-11-05"]))

    first = _tick(inbox, None)
    assert sorted(request.partition_key for request in first.run_requests or []) == [
        "2026-11-02",
        "2026-11-05",
    ]
    assert len({request.run_key for request in first.run_requests or []}) == 2

    idle = _tick(inbox, first.cursor)
    assert not idle.run_requests
    assert idle.skip_reason is not None

    inbox.ingest(_file(tmp_path / "b.jsonl", ["2026-11-07"]))
    second = _tick(inbox, first.cursor)
    assert [request.partition_key for request in second.run_requests or []] == ["2026-11-07"]


def test_the_same_content_arriving_twice_has_the_same_run_keys(tmp_path: Path) -> None:
    inbox = InboxResource(inbox_dir=str(tmp_path / "inbox"), history_start="2026-01-01")
    stored = inbox.ingest(_file(tmp_path / "a.jsonl", ["2026-11-02"])).stored_as
    assert stored is not None
    first = _tick(inbox, None)
    # The same bytes dropped in again under another name (e.g. copied by hand) after the cursor.
    copy = stored.with_name(stored.name.replace("-a.", "-again."))
    shutil.copyfile(stored, copy)
    later = stored.stat().st_mtime_ns + 1_000_000_000
    os.utime(copy, ns=(later, later))
    second = _tick(inbox, first.cursor)
    assert [r.run_key for r in second.run_requests or []] == [r.run_key for r in first.run_requests or []]


def test_events_outside_the_partitions_request_nothing(tmp_path: Path) -> None:
    inbox = InboxResource(inbox_dir=str(tmp_path / "inbox"), history_start="2026-06-01")
    # `ingest` keeps no file without a valid event; one put in the inbox by other means is still read.
    assert inbox.ingest(_file(tmp_path / "old.jsonl", ["2025-01-01"])).stored_as is None
    shutil.copyfile(tmp_path / "old.jsonl", inbox.directory() / "old.jsonl")
    result = _tick(inbox, None)
    assert not result.run_requests
