"""The local stack as the CLI, `make demo` and the tests bring it up: the database, the Dagster
instance, the model files (materialised through Dagster) and the two llama-servers; its status, and
what killed a part of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from athena_assets.api.app import App
from athena_assets.api.instance import materialize, open_instance
from athena_assets.defs.models.assets import model_file_assets
from resources.llamacpp.embedding import EmbeddingResult
from resources.llamacpp.reasoning import ReasoningResult
from resources.models.manifest import models_for_profile
from resources.stack.crash_report import Crash
from resources.stack.local import LocalStack, PartStatus

__all__ = [
    "PartStatus",
    "StackUp",
    "crashes_since",
    "local_stack",
    "materialize_models",
    "stack_down",
    "stack_status",
    "stack_up",
]


@dataclass(frozen=True)
class StackUp:
    """What `stack_up` found: each part's status, and what it changed on the way (migrations)."""

    parts: list[PartStatus]
    notes: tuple[str, ...]


def local_stack(app: App) -> LocalStack:
    """The stack described by the settings and their model profile."""
    return LocalStack(app.settings, models_for_profile(app.settings.model_profile))


def materialize_models(app: App) -> dict[str, Path]:
    """Materialise both model-file assets through Dagster (fast when the files are already right)."""
    local_stack(app).start_database()
    with open_instance(app.settings) as instance:
        result = materialize(app.settings, model_file_assets, instance)
    return {
        event.materialization.asset_key.to_user_string(): Path(
            str(event.materialization.metadata["path"].value)
        )
        for event in result.get_asset_materialization_events()
    }


def _models_unknown_to_instance(app: App) -> bool:
    """Whether the instance lacks a materialisation of a model file (a fresh ATHENA_HOME or DAGSTER_HOME)."""
    with open_instance(app.settings) as instance:
        return any(
            instance.get_latest_materialization_event(model_asset.key) is None
            for model_asset in model_file_assets
        )


def stack_up(app: App) -> StackUp:
    """Database, Dagster instance, model files (through Dagster, if missing) and both llama-servers.

    The model files are materialised when a file is missing *or* the instance has never recorded them,
    so the UI shows the models every vector and pattern was computed with.
    """
    stack = local_stack(app)
    info = stack.start_database()
    if stack.missing_models() or _models_unknown_to_instance(app):
        materialize_models(app)
    stack.start_llama_servers()
    return StackUp(stack.status(), info.notes if info else ())


@dataclass(frozen=True)
class ModelsAnswer:
    """One answer of each model server: a vector of `text`, and the reasoning model's reply to `question`."""

    text: str
    vector: EmbeddingResult
    question: str
    reply: ReasoningResult


def ask_both_models(app: App) -> ModelsAnswer:
    """Ask each model server once: is it up and serving the model it should?"""
    resources = app.resources
    text = "Dagster materialised the embedding model file."
    question = "At what temperature in degrees Celsius does water boil at sea level? Answer in a few words."
    reply = resources.reasoning.ask(question, max_tokens=16, temperature=0)
    return ModelsAnswer(text, resources.embeddings.embed(text), question, reply)


def stack_down(app: App) -> list[str]:
    """Stop every part this machine's stack started; returns their names."""
    return local_stack(app).down()


def stack_status(app: App) -> list[PartStatus]:
    """Each part's status: healthy, its address, pid, model and CPU features."""
    return local_stack(app).status()


def crashes_since(app: App, since: datetime) -> list[Crash]:
    """The parts of the local stack a signal killed since `since`, from their logs (none when the
    stack cannot be read)."""
    try:
        return local_stack(app).crashes_since(since)
    except (OSError, ValueError):
        return []
