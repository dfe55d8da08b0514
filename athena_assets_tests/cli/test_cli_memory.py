"""`athena ingest`, `athena backfill` and `athena recall --json` as a user runs them, on the real stack."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg

from athena_assets.api.app import App
from athena_assets.api.instance import PID_TAG
from athena_assets.api.recall import recall
from athena_assets_tests.helpers import StackHandle, run_athena, write_jsonl
from resources.stack.llama_server import free_port


def test_ingest_backfill_and_recall_from_the_command_line(stack: StackHandle, tmp_path: Path) -> None:
    events = tmp_path / "cli-events.jsonl"
    events.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "id": "cli-1",
                        "occurred_at": "2026-10-01T08:00:00Z",
                        "content": "the nightly backup of the pgvector database finished",
                    }
                ),
                json.dumps(
                    {
                        "id": "cli-2",
                        "occurred_at": "2026-10-01T09:00:00+02:00",
                        "content": "a flaky test in the sensor suite was quarantined",
                    }
                ),
                '{"id": "cli-3", "occurred_at": "2026-10-01T10:00:00", "content": "no zone"}',
            ]
        )
        + "\n"
    )
    ingested = run_athena(stack, "ingest", str(events))
    assert ingested.returncode == 0, ingested.stderr
    assert "accepted 2 events on 1 days, rejected 1 lines" in ingested.stdout
    assert f"{events}:3:" in ingested.stdout

    again = run_athena(stack, "ingest", str(events))
    assert "already in the inbox" in again.stdout

    backfilled = run_athena(stack, "backfill", "--from", "2026-10-01", "--to", "2026-10-01")
    assert backfilled.returncode == 0, backfilled.stdout + backfilled.stderr
    assert "1 run(s) for 2026-10-01..2026-10-01" in backfilled.stdout

    recalled = run_athena(stack, "recall", "database backup", "-k", "2", "--json")
    assert recalled.returncode == 0, recalled.stderr
    hits = json.loads(recalled.stdout)
    fields = {"event_id", "score", "occurred_at", "content", "event_type", "source", "session_id", "metadata"}
    assert [set(hit) for hit in hits] == [fields | {"vector_rank", "text_rank"}] * 2
    assert hits[0]["event_id"] == "cli-1"
    assert hits[0]["score"] >= hits[1]["score"]

    scoped = run_athena(
        stack, "recall", "database backup", "--json", "--since", "2026-10-01", "--until", "2026-10-01",
        "--where", "unknown=1",
    )  # fmt: skip
    assert scoped.returncode == 0, scoped.stderr
    assert json.loads(scoped.stdout) == []
    wrong = run_athena(stack, "recall", "backup", "--since", "2026-10-01T08:00:00")
    assert wrong.returncode == 2
    assert "no time zone" in wrong.stderr


def test_ingest_of_a_missing_file_names_it(stack: StackHandle, tmp_path: Path) -> None:
    result = run_athena(stack, "ingest", str(tmp_path / "nope.jsonl"))
    assert result.returncode != 0
    assert "nope.jsonl" in result.stderr


def test_a_database_that_is_down_is_one_line_naming_it_and_the_fix(
    stack: StackHandle, tmp_path: Path
) -> None:
    environ = stack.environ() | {"ATHENA_PG_PORT": str(free_port())}
    commands = {
        "recall": ["recall", "anything"],
        "patterns": ["patterns"],
        "metrics": ["metrics"],
        "backfill": ["backfill", "--from", "2026-10-01", "--to", "2026-10-02"],
    }
    athena = str(Path(sys.executable).with_name("athena"))
    for name, args in commands.items():
        result = subprocess.run(
            [athena, *args],
            env=environ, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert environ["ATHENA_PG_PORT"] in line and "does not answer" in line, (name, line)
        assert "athena stack up" in line and "Traceback" not in result.stderr, name
    # An argument error is reported as such, not as the database that is down.
    reversed_range = subprocess.run(
        [athena, "backfill", "--from", "2026-10-02", "--to", "2026-10-01"],
        env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert reversed_range.returncode == 2 and "is before --from" in reversed_range.stderr


def test_a_run_whose_process_was_killed_is_marked_failed_by_the_next_command(stack: StackHandle) -> None:
    athena = str(Path(sys.executable).with_name("athena"))
    # Nearly a year of (empty) days: a run long enough to be caught while it runs.
    process = subprocess.Popen(
        [athena, "backfill", "--from", "2025-12-01", "--to", "2026-09-30", "--force"],
        env=stack.environ() | {"ATHENA_HISTORY_START": "2025-01-01"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={PID_TAG: str(process.pid)})
    deadline = time.monotonic() + 120
    while not stack.instance.get_runs(filters=started):
        assert process.poll() is None, "the backfill ended before it could be caught running"
        assert time.monotonic() < deadline, "the backfill's run never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    [run] = stack.instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(process.pid)}))
    assert run.status == dg.DagsterRunStatus.STARTED, "killed mid-run, the run is left STARTED"

    assert run_athena(stack, "metrics").returncode == 0
    [after] = stack.instance.get_runs(filters=dg.RunsFilter(run_ids=[run.run_id]))
    assert after.status == dg.DagsterRunStatus.FAILURE
    messages = [entry.message for entry in stack.instance.all_logs(run.run_id) if entry.is_dagster_event]
    assert any(
        f"pid {process.pid}" in message and "run the same command again" in message for message in messages
    )


def _entry_probe(stack: StackHandle, *argv: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """`athena ARGV` run through the console script's entry point in a fresh interpreter, and what it
    reported: its exit code and whether Dagster was imported."""
    probe = (
        "import json, sys\n"
        "from athena_assets.cli.entry import main\n"
        f"sys.argv = ['athena', *{list(argv)!r}]\n"
        "code = main()\n"
        "print(json.dumps({'code': code, 'dagster': 'dagster' in sys.modules}), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=stack.environ(), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    return done, json.loads(done.stderr.strip().splitlines()[-1])


def test_recall_from_the_shell_loads_no_dagster_and_finds_what_the_full_path_finds(
    stack: StackHandle,
) -> None:
    query = "which port does staging redis use"
    quick, report = _entry_probe(stack, "recall", query, "-k", "3", "--json")
    assert report == {"code": 0, "dagster": False}, quick.stderr
    # The full path (the Dagster instance, the resources) answers the same.
    full = recall(App(stack.settings), query, k=3)
    assert [hit["event_id"] for hit in json.loads(quick.stdout)] == [hit.event_id for hit in full]
    assert full, "the session's history has events to find"


def test_a_backfill_with_nothing_new_starts_no_run_until_something_is_new(
    stack: StackHandle, tmp_path: Path
) -> None:
    def ingest(prefix: str, day: str) -> None:
        rows = [
            {"id": f"{prefix}-{i}", "occurred_at": f"{day}T1{i}:00:00Z", "content": f"{prefix} note {i}"}
            for i in range(3)
        ]
        done = run_athena(stack, "ingest", str(write_jsonl(tmp_path / f"{prefix}.jsonl", rows)))
        assert done.returncode == 0, done.stderr

    backfill = ["backfill", "--from", "2026-07-01", "--to", "2026-07-02"]
    ingest("rerun-a", "2026-07-01")
    first = run_athena(stack, *backfill)
    assert first.returncode == 0 and "1 run(s)" in first.stdout, first.stdout + first.stderr

    again = run_athena(stack, *backfill)
    assert again.returncode == 0, again.stderr
    assert "nothing new, no run" in again.stdout and "0 run(s)" in again.stdout, again.stdout
    # That answer needs no Dagster: the inbox's index and two queries (a re-run in a fraction of a second).
    quick, report = _entry_probe(stack, *backfill)
    assert report == {"code": 0, "dagster": False} and quick.stdout == again.stdout, quick.stderr

    # A new file for one day of the range: that range runs again, and loads and embeds the new events.
    ingest("rerun-b", "2026-07-02")
    third = run_athena(stack, *backfill)
    assert "1 run(s)" in third.stdout, third.stdout + third.stderr
    with psycopg.connect(stack.database_url) as conn:
        embedded = conn.execute(
            "SELECT count(*) FROM athena.event_embeddings WHERE event_id LIKE 'rerun-%'"
        ).fetchone()
    assert embedded == (6,)
    forced = run_athena(stack, *backfill, "--force")
    assert "1 run(s)" in forced.stdout and "nothing new" not in forced.stdout, forced.stdout
