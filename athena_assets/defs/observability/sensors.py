"""`llamacpp_health_sensor`: watches both llama-servers and records on the model-file assets whenever
one goes down, comes back or serves another model.

Each tick probes every replica (`/health`, the loaded model, the slots, the Prometheus counters). When a
role's state (up or down, why, which model) differs from the one in the cursor, the tick records an
observation on `embedding_model_file` or `reasoning_model_file` (up, replicas up, latency, model, slots,
token counters), which the asset's page lists and plots; otherwise it skips quietly. A server that is
down is named in the tick's message and log: the tick itself never fails for it.
"""

import json

import dagster as dg

from resources.llamacpp.probe import PROMETHEUS_METRICS, LlamaCppProbeResource, ServerFacts, describe_facts
from resources.models.manifest import ROLES, Role

HEALTH_INTERVAL_S = 60
MODEL_FILE_ASSETS: dict[Role, dg.AssetKey] = {role: dg.AssetKey(f"{role}_model_file") for role in ROLES}

# {role: {url: [up, status, model]}}: only what a change is made of, never the latency of the moment.
State = dict[str, dict[str, list[object]]]


def _state(found: dict[Role, list[ServerFacts]]) -> State:
    return {
        role: {fact.url: [fact.up, fact.status, fact.model] for fact in facts}
        for role, facts in found.items()
    }


def _previous(cursor: str | None) -> State:
    try:
        state = json.loads(cursor) if cursor else {}
    except ValueError:
        # A cursor this code cannot read (an older format) only means the next tick records afresh.
        return {}
    return state if isinstance(state, dict) else {}


def role_summary(role: Role, facts: list[ServerFacts]) -> str:
    """One role in a tick message, e.g. `reasoning DOWN: http://127.0.0.1:8002 unreachable (ConnectError)`."""
    up = sum(fact.up for fact in facts)
    state = "up" if facts and up == len(facts) else "DOWN" if up == 0 else f"{up}/{len(facts)} replicas up"
    return f"{role} {state}: " + "; ".join(f"{fact.url} {describe_facts(fact)}" for fact in facts)


def health_observation(role: Role, facts: list[ServerFacts]) -> dg.AssetObservation:
    """The observation of a role's model-file asset: numbers the UI plots, and the replicas in words."""
    answering = [fact for fact in facts if fact.latency_ms is not None]
    models = sorted({fact.model for fact in facts if fact.model})
    metadata: dict[str, dg.MetadataValue] = {
        "up": dg.MetadataValue.bool(bool(facts) and all(fact.up for fact in facts)),
        "replicas": dg.MetadataValue.int(len(facts)),
        "replicas_up": dg.MetadataValue.int(sum(fact.up for fact in facts)),
        "model": dg.MetadataValue.text(", ".join(models) or "unknown"),
        "status": dg.MetadataValue.text(role_summary(role, facts)),
    }
    if answering:
        # The slowest replica: the latency a request may meet.
        latency = max(fact.latency_ms or 0.0 for fact in answering)
        metadata["latency_ms"] = dg.MetadataValue.float(round(latency, 3))
    slots = [fact for fact in facts if fact.slots_total is not None]
    if slots:
        metadata["slots_total"] = dg.MetadataValue.int(sum(fact.slots_total or 0 for fact in slots))
        metadata["slots_busy"] = dg.MetadataValue.int(sum(fact.slots_busy or 0 for fact in slots))
    for name in PROMETHEUS_METRICS:
        values = [fact.metrics[name] for fact in facts if name in fact.metrics]
        if values:
            metadata[name] = dg.MetadataValue.float(float(sum(values)))
    return dg.AssetObservation(asset_key=MODEL_FILE_ASSETS[role], metadata=metadata)


@dg.sensor(
    name="llamacpp_health_sensor",
    description=__doc__,
    minimum_interval_seconds=HEALTH_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def llamacpp_health_sensor(
    context: dg.SensorEvaluationContext, llamacpp_probe: LlamaCppProbeResource
) -> dg.SensorResult:
    found = llamacpp_probe.probe_all()
    state = _state(found)
    previous = _previous(context.cursor)
    changed = [role for role in ROLES if state.get(role) != previous.get(role)]
    summary = " | ".join(role_summary(role, found[role]) for role in ROLES)
    for role in ROLES:
        for fact in found[role]:
            if not fact.up:
                context.log.warning(f"{role} llama-server {fact.url} is down: {fact.status}")
    if not changed:
        return dg.SensorResult(skip_reason=f"no change: {summary}", cursor=context.cursor)
    recorded = ", ".join(MODEL_FILE_ASSETS[role].to_user_string() for role in changed)
    context.log.info(f"state changed, recorded on {recorded}: {summary}")
    return dg.SensorResult(
        skip_reason=f"changed, recorded on {recorded}: {summary}",
        asset_events=[health_observation(role, found[role]) for role in changed],
        cursor=json.dumps(state, sort_keys=True),
    )
