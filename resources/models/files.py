"""`ModelFilesResource`: the models manifest and the models directory, as a Dagster resource.

The model-file assets ask this resource for "the file for role X"; it knows the profile, where files
live and whether plain http is allowed, and delegates the fetching itself to `resources.models.fetch`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from resources.models.fetch import fetch_model
from resources.models.fetch_report import logging_progress, write_models_readme
from resources.models.file_sha import model_sha256
from resources.models.http_download import FetchResult
from resources.models.manifest import DEFAULT_MANIFEST, ModelSpec, Role, models_for_profile


class ModelFilesResource(dg.ConfigurableResource):
    """Where the GGUF model files live and which manifest profile chooses them."""

    models_dir: str
    profile: str = "local"
    manifest_path: str = str(DEFAULT_MANIFEST)
    allow_http: bool = False

    def spec(self, role: Role) -> ModelSpec:
        """The manifest entry for `role` in the configured profile."""
        return models_for_profile(self.profile, Path(self.manifest_path))[role]

    def path(self, role: Role) -> Path:
        """Where the file for `role` is (or will be) stored."""
        return Path(self.models_dir).expanduser() / self.spec(role).file

    def sha256(self, role: Role) -> str:
        """The identity of the `role` model file: its sha256 (`file_sha.model_sha256`), which keys the
        vectors and patterns computed with it."""
        return model_sha256(self.path(role))

    def fetch(self, role: Role, log: Callable[[str], None] | None = None) -> FetchResult:
        """Make sure the file for `role` is present and verified; record it in the folder's README."""
        spec = self.spec(role)
        models_dir = Path(self.models_dir).expanduser()
        models_dir.mkdir(parents=True, exist_ok=True)
        progress = logging_progress(log, label=spec.file) if log is not None else None
        result = fetch_model(spec, models_dir, allow_http=self.allow_http, progress=progress)
        write_models_readme(models_dir, {role: result}, {role: spec})
        return result
