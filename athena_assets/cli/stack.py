"""The local stack as the CLI and `make demo` bring it up: database, Dagster instance, models, servers."""

from dataclasses import dataclass
from pathlib import Path

from athena_assets.cli.instance import materialize, open_instance
from athena_assets.defs.models.assets import model_file_assets
from resources.models.manifest import models_for_profile
from resources.settings import Settings
from resources.stack.local import LocalStack, PartStatus


@dataclass(frozen=True)
class StackUp:
    """What `stack_up` found: each part's status, and what it changed on the way (migrations)."""

    parts: list[PartStatus]
    notes: tuple[str, ...]


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


def _models_unknown_to_instance(settings: Settings) -> bool:
    """Whether the instance lacks a materialisation of a model file (a fresh ATHENA_HOME or DAGSTER_HOME)."""
    with open_instance(settings) as instance:
        return any(
            instance.get_latest_materialization_event(model_asset.key) is None
            for model_asset in model_file_assets
        )


def stack_up(settings: Settings) -> StackUp:
    """Database, Dagster instance, model files (through Dagster, if missing) and both llama-servers.

    The model files are materialised when a file is missing *or* the instance has never recorded them,
    so the first `athena backfill` after `stack up` finds the model's sha256 it keys vectors by.
    """
    stack = local_stack(settings)
    info = stack.start_database()
    if stack.missing_models() or _models_unknown_to_instance(settings):
        materialize_models(settings)
    stack.start_llama_servers()
    return StackUp(stack.status(), info.notes if info else ())
