"""What the embedder reads for an event (`resources/llamacpp/embedding_context.py`): a conversation turn
with its date and speaker, anything else as its content; the context is part of the vectors' key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from resources.llamacpp.embedding_context import document, parse_context, vector_key
from resources.settings import Settings, SettingsError

AT = datetime(2026, 3, 7, 18, 30, tzinfo=UTC)


def test_a_turn_is_read_with_its_date_and_speaker() -> None:
    both = parse_context("speaker, date")
    assert both == ("date", "speaker")  # one order, whatever the setting's
    assert document("I did!", AT, {"speaker": "Tom"}, both) == "[7 March 2026] Tom: I did!"
    assert document("I did!", AT, {"author": "Tom"}, ("speaker",)) == "Tom: I did!"
    assert document("I did!", AT, {"speaker": "Tom"}, ("date",)) == "[7 March 2026] I did!"


def test_an_event_that_is_not_a_turn_is_read_as_its_content() -> None:
    both = parse_context("date,speaker")
    assert document("pytest timed out", AT, {"repo": "athena"}, both) == "pytest timed out"
    assert document("pytest timed out", AT, {"speaker": "  "}, both) == "pytest timed out"
    assert document("I did!", AT, {"speaker": "Tom"}, parse_context("none")) == "I did!"


def test_the_context_is_part_of_the_vectors_key() -> None:
    assert vector_key("abc", ()) == "abc"  # no context: the keys vectors had before contexts existed
    assert vector_key("abc", ("date", "speaker")) == "abc+date+speaker"
    assert vector_key("abc", ("speaker",)) != vector_key("abc", ("date", "speaker"))


def test_an_unknown_context_names_the_variable_and_the_choices(tmp_path: Path) -> None:
    named = r"ATHENA_EMBEDDING_CONTEXT: unknown part 'weekday'.*date, speaker"
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"ATHENA_HOME": str(tmp_path), "ATHENA_EMBEDDING_CONTEXT": "date,weekday"})
    settings = Settings.from_env({"ATHENA_HOME": str(tmp_path), "ATHENA_EMBEDDING_CONTEXT": "none"})
    assert settings.embedding_context == ()
    assert Settings.from_env({"ATHENA_HOME": str(tmp_path)}).embedding_context == ("date", "speaker")
