"""Tier (a): the word rules that decide a change before any model is asked (`knowledge/supersession.py`)."""

import pytest

from athena_assets.knowledge.supersession import cue, names_change, restates, stated_change


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("The Redis cache listens on port 6391", "Moved the Redis cache from port 6391 to port 6392", True),
        ("rq worker processed the thumbnail jobs", "Switched the task queue from rq to celery", True),
        ("CI runs the test suite on Python 3.11", "Upgraded CI from Python 3.11 to Python 3.12", True),
        ("The pre-commit hook runs black", "Replaced black with ruff format", True),
        (
            "Wrapped the checkout page in a LaunchDarkly flag",
            "Reversed it: dropped LaunchDarkly for env vars",
            True,
        ),
        (
            "The user prefers short answers without explanations",
            "The user changed their mind: they now want detailed answers instead of short ones",
            True,
        ),
        # Another subject's change, and the new value restated, are no change of this pattern.
        ("The Redis cache listens on port 6391", "Switched the task queue from rq to celery", False),
        (
            "The API gateway timeout is 60 seconds",
            "Raised the API gateway timeout from 30 to 60 seconds",
            False,
        ),
        (
            "Tests now take free ports for PostgreSQL instead of the defaults",
            "Again: tests now take free ports for PostgreSQL instead of the defaults. Took 46 minutes.",
            False,
        ),
        # Giving up what the old text already gave up restates it.
        ("Dropped LaunchDarkly for env vars", "Dropped LaunchDarkly for env vars again", None),
        ("Logs are kept for 30 days", "Log retention is now 30 days", None),
    ],
)
def test_a_change_named_outright_decides_for_the_pattern_whose_value_it_names(
    old: str, new: str, expected: bool | None
) -> None:
    assert stated_change(old, new) is expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Set pytest -n 4 workers for CI", "Reduced pytest to 2 workers", True),  # a number it lacks
        ("Production releases go out on Thursdays", "Production releases now go out on Tuesdays", True),
        ("The user prefers short answers", "The user no longer wants short answers", True),
        ("pytest runs with 4 workers in CI", "pytest runs with 4 workers in CI again", False),  # repeated
        (
            "The timeout is 60 seconds",
            "Exports up to 60 seconds now pass the timeout",
            False,
        ),  # its own number
        ("Logs are kept for 30 days", "Moved the archive bucket to eu-west-1, 30 days kept", False),
        # A quantity moved where no value is named fixes an incident; it changes no value (generated history).
        ("user pytest timed out waiting for postgres", "user raised the postgres fixture timeout", False),
        ("The log level is info", "Raised the log level to debug", True),  # a value named after "to"
        (
            "A merge to main deploys staging",
            "Production releases now go out on Tuesdays",
            False,
        ),  # no shared word
    ],
)
def test_only_newer_events_with_a_cue_on_the_same_subject_are_asked_about(
    old: str, new: str, expected: bool
) -> None:
    assert cue(old, [new]) is expected


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Switched the background task queue from rq to celery", True),
        ("Replaced black with ruff format as the Python formatter", True),
        ("Reversed the feature flag decision: dropped LaunchDarkly", True),
        ("Removed an unused npm dependency", True),  # names a change; of nothing stored, it closes nothing
        ("Now formats with ruff instead of black", True),
        ("The Redis cache now answers on port 6392", False),  # a cue, but no change named outright
        ("The pre-commit hook runs ruff format on every commit", False),
    ],
)
def test_an_event_names_a_change_outright_only_with_from_to_replaced_with_instead_of_or_dropped(
    text: str, names: bool
) -> None:
    assert names_change(text) is names


def test_a_change_named_outright_stops_at_the_end_of_its_sentence() -> None:
    # Seen on the sample history: "reverted it. Left a TODO" gave up "left", a word of the old pattern's
    # evidence ("Left a TODO to ..."), and closed a pattern about test timeouts.
    old = "Every test gets a pytest-timeout bound. Decided on health checks. Left a TODO to add more."
    reverted = "Tried a longer timeout for one test; it only moved the hang, so reverted it. Left a TODO"
    assert stated_change(old, reverted) is None
    assert stated_change("CI runs on Python 3.11", "Upgraded CI from Python 3.11 to Python 3.12.") is True


@pytest.mark.parametrize(
    ("text", "says_again"),
    [
        ("user recall latency is back under 50 ms again", True),
        ("user recall API latency went above 200 ms", False),  # a number the old statement lacks
        ("the export job ran for 50 ms", False),  # the old number, another subject
        ("user recall latency is fine again", False),  # no value given
        # A pattern's own words restating the value (the generated history's latency pattern).
        ("User recall latency improved after lunch. It is back under 50 ms after lunch.", True),
    ],
)
def test_a_restatement_gives_the_old_subject_and_only_its_numbers(text: str, says_again: bool) -> None:
    assert restates("user recall latency is back under 50 ms this morning", text) is says_again
