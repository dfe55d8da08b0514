"""The real local stack: PostgreSQL + pgvector, Dagster on PostgreSQL, model assets, two llama-servers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import httpx
import psutil
import psycopg
import pytest

from athena_assets.api.app import App
from athena_assets.api.instance import open_instance
from athena_assets.api.stack import stack_up
from athena_assets.defs.models.assets import MODEL_FILE_KEYS
from athena_assets_tests.helpers import StackHandle, run_athena
from resources.settings import Settings
from resources.stack.child_env import PASSED_VARIABLES
from resources.stack.llama_server import LlamaServerError, read_pid_file
from resources.stack.local import SERVER_NAMES, LocalStack, private_stack_environment


def test_dagster_instance_stores_runs_in_postgres(stack: StackHandle) -> None:
    storage = stack.instance.run_storage
    assert type(storage).__name__ == "PostgresRunStorage"
    runs = stack.instance.get_runs()
    assert runs, "the fixture's model materialisation should be a run in the instance"
    with psycopg.connect(stack.database_url.replace("/athena?", "/dagster?")) as conn:
        stored = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert stored is not None
    assert stored[0] == len(runs)


def test_pgvector_extension_is_installed(stack: StackHandle) -> None:
    with psycopg.connect(stack.database_url) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        distance = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()
    assert version is not None
    assert distance == (1.0,)


@pytest.mark.parametrize("role", ["embedding", "reasoning"])
def test_model_asset_data_version_is_the_file_sha256(stack: StackHandle, role: str) -> None:
    path = stack.stack.model_path(role)  # type: ignore[arg-type]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == stack.stack.models[role].sha256  # type: ignore[index]
    event = stack.instance.get_latest_materialization_event(dg.AssetKey(f"{role}_model_file"))
    assert event is not None and event.asset_materialization is not None
    materialization = event.asset_materialization
    assert materialization.metadata["sha256"].value == digest
    assert materialization.tags is not None
    assert materialization.tags.get("dagster/data_version") == digest
    readme = (stack.settings.models_dir / "README.md").read_text()
    assert path.name in readme and digest in readme


def test_embedding_server_returns_a_vector_of_the_manifest_dimension(stack: StackHandle) -> None:
    response = httpx.post(
        f"{stack.embeddings_url}/v1/embeddings", json={"input": "pgvector index build"}, timeout=30
    )
    response.raise_for_status()
    vector = response.json()["data"][0]["embedding"]
    assert len(vector) == stack.stack.models["embedding"].embedding_dim


def test_reasoning_server_completes_a_prompt(stack: StackHandle) -> None:
    response = httpx.post(
        f"{stack.reasoning_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Name one colour."}], "max_tokens": 8},
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    assert body["usage"]["completion_tokens"] > 0
    assert body["choices"][0]["message"]["content"].strip()


def test_servers_bind_loopback_only(stack: StackHandle) -> None:
    for url in (stack.embeddings_url, stack.reasoning_url):
        assert url.startswith("http://127.0.0.1:")


def test_status_reports_every_part_healthy(stack: StackHandle) -> None:
    parts = {part.name: part for part in stack.stack.status()}
    assert set(parts) == {"postgres", *SERVER_NAMES.values()}
    for part in parts.values():
        assert part.healthy, part
        assert part.pid is not None
    assert parts["llamacpp-embeddings"].model == stack.embedding_model_path.name


def test_up_again_is_idempotent(stack: StackHandle) -> None:
    before = {role: proc.pid for role, proc in stack.stack.start_llama_servers().items()}
    again = {role: proc.pid for role, proc in stack.stack.start_llama_servers().items()}
    assert before == again
    assert stack.stack.start_database() is not None


def test_a_second_copy_on_the_same_port_is_refused(stack: StackHandle, tmp_path) -> None:
    from resources.stack.llama_server import LlamaServerConfig, start_llama_server

    config = LlamaServerConfig(
        name="intruder",
        model_path=stack.embedding_model_path,
        port=int(stack.embeddings_url.rsplit(":", 1)[1]),
        context_length=512,
        embedding=True,
    )
    with pytest.raises(LlamaServerError, match="is taken by another program"):
        start_llama_server(config, tmp_path, timeout_s=10)
    assert read_pid_file(tmp_path / "intruder.pid.json") is None


def test_down_leaves_alone_a_process_it_did_not_start(tmp_path) -> None:
    import json
    import os

    from resources.stack.llama_server import stop_llama_server

    # A pid file naming this very test process: a recycled pid must never be killed.
    (tmp_path / "stranger.pid.json").write_text(
        json.dumps(
            {
                "name": "stranger",
                "pid": os.getpid(),
                "url": "http://127.0.0.1:1",
                "model_path": "x",
                "log_path": "x",
                "started_at": 0.0,
            }
        )
    )
    assert stop_llama_server("stranger", tmp_path) is False


def test_cli_status_reads_the_same_stack(stack: StackHandle) -> None:
    completed = run_athena(stack, "stack", "status", "--json", timeout_s=60)
    assert completed.returncode == 0, completed.stderr
    parts = {part["name"]: part for part in json.loads(completed.stdout)}
    assert parts["postgres"]["healthy"] is True
    assert parts["llamacpp-reasoning"]["model"] == stack.reasoning_model_path.name
    # Native binaries need AVX2: each part we run shows the CPU's vector extensions beside it.
    assert "avx2" in parts["postgres"]["cpu"]
    assert parts["llamacpp-embeddings"]["cpu"] == parts["postgres"]["cpu"]


@pytest.mark.timeout(300)
def test_stack_up_in_a_new_home_records_the_model_files_the_servers_run(
    stack: StackHandle, tmp_path: Path
) -> None:
    # The model files are there already (shared with the session), but this instance never saw them:
    # without a materialisation the first backfill could not key its vectors by the model's sha256.
    environ = private_stack_environment(tmp_path / "home", models_dir=stack.settings.models_dir)
    settings = Settings.from_env(environ)
    try:
        started = stack_up(App(settings))
        assert all(part.healthy for part in started.parts), started.parts
        with open_instance(settings) as instance:
            for role in ("embedding", "reasoning"):
                event = instance.get_latest_materialization_event(MODEL_FILE_KEYS[role])
                assert event is not None and event.asset_materialization is not None
                recorded = event.asset_materialization.metadata["sha256"].value
                assert recorded == stack.stack.models[role].sha256  # type: ignore[index]
    finally:
        LocalStack(settings, stack.stack.models).down()


def test_the_servers_get_only_the_environment_they_need(stack: StackHandle) -> None:
    """No secret of the caller (an API key, a database password) is readable in a server's environ."""
    postmaster = int((stack.stack.pgdata / "postmaster.pid").read_text().splitlines()[0])
    pids = {"postgres": postmaster}
    for name in SERVER_NAMES.values():
        record = read_pid_file(stack.settings.run_dir / f"{name}.pid.json")
        assert record is not None, name
        pids[name] = record.pid
    # What the launchers add themselves: the shell's bookkeeping, pg_ctl's data directory and parent pid.
    launchers = {"PWD", "OLDPWD", "SHLVL", "_", "PGDATA", "PGSYSCONFDIR", "PG_GRANDPARENT_PID"}
    for name, pid in pids.items():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
        assert names <= set(PASSED_VARIABLES) | launchers, (name, sorted(names - set(PASSED_VARIABLES)))


def test_every_server_of_the_stack_listens_on_loopback_only(stack: StackHandle) -> None:
    parts = {part.name: part for part in stack.stack.status()}
    assert {"postgres", *SERVER_NAMES.values()} <= set(parts)
    for name in ("postgres", *SERVER_NAMES.values()):
        pid = parts[name].pid
        assert pid is not None, name
        process = psutil.Process(pid)
        # llama-server runs under a small shell that records its exit status: look at its children too.
        sockets = [
            connection
            for each in (process, *process.children(recursive=True))
            for connection in each.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN
        ]
        assert sockets, f"{name} listens on nothing"
        assert {connection.laddr.ip for connection in sockets} == {"127.0.0.1"}, (name, sockets)
