"""`llamacpp_health_sensor` and the probe under it: a private llama-server seen up, stopped and back.

Tier (b): the Prometheus parser and a probe of a closed port. Tier (d): the sensor evaluated with
`dg.build_sensor_context` on the session's instance, its observations persisted the way the daemon
does (`report_runless_asset_event`) and read back from the model-file assets.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from athena_assets.definitions import defs
from athena_assets.defs.observability.sensors import llamacpp_health_sensor
from athena_assets_tests.helpers import StackHandle
from resources.llamacpp.probe import LlamaCppProbeResource, parse_prometheus, probe_server
from resources.stack.llama_server import free_port, start_llama_server, stop_llama_server
from resources.stack.local import SERVER_NAMES

PRIVATE_SERVER = "health-embeddings"
EMBEDDING_ASSET = dg.AssetKey("embedding_model_file")
REASONING_ASSET = dg.AssetKey("reasoning_model_file")


def test_prometheus_text_gives_the_named_counters() -> None:
    text = (
        "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed\n"
        "# TYPE llamacpp:prompt_tokens_total counter\n"
        "llamacpp:prompt_tokens_total 1234\n"
        "llamacpp:tokens_predicted_total 56.5\n"
        "llamacpp:requests_processing 1\n"
        "llamacpp:n_decode_total 99\n"
        "llamacpp:requests_deferred not-a-number\n"
    )
    assert parse_prometheus(text) == {
        "llamacpp:prompt_tokens_total": 1234.0,
        "llamacpp:tokens_predicted_total": 56.5,
        "llamacpp:requests_processing": 1.0,
    }


def test_a_closed_port_is_down_and_says_why() -> None:
    facts = probe_server(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    assert (facts.up, facts.model, facts.latency_ms) == (False, None, None)
    assert facts.status.startswith("unreachable")


def test_the_sensor_and_its_resource_are_in_the_definitions() -> None:
    sensor = defs.resolve_sensor_def("llamacpp_health_sensor")
    assert sensor.minimum_interval_seconds == 60
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    probe = defs.resources["llamacpp_probe"]
    assert isinstance(probe, LlamaCppProbeResource)


def _tick(stack: StackHandle, probe: LlamaCppProbeResource, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=stack.instance, resources={"llamacpp_probe": probe}, cursor=cursor
    )
    result = llamacpp_health_sensor(context)
    assert isinstance(result, dg.SensorResult)
    # What the daemon does with a tick's asset events.
    for event in result.asset_events:
        stack.instance.report_runless_asset_event(event)
    return result


def _observed(result: dg.SensorResult) -> dict[dg.AssetKey, dict[str, object]]:
    return {
        event.asset_key: {name: value.value for name, value in event.metadata.items()}
        for event in result.asset_events
    }


@pytest.mark.timeout(240)
def test_a_server_seen_up_then_stopped_then_back(stack: StackHandle, tmp_path: Path) -> None:
    config = stack.private_embedding_server(PRIVATE_SERVER)
    url, run_dir = config.url, tmp_path / "run"
    probe = LlamaCppProbeResource(embedding_urls=[url], reasoning_urls=[stack.reasoning_url])
    start_llama_server(config, run_dir, timeout_s=60)
    try:
        first = _tick(stack, probe, None)
        up = _observed(first)
        assert set(up) == {EMBEDDING_ASSET, REASONING_ASSET}, "the first tick records every role"
        embedding = up[EMBEDDING_ASSET]
        assert embedding["up"] is True
        assert embedding["model"] == stack.embedding_model_path.name
        assert embedding["latency_ms"] > 0  # type: ignore[operator]
        assert (embedding["slots_total"], embedding["slots_busy"]) == (1, 0)
        assert "llamacpp:prompt_tokens_total" in embedding, "the server runs with --metrics"
        assert up[REASONING_ASSET]["model"] == stack.reasoning_model_path.name

        quiet = _tick(stack, probe, first.cursor)
        assert quiet.asset_events == []
        assert quiet.skip_reason is not None and quiet.skip_reason.skip_message.startswith("no change")
        assert quiet.cursor == first.cursor

        stop_llama_server(PRIVATE_SERVER, run_dir)
        down = _tick(stack, probe, quiet.cursor)
        assert set(_observed(down)) == {EMBEDDING_ASSET}, "only the role that changed is recorded"
        assert _observed(down)[EMBEDDING_ASSET]["up"] is False
        assert _observed(down)[EMBEDDING_ASSET]["replicas_up"] == 0
        assert down.skip_reason is not None
        assert f"embedding DOWN: {url} unreachable" in down.skip_reason.skip_message
        still_down = _tick(stack, probe, down.cursor)
        assert still_down.asset_events == []
        assert still_down.skip_reason is not None and "embedding DOWN" in still_down.skip_reason.skip_message

        start_llama_server(config, run_dir, timeout_s=60)
        back = _tick(stack, probe, still_down.cursor)
        assert _observed(back)[EMBEDDING_ASSET]["up"] is True
        assert back.skip_reason is not None and "embedding up" in back.skip_reason.skip_message
    finally:
        stop_llama_server(PRIVATE_SERVER, run_dir)

    recorded = stack.instance.fetch_observations(EMBEDDING_ASSET, limit=3).records
    newest_first = [record.asset_observation.metadata["up"].value for record in recorded]  # type: ignore[union-attr]
    assert newest_first == [True, False, True]


def test_stack_status_shows_the_probed_facts(stack: StackHandle) -> None:
    parts = {part.name: part for part in stack.stack.status()}
    embedding = parts[SERVER_NAMES["embedding"]]
    assert embedding.healthy
    assert embedding.model == stack.embedding_model_path.name
    assert embedding.detail.startswith("ok in ")
    assert "busy" in embedding.detail and "prompt /" in embedding.detail
