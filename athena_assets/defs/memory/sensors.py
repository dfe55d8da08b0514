"""`new_events_sensor`: new files in the inbox start runs for exactly the days they touch.

The cursor remembers the newest file handled (arrival time, name); each request's `run_key` is the
file's content hash and the day, so a file seen twice, or copied in again, starts no second run.
"""

import json

import dagster as dg

from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.partitions import daily_partitions
from resources.memory.inbox import InboxResource

# Bounds one tick's work; the cursor carries the rest to the next tick.
MAX_FILES_PER_TICK = 50


def _cursor(raw: str | None) -> tuple[int, str]:
    if not raw:
        return 0, ""
    state = json.loads(raw)
    return int(state["mtime_ns"]), str(state["name"])


@dg.sensor(
    name="new_events_sensor",
    description=__doc__,
    target=[episodic_events, event_embeddings],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_events_sensor(context: dg.SensorEvaluationContext, inbox: InboxResource) -> dg.SensorResult:
    last = _cursor(context.cursor)
    fresh = [item for item in inbox.files() if (item.mtime_ns, item.path.name) > last][:MAX_FILES_PER_TICK]
    if not fresh:
        return dg.SensorResult(skip_reason="no new event files in the inbox")
    valid_keys = set(daily_partitions.get_partition_keys())
    requests: list[dg.RunRequest] = []
    for item in fresh:
        parsed = inbox.parse(item.path)
        for day in parsed.days:
            key = day.isoformat()
            if key in valid_keys:
                requests.append(
                    dg.RunRequest(
                        run_key=f"{parsed.sha256[:16]}:{key}",
                        partition_key=key,
                        tags={"athena/inbox_file": item.path.name},
                    )
                )
        context.log.info(f"{item.path.name}: {len(parsed.events)} events on {len(parsed.days)} days")
    newest = fresh[-1]
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps({"mtime_ns": newest.mtime_ns, "name": newest.path.name}),
    )
