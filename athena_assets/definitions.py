"""The athena-assets code location: every asset, check, job, schedule, sensor and resource, assembled
from the domain folders under `athena_assets/defs/` (each folder is an asset group)."""

import dagster as dg

from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.consolidation.schedules import build_nightly_schedule, consolidation_job
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.memory.sensors import new_events_sensor
from athena_assets.defs.models.assets import model_file_assets
from athena_assets.defs.observability.sensors import llamacpp_health_sensor
from athena_assets.defs.prompts.assets import compressed_prompts
from athena_assets.defs.resources import AthenaResources
from resources.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    """The code location for `settings`: what `dagster dev`, the CLI and the tests load."""
    return dg.Definitions(
        assets=[
            *model_file_assets,
            episodic_events,
            event_embeddings,
            consolidated_patterns,
            compressed_prompts,
        ],
        jobs=[consolidation_job],
        schedules=[build_nightly_schedule(settings)],
        sensors=[new_events_sensor, llamacpp_health_sensor],
        resources=AthenaResources.from_settings(settings).as_dict(),
    )


defs = build_defs(Settings.from_env())
