"""The athena-assets code location: every asset, check, sensor, schedule and resource in one place."""

import dagster as dg

from athena_assets.defs.consolidation.assets import (
    consolidated_patterns,
    consolidation_job,
    nightly_consolidation,
)
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.memory.sensors import new_events_sensor
from athena_assets.defs.models.assets import model_file_assets
from athena_assets.defs.observability.sensors import llamacpp_health_sensor
from athena_assets.defs.prompts.assets import compressed_prompts
from athena_assets.defs.resources import build_resources
from resources.settings import Settings

defs = dg.Definitions(
    assets=[*model_file_assets, episodic_events, event_embeddings, consolidated_patterns, compressed_prompts],
    jobs=[consolidation_job],
    schedules=[nightly_consolidation],
    sensors=[new_events_sensor, llamacpp_health_sensor],
    resources=build_resources(Settings.from_env()),
)
