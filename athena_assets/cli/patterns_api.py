"""Semantic patterns from Python and the CLI (`athena patterns`): the same store the asset writes."""

from datetime import date

from athena_assets.defs.resources import AthenaResources
from resources.memory.pattern_schema import PatternRecord
from resources.memory.pattern_store import PatternStore
from resources.settings import Settings

__all__ = ["PatternRecord", "list_patterns"]


def list_patterns(settings: Settings, since: date | None = None) -> list[PatternRecord]:
    """Stored patterns last seen on or after `since` (all when None), most supported first, each with
    its support, confidence and evidence events."""
    memory = AthenaResources.for_direct_use(settings).memory
    store = PatternStore.beside(memory)
    return store.patterns(since)
