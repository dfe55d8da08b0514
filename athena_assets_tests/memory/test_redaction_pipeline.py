"""Secrets in events go nowhere: a corpus of realistic events with secrets of each kind (and look-alikes,
which stay) through `athena ingest`, `remember`, events, embeddings, consolidation and the compressed
prompt, on the real stack; afterwards no secret is in the database, the Dagster event log, the inbox or
any file under ATHENA_HOME (PostgreSQL's own files included)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._serdes import serialize_value
from psycopg import sql

from athena_assets.defs.memory.events import REDACTION_CHECK
from athena_assets.defs.resources import AthenaResources
from athena_assets_tests.helpers import StackHandle, run_athena, write_jsonl

DAY = "2026-06-03"
SECRETS = {
    "aws-access-key": "AKIAIOSFODNN7EXAMPLE",
    "password-in-url": "hunter2secret",
    "bearer-token": "abcDEF0123456789ghiJKL_mnop",
    "api-key": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
    "github-token": "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
    "secret": "correct-horse-battery-staple9",
    "email": "jane.doe@example.com",
}
EVENTS = [
    f"The nightly pg_dump backup failed: deploy used AWS key {SECRETS['aws-access-key']} with no rights",
    f"The pg_dump backup failed again; psql postgresql://athena:{SECRETS['password-in-url']}@db.internal/a "
    "answered with disk full",
    f"Retried the pg_dump backup by hand with curl -H 'Authorization: Bearer {SECRETS['bearer-token']}'; "
    "still disk full",
    f"Freed disk space for the pg_dump backup; the CI token {SECRETS['github-token']} was rotated too",
    f"The pg_dump backup ran once DB_PASSWORD={SECRETS['secret']} was moved into the secrets store",
    f"Set OPENAI_API_KEY={SECRETS['api-key']} for the summariser and told {SECRETS['email']} about it",
]
LOOK_ALIKES = [
    "The token budget is 4096 and the key idea is chunking long events",
    "Password reset emails go to the on-call rota, not to the team channel",
]


@pytest.mark.timeout(600)
def test_no_secret_survives_anywhere(stack: StackHandle, tmp_path: Path) -> None:
    rows = [
        {
            "id": f"secret-{i}",
            "occurred_at": f"{DAY}T{9 + i:02d}:00:00Z",
            "content": text,
            "source": "terminal",
        }
        for i, text in enumerate([*EVENTS, *LOOK_ALIKES])
    ]
    # A broken line holding a secret becomes a dead letter, which must not keep it either.
    broken = f'{{"id": "secret-broken", "content": "token {SECRETS["github-token"]}", oops'
    ingested = run_athena(stack, "ingest", str(write_jsonl(tmp_path / "terminal.jsonl", rows, [broken])))
    assert ingested.returncode == 0 or "rejected 1 lines" in ingested.stdout, ingested.stderr
    remembered = AthenaResources.for_direct_use(stack.settings).inbox.remember(
        {"occurred_at": f"{DAY}T20:00:00Z", "content": f"note: the backup key is {SECRETS['aws-access-key']}"}
    )
    assert SECRETS["aws-access-key"] not in remembered.content

    assets = "episodic_events,event_embeddings,consolidated_patterns,compressed_prompts"
    backfilled = run_athena(stack, "backfill", "--from", DAY, "--to", DAY, "--assets", assets, timeout_s=500)
    assert backfilled.returncode == 0, backfilled.stdout + backfilled.stderr
    outputs = ingested.stdout + ingested.stderr + backfilled.stdout + backfilled.stderr

    with psycopg.connect(stack.database_url) as conn:
        stored = dict(conn.execute("SELECT id, content FROM athena.episodic_events WHERE day = %s", (DAY,)))
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'athena'"
            )
        ]
        database = "\n".join(
            str(row)
            for table in tables
            for row in conn.execute(
                sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier("athena", table))
            )
        )
    # Every event kept, with placeholders where its secrets were; the look-alikes untouched.
    assert len(stored) == len(rows) + 1
    assert "[REDACTED:aws-access-key]" in stored["secret-0"]
    assert stored[f"secret-{len(EVENTS)}"] == LOOK_ALIKES[0]
    assert stored[f"secret-{len(EVENTS) + 1}"] == LOOK_ALIKES[1]

    runs = stack.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/asset_partition_range_start": DAY}))
    event_log = "\n".join(
        serialize_value(entry) for run in runs for entry in stack.instance.all_logs(run.run_id)
    )
    assert runs and event_log
    files = [
        path for path in stack.settings.home.rglob("*") if path.is_file() and path.suffix != ".gguf"
    ]  # fmt: skip
    for kind, secret in SECRETS.items():
        assert secret not in database, kind
        assert secret not in event_log, kind
        assert secret not in outputs, kind
        leaked = [path for path in files if secret.encode() in path.read_bytes()]
        assert leaked == [], (kind, leaked)

    # The partition's check warns with the count, and `athena metrics` reports it.
    [evaluation] = [
        entry.asset_check_evaluation
        for run in runs
        for entry in stack.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        if entry.asset_check_evaluation and entry.asset_check_evaluation.check_name == REDACTION_CHECK
    ]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["redactions"].value >= len(SECRETS) + 1
    metrics = run_athena(stack, "metrics", "--json", "--since", DAY)
    assert json.loads(metrics.stdout)["redactions"]["placeholders"] >= len(SECRETS) + 1
