"""Turns `Settings` (the environment, read once) into the resources every asset is given.

Secrets are wired with `dg.EnvVar`, so Dagster resolves them at run time and never shows their value
in the UI or in run configuration.
"""

from __future__ import annotations

from typing import Any

from resources.model_files import ModelFilesResource
from resources.settings import Settings


def build_resources(settings: Settings) -> dict[str, Any]:
    """The resources of the code location, configured from `settings`."""
    return {
        "model_files": ModelFilesResource(
            models_dir=str(settings.models_dir),
            profile=settings.model_profile,
            allow_http=settings.allow_http_downloads,
        ),
    }
