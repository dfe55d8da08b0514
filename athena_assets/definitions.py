"""The athena-assets code location: every asset, check, sensor, schedule and resource in one place."""

import dagster as dg

from athena_assets.compressed_prompts import compressed_prompts
from athena_assets.embeddings import event_embeddings
from athena_assets.environment import build_resources
from athena_assets.events import episodic_events
from athena_assets.health_sensor import llamacpp_health_sensor
from athena_assets.inbox_sensor import new_events_sensor
from athena_assets.models import model_file_assets
from athena_assets.patterns import consolidated_patterns, consolidation_job, nightly_consolidation
from resources.settings import Settings

defs = dg.Definitions(
    assets=[*model_file_assets, episodic_events, event_embeddings, consolidated_patterns, compressed_prompts],
    jobs=[consolidation_job],
    schedules=[nightly_consolidation],
    sensors=[new_events_sensor, llamacpp_health_sensor],
    resources=build_resources(Settings.from_env()),
)
