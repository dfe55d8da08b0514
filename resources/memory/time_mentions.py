"""The period a question names, if it names one: "in March 2026", "on 12 March 2026", "March 12, 2026",
"2026-03-12", "2026-03", "in 2025". Hybrid recall lifts the candidates that happened then
(`DATE_BOOST` in `recall.py`): a question such as "What exhibition did Maya see in March 2026?" has
look-alike answers in other months, and neither words nor meaning tell them apart.

Only absolute dates: "last week" needs to know when the question is asked about, which recall does not.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
)  # fmt: skip
_MONTH = r"(?P<month>" + "|".join(_MONTHS) + r"|" + "|".join(m[:3] for m in _MONTHS) + r")\.?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
# The most precise form first: a day, then a month, then a year alone.
_PATTERNS = (
    re.compile(rf"\b{_YEAR}-(?P<month_number>[01]\d)-(?P<day>[0-3]\d)\b"),
    re.compile(rf"\b{_DAY} (?:of )?{_MONTH},? {_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH} {_DAY},? {_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_YEAR}-(?P<month_number>[01]\d)\b"),
    re.compile(rf"\b{_MONTH},? {_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b(?:in|during|of|since) {_YEAR}\b", re.IGNORECASE),
)


def _month(groups: dict[str, str | None]) -> int | None:
    if groups.get("month_number"):
        return int(str(groups["month_number"]))
    name = groups.get("month")
    return None if name is None else [m[:3] for m in _MONTHS].index(name[:3].lower()) + 1


def named_period(question: str) -> tuple[datetime, datetime] | None:
    """The [start, end) the question names, in UTC, or None; an impossible date ("31 February") is
    no date."""
    for pattern in _PATTERNS:
        found = pattern.search(question)
        if found is None:
            continue
        groups = found.groupdict()
        year, month = int(str(groups["year"])), _month(groups)
        try:
            if month is None:
                start, end = date(year, 1, 1), date(year + 1, 1, 1)
            elif groups.get("day"):
                start = date(year, month, int(str(groups["day"])))
                end = start + timedelta(days=1)
            else:
                start = date(year, month, 1)
                end = date(year + month // 12, month % 12 + 1, 1)
        except ValueError:
            return None
        return _utc(start), _utc(end)
    return None


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
