"""Tier (c): authentication, unavailability, replicas and health of the llama.cpp resources, against
real llama-servers (the session's, plus one started here with an API key)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from athena_assets_tests.helpers import StackHandle, write_jsonl
from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.http import LlamaCppAuthError, LlamaCppUnavailableError
from resources.llamacpp.reasoning import LlamaCppReasoningResource
from resources.settings import PASSFILE_NAME
from resources.stack.llama_server import LlamaServerConfig, free_port, start_llama_server, stop_llama_server

API_KEY = "test-key-5f2c9a"
AUTH_SERVER = "llamacpp-auth-test"


@dataclass(frozen=True)
class AuthServer:
    url: str
    key: str


@pytest.fixture(scope="module")
def auth_server(stack: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A second embedding server on the same model file, started with --api-key-file."""
    run_dir: Path = tmp_path_factory.mktemp("auth-server")
    key_file = run_dir / "api.key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    config = replace(stack.private_embedding_server(AUTH_SERVER), api_key_file=key_file)
    try:
        server = start_llama_server(config, run_dir, timeout_s=120, api_key=API_KEY)
        yield AuthServer(url=server.url, key=API_KEY)
    finally:
        stop_llama_server(AUTH_SERVER, run_dir)


def test_the_right_key_works(auth_server: AuthServer):
    with LlamaCppEmbeddingResource(urls=[auth_server.url], api_key=auth_server.key) as resource:
        assert resource.embed("hello").dimension == 384


def test_a_wrong_key_is_an_auth_error_without_retries(auth_server: AuthServer):
    resource = LlamaCppEmbeddingResource(urls=[auth_server.url], api_key="not-the-key", max_retries=5)
    started = time.monotonic()
    with pytest.raises(LlamaCppAuthError, match="LLAMACPP_API_KEY") as caught:
        resource.embed("hello")
    elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert resource.requests_per_url == {auth_server.url: 1}
    assert "not-the-key" not in str(caught.value)
    assert "not-the-key" not in repr(resource) and "not-the-key" not in str(resource)
    resource.close()


def test_a_closed_port_is_unavailable_within_the_retry_budget():
    url = f"http://127.0.0.1:{free_port()}"
    budget = 2.0
    resource = LlamaCppEmbeddingResource(urls=[url], retry_budget_s=budget, max_retries=50)
    started = time.monotonic()
    with pytest.raises(LlamaCppUnavailableError, match=url):
        resource.embed("hello")
    elapsed = time.monotonic() - started

    assert elapsed <= budget + 1.0
    assert resource.requests_per_url[url] > 1  # it did retry, with backoff, until the budget ran out
    resource.close()


@pytest.mark.timeout(120)
def test_requests_are_spread_across_replicas(stack: StackHandle, auth_server: AuthServer):
    resource = LlamaCppEmbeddingResource(
        urls=[stack.embeddings_url, auth_server.url], api_key=auth_server.key, batch_size=4, concurrency=2
    )
    with resource.use_metrics(MetricsCollector()):
        results = resource.embed_batch([f"event {index} about the weekly report" for index in range(24)])
        counts = resource.requests_per_url

    assert len(results) == 24
    assert set(counts) == {stack.embeddings_url, auth_server.url}
    assert min(counts.values()) >= 5  # 6 batches: a tokenize and an embedding request each, plus probes


def test_dagster_resolves_the_key_from_the_environment(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LLAMACPP_API_KEY", auth_server.key)

    @dg.asset
    def keyed(embeddings: LlamaCppEmbeddingResource) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"dimension": embeddings.embed("hello").dimension})

    resource = LlamaCppEmbeddingResource(urls=[auth_server.url], api_key=dg.EnvVar("LLAMACPP_API_KEY"))
    result = dg.materialize([keyed], resources={"embeddings": resource})

    assert result.success
    assert all(auth_server.key not in str(event) for event in result.all_events)


def test_check_health_reports_each_resource(stack: StackHandle):
    embeddings = LlamaCppEmbeddingResource(urls=[stack.embeddings_url])
    reasoning = LlamaCppReasoningResource(urls=[stack.reasoning_url])
    down = LlamaCppReasoningResource(urls=[f"http://127.0.0.1:{free_port()}"])

    assert (embeddings.check_health(), reasoning.check_health(), down.check_health()) == (True, True, False)
    assert down.replica_health() == {down.urls[0]: False}
    assert reasoning.count_tokens("hello world", add_special=False) >= 2
    for resource in (embeddings, reasoning, down):
        resource.close()


