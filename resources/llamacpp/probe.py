"""Probing llama-servers the way an operator looks at them: up or not, how fast `/health` answers,
which model is loaded (`/props`, else `/v1/models`), how many slots are busy (`/slots`) and a few
Prometheus counters (`/metrics`, served when the server runs with --metrics, as the local stack's do).

A probe is one attempt per endpoint within one time budget and never raises: it reports the moment,
it does not wait for a server to recover. `athena stack status` and the health sensor both use it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import dagster as dg
import httpx
from pydantic import Field

from resources.llamacpp.http import server_health
from resources.models.manifest import ROLES, Role

# The counters worth a chart: load (tokens in and out) and queueing (requests running and waiting).
PROMETHEUS_METRICS = (
    "llamacpp:prompt_tokens_total",
    "llamacpp:tokens_predicted_total",
    "llamacpp:requests_processing",
    "llamacpp:requests_deferred",
)


@dataclass(frozen=True)
class ServerFacts:
    """What one probe of one llama-server found; the optional facts are None when not served."""

    url: str
    up: bool
    status: str
    latency_ms: float | None = None
    model: str | None = None
    slots_total: int | None = None
    slots_busy: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


def parse_prometheus(text: str, names: tuple[str, ...] = PROMETHEUS_METRICS) -> dict[str, float]:
    """The unlabelled samples named in `names` from Prometheus text exposition format."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in names:
            try:
                found[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return found


def _json(client: httpx.Client, url: str, timeout_s: float) -> Any:
    """The JSON body of GET `url`, or None when it is not served (disabled, refused, slow, not JSON)."""
    try:
        response = client.get(url, timeout=timeout_s)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _model(client: httpx.Client, url: str, timeout_s: float) -> str | None:
    props = _json(client, f"{url}/props", timeout_s)
    if isinstance(props, dict):
        name = props.get("model_alias") or props.get("model_path")
        if name:
            return PurePosixPath(str(name)).name
    models = _json(client, f"{url}/v1/models", timeout_s)
    try:
        return str(models["data"][0]["id"])
    except (KeyError, IndexError, TypeError):
        return None


def _slots(client: httpx.Client, url: str, timeout_s: float) -> tuple[int | None, int | None]:
    slots = _json(client, f"{url}/slots", timeout_s)
    if not isinstance(slots, list):
        return None, None
    # Recent servers say `is_processing`; older ones a `state` that is 0 when idle.
    busy = sum(1 for slot in slots if slot.get("is_processing", slot.get("state", 0)))
    return len(slots), busy


def _metrics(client: httpx.Client, url: str, timeout_s: float) -> dict[str, float]:
    try:
        response = client.get(f"{url}/metrics", timeout=timeout_s)
    except httpx.HTTPError:
        return {}
    return parse_prometheus(response.text) if response.status_code == 200 else {}


def probe_server(url: str, api_key: str | None = None, timeout_s: float = 3) -> ServerFacts:
    """Probe the llama-server at `url`; `timeout_s` bounds the whole probe, not each request."""
    url = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + timeout_s

    def remaining() -> float:
        # Every request gets a little time, so a probe that ran long still asks each endpoint once.
        return max(0.2, deadline - time.monotonic())

    with httpx.Client(headers=headers) as client:
        started = time.monotonic()
        up, status = server_health(client, url, remaining())
        latency_ms = (time.monotonic() - started) * 1000
        if not up:
            answered = status.startswith(("HTTP", "loading"))
            return ServerFacts(url, False, status, latency_ms=latency_ms if answered else None)
        model = _model(client, url, remaining())
        slots_total, slots_busy = _slots(client, url, remaining())
        metrics = _metrics(client, url, remaining())
    return ServerFacts(url, True, "ok", latency_ms, model, slots_total, slots_busy, metrics)


def describe_facts(facts: ServerFacts) -> str:
    """One line for `athena stack status` and sensor ticks, e.g. `ok in 3 ms, slots 1/2 busy, ...`."""
    if not facts.up:
        return facts.status
    parts = [f"ok in {facts.latency_ms:.0f} ms" if facts.latency_ms is not None else "ok"]
    if facts.slots_total is not None:
        parts.append(f"slots {facts.slots_busy}/{facts.slots_total} busy")
    prompt = facts.metrics.get("llamacpp:prompt_tokens_total")
    predicted = facts.metrics.get("llamacpp:tokens_predicted_total")
    if prompt is not None and predicted is not None:
        parts.append(f"{prompt:.0f} prompt / {predicted:.0f} generated tokens")
    deferred = facts.metrics.get("llamacpp:requests_deferred")
    if deferred:
        parts.append(f"{deferred:.0f} requests waiting")
    return ", ".join(parts)


class LlamaCppProbeResource(dg.ConfigurableResource):
    """The llama-servers to watch, per role. Unlike the model-call resources it checks nothing when a
    run or tick starts, so a server that is down is reported, never an error."""

    embedding_urls: list[str] = Field(description="Base URLs of the embedding llama-server replicas.")
    reasoning_urls: list[str] = Field(description="Base URLs of the reasoning llama-server replicas.")
    api_key: str | None = Field(
        default=None, repr=False, description="Bearer key of the servers (dg.EnvVar); never logged."
    )
    timeout_s: float = Field(default=3.0, description="Seconds one probe of one server may take.")

    def urls(self) -> dict[Role, list[str]]:
        """{role: its replicas' URLs}."""
        return {"embedding": list(self.embedding_urls), "reasoning": list(self.reasoning_urls)}

    def probe_all(self) -> dict[Role, list[ServerFacts]]:
        """Every replica of every role, probed at once (a tick takes one probe's time, not the sum)."""
        targets = [(role, url) for role, urls in self.urls().items() for url in urls]

        def probe(target: tuple[Role, str]) -> ServerFacts:
            return probe_server(target[1], self.api_key, self.timeout_s)

        with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
            facts = list(pool.map(probe, targets))
        found: dict[Role, list[ServerFacts]] = {role: [] for role in ROLES}
        for (role, _), fact in zip(targets, facts, strict=True):
            found[role].append(fact)
        return found
