"""The resources of the code location as one typed object, built from `Settings` (the environment, read once).

Code reaches a resource by attribute (`resources.memory`), so a typo is an error at the call site rather
than a missing key at run time; `as_dict()` hands them to Dagster under the names the assets ask for.
Secrets are wired with `dg.EnvVar`, so Dagster resolves them at run time and never shows their value in
the UI or in run configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import dagster as dg

from resources.compression.compressor import PromptCompressorResource
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.embedding_context import NO_CONTEXT
from resources.llamacpp.probe import LlamaCppProbeResource
from resources.llamacpp.reasoning import LlamaCppReasoningResource
from resources.memory.inbox import InboxResource
from resources.memory.prompt_store import PromptStore
from resources.memory.store import MemoryStore
from resources.models.files import ModelFilesResource
from resources.models.manifest import models_for_profile
from resources.settings import API_KEY_ENV, DATABASE_URL_ENV, Settings, application_database_url, has_password


@dataclass(frozen=True)
class AthenaResources:
    """Every resource an asset, sensor or CLI command of athena-assets uses, one attribute each."""

    embeddings: LlamaCppEmbeddingResource
    reasoning: LlamaCppReasoningResource
    compressor: PromptCompressorResource
    memory: MemoryStore
    prompt_store: PromptStore
    inbox: InboxResource
    model_files: ModelFilesResource
    llamacpp_probe: LlamaCppProbeResource

    @classmethod
    def from_settings(cls, settings: Settings) -> AthenaResources:
        """The resources configured from `settings`, for Dagster: secrets (the llama.cpp API key, a
        database URL with a password) are `dg.EnvVar`s, resolved when a run starts and never shown."""
        return cls._build(settings, secrets_as_env_vars=True)

    @classmethod
    def for_direct_use(cls, settings: Settings) -> AthenaResources:
        """The same resources for code that calls them itself, outside a Dagster run (the CLI, the MCP
        server, the Python API): there an `EnvVar` cannot be resolved, so secrets are plain values."""
        return cls._build(settings, secrets_as_env_vars=False)

    @classmethod
    def _build(cls, settings: Settings, secrets_as_env_vars: bool) -> AthenaResources:
        models = models_for_profile(settings.model_profile)
        embedding_model = models["embedding"]
        # Only a key that is set is wired: an EnvVar of an unset variable fails every run at start.
        api_key: str | dg.EnvVar | None = settings.api_key
        if api_key and secrets_as_env_vars:
            api_key = dg.EnvVar(API_KEY_ENV)
        embeddings = LlamaCppEmbeddingResource(
            urls=list(settings.embeddings_urls),
            api_key=api_key,
            embedding_dim=settings.embedding_dim,
            model_embedding_dim=embedding_model.embedding_dim or 0,
            model_name=embedding_model.name,
            document_prefix=embedding_model.document_prefix,
            query_prefix=embedding_model.query_prefix,
            context=",".join(settings.embedding_context) or NO_CONTEXT,
        )
        database_url: str | dg.EnvVar = application_database_url(settings)
        if secrets_as_env_vars and has_password(database_url):
            database_url = dg.EnvVar(DATABASE_URL_ENV)
        return cls(
            embeddings=embeddings,
            reasoning=LlamaCppReasoningResource(
                urls=list(settings.reasoning_urls),
                api_key=api_key,
                model_name=models["reasoning"].name,
                prompting=models["reasoning"].prompting,
                judges_support=models["reasoning"].judges_support,
                # One answer of a few hundred tokens can take minutes on a busy CPU; a nightly run waits.
                timeout_s=300.0,
            ),
            compressor=PromptCompressorResource.from_settings(settings, embeddings),
            memory=MemoryStore(database_url=database_url),
            prompt_store=PromptStore(database_url=database_url, prompts_dir=str(settings.home / "prompts")),
            inbox=InboxResource(
                inbox_dir=str(settings.inbox_dir),
                history_start=settings.history_start.isoformat(),
                redact_contacts=settings.redact_contacts,
            ),
            model_files=ModelFilesResource(
                models_dir=str(settings.models_dir),
                profile=settings.model_profile,
                allow_http=settings.allow_http_downloads,
            ),
            llamacpp_probe=LlamaCppProbeResource(
                embedding_urls=list(settings.embeddings_urls),
                reasoning_urls=list(settings.reasoning_urls),
                api_key=api_key,
            ),
        )

    def as_dict(self) -> dict[str, dg.ConfigurableResource]:
        """The resources by the names assets and sensors ask for, as `dg.Definitions` wants them."""
        return {field.name: getattr(self, field.name) for field in fields(self)}
