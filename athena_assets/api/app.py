"""`App`: one deployment as the use cases see it, its settings and the resources built from them once.

The resources are built on first use, not when the `App` is made: `athena recall` takes a path that
needs no Dagster at all (`recall.py`), and importing Dagster alone takes longer than that recall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from resources.llamacpp.embedding_context import vector_key
from resources.models.file_sha import model_sha256
from resources.models.manifest import ModelSpec, Role, models_for_profile
from resources.settings import Settings

__all__ = ["App", "Settings"]

if TYPE_CHECKING:
    from athena_assets.defs.resources import AthenaResources


@dataclass
class App:
    """One deployment: `settings` (the environment, read once) and its resources.

    `one_shot` marks a process that makes one call and exits (a CLI command): it takes the light paths
    that open one connection instead of a pool. A long-lived process (the MCP server) leaves it False.
    """

    settings: Settings = field(default_factory=Settings.from_env)
    one_shot: bool = False

    @cached_property
    def resources(self) -> AthenaResources:
        """The code location's resources, for calling them directly (secrets as plain values)."""
        from athena_assets.defs.resources import AthenaResources  # loads Dagster: see the docstring

        return AthenaResources.for_direct_use(self.settings)

    @cached_property
    def models(self) -> dict[Role, ModelSpec]:
        """The configured profile's models (the manifest read once, not on every recall)."""
        return models_for_profile(self.settings.model_profile)

    def model(self, role: Role) -> ModelSpec:
        """The manifest entry of the `role` model in the configured profile."""
        return self.models[role]

    def vector_key(self) -> str:
        """The key of the event vectors recall searches and ingestion writes: the embedding model's
        sha256 with the configured embedding context (`embedding_context.vector_key`)."""
        return vector_key(self.model_sha256("embedding"), self.settings.embedding_context)

    def model_sha256(self, role: Role) -> str:
        """The identity of the `role` model: its file's sha256, the one source every path reads
        (`resources/models/file_sha.py`)."""
        return model_sha256(self.settings.models_dir / self.model(role).file)
