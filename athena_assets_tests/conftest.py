"""The real local stack, started once per test session in a temporary ATHENA_HOME on free ports.

PostgreSQL + pgvector (embedded), a Dagster instance on it, both model files materialised through
Dagster, and two llama-servers: the same parts `make demo` starts, so the tests exercise what users run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from athena_assets.cli.instance import materialize
from athena_assets.defs.models.assets import model_file_assets
from resources.models.manifest import models_for_profile
from resources.settings import Settings
from resources.stack.llama_server import free_port
from resources.stack.local import LocalStack


@dataclass(frozen=True)
class StackHandle:
    """What a test needs to talk to the session's stack."""

    settings: Settings
    stack: LocalStack
    instance: dg.DagsterInstance
    database_url: str
    embeddings_url: str
    reasoning_url: str

    @property
    def embedding_model_path(self) -> Path:
        """The embedding GGUF file the server runs."""
        return self.stack.model_path("embedding")

    @property
    def reasoning_model_path(self) -> Path:
        """The reasoning GGUF file the server runs."""
        return self.stack.model_path("reasoning")


def stack_environment(home: Path) -> dict[str, str]:
    """Environment variables for a private stack under `home`, on ports free right now."""
    return {
        "ATHENA_HOME": str(home),
        "ATHENA_MODEL_PROFILE": "local",
        "ATHENA_PG_PORT": str(free_port()),
        "LLAMACPP_EMBEDDINGS_URL": f"http://127.0.0.1:{free_port()}",
        "LLAMACPP_REASONING_URL": f"http://127.0.0.1:{free_port()}",
        "LLAMACPP_N_THREADS": "2",
    }


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """Start the whole local stack once; stop exactly what was started at the end."""
    home = tmp_path_factory.mktemp("athena-home")
    settings = Settings.from_env(stack_environment(home))
    local = LocalStack(settings, models_for_profile(settings.model_profile))
    try:
        local.start_database()
        instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        materialize(settings, model_file_assets, instance)
        local.start_llama_servers()
        yield StackHandle(
            settings=settings,
            stack=local,
            instance=instance,
            database_url=local.database_url(),
            embeddings_url=settings.embeddings_urls[0],
            reasoning_url=settings.reasoning_urls[0],
        )
        instance.dispose()
    finally:
        local.down()