@pytest.mark.timeout(300)
def test_a_changed_key_restarts_the_server_so_the_new_key_works(stack: StackHandle, tmp_path: Path):
    """`athena stack up` after LLAMACPP_API_KEY changed: the running server answered only to the old key."""
    key_file = tmp_path / "api.key"
    key_file.write_text("old-key\n")
    config = replace(stack.private_embedding_server("llamacpp-rekeyed"), api_key_file=key_file)
    try:
        first = start_llama_server(config, tmp_path, timeout_s=120, api_key="old-key")
        assert start_llama_server(config, tmp_path, timeout_s=120, api_key="old-key").pid == first.pid
        key_file.write_text("new-key\n")
        second = start_llama_server(config, tmp_path, timeout_s=120, api_key="new-key")
        assert second.pid != first.pid
        with LlamaCppEmbeddingResource(urls=[second.url], api_key="new-key") as resource:
            assert resource.embed("hello").dimension == 384
        with pytest.raises(LlamaCppAuthError):
            LlamaCppEmbeddingResource(urls=[second.url], api_key="old-key").embed("hello")
    finally:
        stop_llama_server("llamacpp-rekeyed", tmp_path)


@pytest.mark.timeout(300)
def test_with_an_api_key_the_cli_works_and_the_key_appears_nowhere(
    stack: StackHandle, auth_server: AuthServer, tmp_path: Path
):
    """`LLAMACPP_API_KEY` set: ingest, backfill and recall through the keyed server; the key is in no
    output, run tag, event of the runs, or file under ATHENA_HOME (the database's files included)."""
    rows = [
        {"id": f"keyed-{i}", "occurred_at": f"2026-05-0{1 + i % 2}T09:00:00Z", "content": text}
        for i, text in enumerate(
            ["the keyed embedding server rotated its TLS certificate", "staging redis listens on port 6380"]
        )
    ]
    events = write_jsonl(tmp_path / "keyed.jsonl", rows)
    env = stack.environ() | {"LLAMACPP_API_KEY": auth_server.key, "LLAMACPP_EMBEDDINGS_URL": auth_server.url}
    athena = str(Path(sys.executable).with_name("athena"))
    outputs = []
    for args in (
        ["ingest", str(events)],
        ["backfill", "--from", "2026-05-01", "--to", "2026-05-02"],
        ["recall", "which port does redis use", "-k", "1", "--json", "--since", "2026-05-01"],
    ):
        done = subprocess.run(
            [athena, *args], env=env, capture_output=True, text=True, timeout=240, check=False
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        outputs.append(done.stdout + done.stderr)
    assert json.loads(done.stdout)[0]["event_id"] == "keyed-1"
    assert all(auth_server.key not in output for output in outputs)

    runs = stack.instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/asset_partition_range_start": "2026-05-01"})
    )
    assert runs
    for run in runs:
        assert auth_server.key not in json.dumps(run.tags)
        logged = [serialize_value(entry) for entry in stack.instance.all_logs(run.run_id)]
        assert logged and not any(auth_server.key in entry for entry in logged)
    # Everything under ATHENA_HOME but the model files: PostgreSQL's data (tables, Dagster's event log,
    # WAL), logs, the inbox, dead letters.
    home = stack.settings.home
    leaked = [
        path for path in home.rglob("*")
        if path.is_file() and path.suffix != ".gguf" and auth_server.key.encode() in path.read_bytes()
    ]  # fmt: skip
    assert leaked == []
    # Nor the database's generated password, which only its passfile holds.
    passfile = home / PASSFILE_NAME
    password = passfile.read_text().split(":")[-1].strip()
    assert len(password) >= 24 and all(password not in output for output in outputs)
    assert not any(
        password in entry
        for run in runs
        for entry in map(serialize_value, stack.instance.all_logs(run.run_id))
    )
    holders = [
        path for path in home.rglob("*")
        if path.is_file() and path.suffix != ".gguf" and password.encode() in path.read_bytes()
    ]  # fmt: skip
    assert holders == [passfile]


@pytest.mark.timeout(180)
def test_a_keyed_reasoning_server_refuses_a_request_without_the_key(stack: StackHandle, tmp_path: Path):
    key_file = tmp_path / "api.key"
    key_file.write_text("reasoning-key-7c1d\n")
    key_file.chmod(0o600)
    config = LlamaServerConfig(
        name="llamacpp-reasoning-keyed",
        model_path=stack.reasoning_model_path,
        port=free_port(),
        context_length=512,
        embedding=False,
        pooling=None,
        n_threads=1,
        api_key_file=key_file,
    )
    try:
        server = start_llama_server(config, tmp_path, timeout_s=120, api_key="reasoning-key-7c1d")
        with pytest.raises(LlamaCppAuthError):
            LlamaCppReasoningResource(urls=[server.url]).complete("Paris is the capital of", max_tokens=2)
        keyed = LlamaCppReasoningResource(urls=[server.url], api_key="reasoning-key-7c1d")
        assert keyed.complete("Paris is the capital of", max_tokens=2).output_tokens > 0
    finally:
        stop_llama_server("llamacpp-reasoning-keyed", tmp_path)
