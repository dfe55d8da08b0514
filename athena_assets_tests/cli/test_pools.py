"""The model pools on the real instance: launches of an asset that calls a model wait for each other.

Each test first holds the pool's one slot as a stand-in run, so both launches are caught waiting (not
merely lucky in their timing); once the slot is given back they run one after the other. A run whose
process died gives its slot back at the next command.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import psycopg
from dagster._core.storage.event_log.base import EventLogStorage

from athena_assets.api.instance import HOST_TAG, PID_TAG, fail_abandoned_runs
from athena_assets.defs.pools import EMBEDDING_POOL, REASONING_POOL
from athena_assets_tests.helpers import StackHandle, run_athena, write_jsonl

WAIT_S = 180


def _initialise_pool(storage: EventLogStorage, pool: str) -> None:
    """What the first claim of a run does when the pool has no slots yet: give it the instance's default
    limit (Dagster's initialisation fails when the pool exists already, so only then)."""
    if storage.get_concurrency_info(pool).slot_count == 0:
        assert storage.initialize_concurrency_limit_to_default(pool)


def _launch_while_held(
    stack: StackHandle, pool: str, commands: Sequence[Sequence[str]]
) -> tuple[set[str], list[str]]:
    """Run `athena COMMAND` for each command while a stand-in holds `pool`'s only slot; once every launch
    waits for the pool, give the slot back. Returns the launches' run ids
    and outputs, after checking that all succeeded."""
    storage = stack.instance.event_log_storage
    holder = f"pool-holder-{uuid.uuid4().hex[:8]}"
    _initialise_pool(storage, pool)
    assert storage.get_concurrency_info(pool).slot_count == 1, "the instance gives every pool one slot"
    assert storage.claim_concurrency_slot(pool, holder, "held").is_claimed
    athena = str(Path(sys.executable).with_name("athena"))
    launches = [
        subprocess.Popen(
            [athena, *command],
            env=stack.environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    try:
        deadline = time.monotonic() + WAIT_S
        while len(storage.get_concurrency_info(pool).pending_run_ids - {holder}) < len(commands):
            ended = [launch for launch in launches if launch.poll() is not None]
            outputs = [launch.communicate()[0] for launch in ended]
            assert not ended, f"a launch ended while the slot was held: {outputs}"
            assert time.monotonic() < deadline, f"the launches never queued for the {pool} pool"
            time.sleep(0.05)
        # Every launch is queued for the pool: none has started the step that needs it.
        waiting = storage.get_concurrency_info(pool).pending_run_ids - {holder}
        storage.free_concurrency_slots_for_run(holder)
        outputs = [launch.communicate(timeout=WAIT_S)[0] for launch in launches]
    finally:
        storage.free_concurrency_slots_for_run(holder)
        for launch in launches:
            launch.kill()
    assert [launch.returncode for launch in launches] == [0] * len(commands), outputs
    assert storage.get_concurrency_info(pool).active_slot_count == 0
    return waiting, outputs


def _step_interval(instance: dg.DagsterInstance, run_id: str, step_key: str) -> tuple[float, float]:
    """When the run's step started and ended (event log timestamps)."""
    events = {
        entry.dagster_event.event_type: entry.timestamp
        for entry in instance.all_logs(run_id)
        if entry.is_dagster_event and entry.step_key == step_key
    }
    return events[dg.DagsterEventType.STEP_START], events[dg.DagsterEventType.STEP_SUCCESS]


def test_two_launches_of_the_reasoning_asset_never_overlap(stack: StackHandle) -> None:
    # Two days with nothing to consolidate: the steps are quick.
    commands = [
        ["backfill", "--from", day, "--to", day, "--assets", "consolidated_patterns"]
        for day in ("2026-03-11", "2026-03-12")
    ]
    run_ids, _ = _launch_while_held(stack, REASONING_POOL, commands)
    first, second = sorted(
        _step_interval(stack.instance, run_id, "consolidated_patterns") for run_id in run_ids
    )
    assert first[1] <= second[0], f"the two steps overlapped: {first} and {second}"


def test_two_backfills_of_one_range_at_once_embed_each_event_once(stack: StackHandle, tmp_path: Path) -> None:
    rows = [
        {
            "id": f"twin-{i}",
            "occurred_at": f"2026-04-0{1 + i % 2}T{10 + i % 8:02d}:00:00Z",
            "content": f"twin backfill event {i}: staging deploy number {i} rolled back after a failed check",
        }
        for i in range(120)
    ]
    assert run_athena(stack, "ingest", str(write_jsonl(tmp_path / "twins.jsonl", rows))).returncode == 0
    backfill = ["backfill", "--from", "2026-04-01", "--to", "2026-04-02"]
    run_ids, _ = _launch_while_held(stack, EMBEDDING_POOL, [backfill, backfill])
    # One run embeds; the other waits for it, then finds every event embedded. (A range run records one
    # materialisation per day, each with the range's counts.)
    embedded = sorted(
        {
            run_id: event.asset_materialization.metadata["embedded"].value
            for run_id in run_ids
            for event in stack.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            if event.asset_materialization
            and event.asset_materialization.asset_key == dg.AssetKey("event_embeddings")
        }.values()
    )
    assert embedded == [0, 120]
    with psycopg.connect(stack.database_url) as connection:
        counts = connection.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM athena.event_embeddings"
            " WHERE event_id LIKE 'twin-%'"
        ).fetchone()
    assert counts == (120, 120)


def test_a_run_whose_process_died_gives_its_pool_slot_back(stack: StackHandle) -> None:
    # A run an `athena` process of this machine started, holding the slot, and a pid that is gone.
    dead_pid = 2**22 + 17  # above the kernel's largest pid: no such process
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: str(dead_pid), HOST_TAG: socket.gethostname()},
    )
    stack.instance.run_storage.add_run(run)
    storage = stack.instance.event_log_storage
    _initialise_pool(storage, REASONING_POOL)
    assert storage.claim_concurrency_slot(REASONING_POOL, run.run_id, "consolidated_patterns").is_claimed
    assert run.run_id in storage.get_concurrency_info(REASONING_POOL).active_run_ids

    assert run.run_id in fail_abandoned_runs(stack.instance)
    assert run.run_id not in storage.get_concurrency_info(REASONING_POOL).active_run_ids
