"""The real local stack, started once per test session in a temporary ATHENA_HOME on free ports.

PostgreSQL + pgvector (embedded), a Dagster instance on it, both model files materialised through
Dagster, and two llama-servers: the same parts `make demo` starts, so the tests exercise what users run.
Every test that uses the stack is marked `stack` by the hook below, so `pytest -m "not stack"` is the
fast tier of pure logic.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from athena_assets.api.instance import materialize
from athena_assets.defs.models.assets import model_file_assets
from athena_assets_tests.helpers import StackHandle
from resources.models.manifest import models_for_profile
from resources.settings import Settings
from resources.stack.local import LocalStack, private_stack_environment


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the stack (directly or through another fixture) with `stack`."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """Start the whole local stack once; stop exactly what was started at the end."""
    home = tmp_path_factory.mktemp("athena-home")
    settings = Settings.from_env(private_stack_environment(home))
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
