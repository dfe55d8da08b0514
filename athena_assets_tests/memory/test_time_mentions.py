"""The period a question names (`resources/memory/time_mentions.py`), which hybrid recall lifts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from resources.memory.time_mentions import named_period


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("question", "period"),
    [
        ("What exhibition did Maya see in March 2026?", (_utc(2026, 3, 1), _utc(2026, 4, 1))),
        ("what happened in dec 2025", (_utc(2025, 12, 1), _utc(2026, 1, 1))),
        ("Who called on 12 March 2026?", (_utc(2026, 3, 12), _utc(2026, 3, 13))),
        ("Who called on the 3rd of May, 2026?", (_utc(2026, 5, 3), _utc(2026, 5, 4))),
        ("Who called on March 12, 2026?", (_utc(2026, 3, 12), _utc(2026, 3, 13))),
        ("deploys on 2026-02-28", (_utc(2026, 2, 28), _utc(2026, 3, 1))),
        ("errors of 2026-07", (_utc(2026, 7, 1), _utc(2026, 8, 1))),
        ("Where did Tom travel in 2025?", (_utc(2025, 1, 1), _utc(2026, 1, 1))),
    ],
)
def test_a_named_day_month_or_year_is_its_period(question: str, period: tuple[datetime, datetime]) -> None:
    assert named_period(question) == period


@pytest.mark.parametrize(
    "question",
    [
        "What may Maya bring to the party?",  # "may" without a year is no month
        "Which port does the staging cache listen on, 6391?",
        "What did Tom do last week?",  # relative: recall does not know when "now" is
        "error 2026 in the log",  # a number, not "in 2026"
        "Who called on 31 February 2026?",  # no such day
    ],
)
def test_a_question_naming_no_period_has_none(question: str) -> None:
    assert named_period(question) is None
