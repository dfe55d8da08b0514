"""The athena-assets code location: every asset, check, sensor, schedule and resource in one place."""

from __future__ import annotations

import dagster as dg

from athena_assets.environment import build_resources
from athena_assets.models import model_file_assets
from resources.settings import Settings

settings = Settings.from_env()

defs = dg.Definitions(
    assets=[*model_file_assets],
    resources=build_resources(settings),
)
