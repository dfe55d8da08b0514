"""Inferences a model adds to a grounded description are cut where the evidence does not make them
(`inferences.py`); the demo's own descriptions are the cases."""

from __future__ import annotations

import pytest

from athena_assets.knowledge.clustering import PatternDraft
from athena_assets.knowledge.inferences import cut_unsupported_inferences, without_unsupported_inferences

RUFF = (
    "ruff check failed on athena_assets/events.py: two house style rules broken, a line too long and a "
    "missing return type",
    "ruff check failed on athena_assets_tests/conftest.py: two house style rules broken, a line too long",
)
COMMENTS = ("Style preference: comments say why, never what; commented-out code gets deleted.",)
TIMEOUTS = (
    "Decided every test gets a pytest-timeout bound and fixtures wait on health checks, never sleep.",
    "Ran pytest -x --durations=10; the fixture setup alone took 30.2s.",
)
ECONNRESET = ("the ingest worker failed with ECONNRESET; fixed it by raising the keepalive timeout to 75 s",)


@pytest.mark.parametrize(
    ("description", "evidence", "kept"),
    [
        (
            "Ruff check failures in multiple files with similar symptoms, indicating a pattern of poor "
            "coding style.",
            RUFF,
            "Ruff check failures in multiple files with similar symptoms.",
        ),
        (
            "Comments in code should explain why the code is there, not what it does. This helps maintain "
            "code clarity and maintainability.",
            COMMENTS,
            "Comments in code should explain why the code is there, not what it does.",
        ),
        (
            "Every test now has a pytest-timeout bound and fixtures wait on health checks, reducing the time "
            "needed to run tests and improving reliability.",
            TIMEOUTS,
            "Every test now has a pytest-timeout bound and fixtures wait on health checks.",
        ),
        # A cause the model supplies; the clause after it continues it.
        (
            "The decision to use frozen dataclasses was made after extensive testing and analysis of the "
            "codebase, which took about 2.2 minutes to pin down.",
            ("Style decision: frozen dataclasses for every record. Took about 2.2 minutes to pin down.",),
            "The decision to use frozen dataclasses was made.",
        ),
        # A cause the evidence gives stays, worded as the model wrote it.
        (
            "Moved Redis to port 6392 because port 6391 clashed with the local cache.",
            ("Moved the Redis cache from port 6391 to 6392 because 6391 clashed with the local cache",),
            "Moved Redis to port 6392 because port 6391 clashed with the local cache.",
        ),
        # An inference the evidence makes stays.
        (
            "The ingest worker failed with ECONNRESET, which raising the keepalive timeout fixed.",
            ECONNRESET,
            "The ingest worker failed with ECONNRESET, which raising the keepalive timeout fixed.",
        ),
        # Nothing would be left: the description stays whole, for the gate to judge.
        ("This helps maintain clarity.", COMMENTS, "This helps maintain clarity."),
    ],
)
def test_an_inference_the_evidence_does_not_make_is_cut(
    description: str, evidence: tuple[str, ...], kept: str
):
    assert without_unsupported_inferences(description, evidence) == kept


def test_drafts_keep_everything_but_the_cut_description() -> None:
    content = {"r1": RUFF[0], "r2": RUFF[1]}
    draft = PatternDraft(
        "Ruff check failures",
        "Ruff check failed twice, suggesting sloppy developers.",
        "pitfall",
        0.9,
        ("r1", "r2"),
    )
    [cut] = cut_unsupported_inferences([draft], content)
    assert cut == PatternDraft(
        "Ruff check failures", "Ruff check failed twice.", "pitfall", 0.9, ("r1", "r2")
    )
    grounded = PatternDraft("Ruff", "Ruff check failed on two files.", "pitfall", 0.9, ("r1",))
    assert cut_unsupported_inferences([grounded], content) == [grounded]
