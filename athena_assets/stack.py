"""The local stack as the CLI and `make demo` bring it up: database, Dagster instance, models, servers."""

from pathlib import Path

from athena_assets.instance import materialize, open_instance
from athena_assets.models import model_file_assets
from resources.local_stack import LocalStack, PartStatus
from resources.manifest import models_for_profile
from resources.settings import Settings


def local_stack(settings: Settings) -> LocalStack:
    """The stack described by `settings` and its model profile."""
    return LocalStack(settings, models_for_profile(settings.model_profile))


def materialize_models(settings: Settings) -> dict[str, Path]:
    """Materialise both model-file assets through Dagster (fast when the files are already right)."""
    local_stack(settings).start_database()
    with open_instance(settings) as instance:
        result = materialize(settings, model_file_assets, instance)
    return {
        event.materialization.asset_key.to_user_string(): Path(
            str(event.materialization.metadata["path"].value)
        )
        for event in result.get_asset_materialization_events()
    }


def stack_up(settings: Settings) -> list[PartStatus]:
    """Database, Dagster instance, model files (through Dagster, if missing) and both llama-servers."""
    stack = local_stack(settings)
    stack.start_database()
    if stack.missing_models():
        materialize_models(settings)
    stack.start_llama_servers()
    return stack.status()
