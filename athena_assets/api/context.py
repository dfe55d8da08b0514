"""Context: the compressed Claude prompt of a day, what the memory knew at its end, ready to put in a
prompt, with its token counts and savings (the MCP `context` tool)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from athena_assets.api.app import App


def context(app: App, day: date | None = None) -> dict[str, Any]:
    """The compressed prompt of `day` (default: the latest day that has one) and its figures; a day
    without one is a ValueError that says how to make it."""
    found = app.resources.prompt_store.compressed(day)
    if found is None:
        which = f"for {day}" if day else "yet"
        raise ValueError(f"no compressed prompt {which}; run the compressed_prompts asset for that day")
    text, figures = found
    return {
        "day": figures.day.isoformat(),
        "prompt": text,
        "original_tokens": figures.original_tokens,
        "compressed_tokens": figures.compressed_tokens,
        "tokens_saved": figures.tokens_saved,
        "dollars_saved": figures.dollars_saved,
        "method": figures.method,
    }


@dataclass(frozen=True)
class PromptSavings:
    """What compression saved over every stored day, and where `day`'s prompt file is."""

    prompts: int
    tokens_saved: int
    dollars_saved: float
    file: Path


def prompt_savings(app: App, day: date) -> PromptSavings:
    """The compressed prompts' totals, and the file of `day`'s prompt."""
    store = app.resources.prompt_store
    prompts, tokens_saved, dollars_saved = store.totals()
    return PromptSavings(prompts, tokens_saved, dollars_saved, store.file_for(day))
