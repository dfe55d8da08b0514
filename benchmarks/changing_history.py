"""A history in which some subjects change and others do not: the ground truth of
`knowledge_changes.py`.

Ten subjects change once (values, tools replaced, decisions and preferences reversed), each stated in
varied words every few days before the change and after it; six stable subjects are restated all along,
several of them looking like a changing one (another port, another deploy rule, another CI setting);
and one-off events sit between them. The subject of every event and each subject's old and new value
stay in this module: the pipeline sees content, type and time only. Deterministic (a fixed seed).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from resources.memory.event_line import Event

START = date(2026, 10, 1)
DAYS = 35


@dataclass(frozen=True)
class Subject:
    """A subject of the history: what is said about it before its change and after (stable: no change)."""

    name: str
    before: tuple[str, ...]
    # The words that name each value; a pattern "states" a value when its text has one of them.
    old_value: tuple[str, ...]
    change: str = ""
    after: tuple[str, ...] = ()
    new_value: tuple[str, ...] = ()
    change_day: int = 0

    @property
    def changes(self) -> bool:
        """Whether the subject changes during the history."""
        return bool(self.change)


CHANGING = (
    Subject(
        "redis-port",
        ("The Redis cache listens on port 6391 on the dev box",
         "Connected the worker to the Redis cache on port 6391",
         "Redis cache port 6391 set in settings.toml for local runs",
         "Checked the Redis cache on port 6391 with redis-cli ping"),
        ("6391",),
        "Moved the Redis cache from port 6391 to port 6392 because 6391 clashed with the metrics agent",
        ("Redis cache now answers on port 6392 on the dev box",
         "Pointed the worker at the Redis cache on port 6392",
         "Updated settings.toml: Redis cache port 6392 for local runs"),
        ("6392",), 16,
    ),
    Subject(
        "formatter",
        ("Ran black to format the Python code before committing",
         "black reformatted four files in the api package",
         "The pre-commit hook runs black on every commit",
         "CI fails when black would reformat a file"),
        ("black",),
        "Replaced black with ruff format as the Python formatter; removed black from pre-commit",
        ("ruff format reformatted two files in the api package",
         "The pre-commit hook runs ruff format on every commit",
         "CI checks formatting with ruff format --check"),
        ("ruff",), 14,
    ),
    Subject(
        "task-queue",
        ("Decided to use rq for the background task queue",
         "Wrote the email job as an rq task on the background queue",
         "rq worker processed the thumbnail jobs from the task queue",
         "Added retries to the rq task queue for failed jobs"),
        ("rq",),
        "Switched the background task queue from rq to celery for scheduled jobs",
        ("celery worker processed the thumbnail jobs from the task queue",
         "Wrote the report job as a celery task on the background queue",
         "Added retries to the celery task queue for failed jobs"),
        ("celery",), 19,
    ),
    Subject(
        "python-version",
        ("CI runs the test suite on Python 3.11",
         "Pinned Python 3.11 in the CI workflow matrix",
         "The Docker image uses Python 3.11 like CI"),
        ("3.11",),
        "Upgraded CI and the Docker image from Python 3.11 to Python 3.12",
        ("CI runs the test suite on Python 3.12",
         "Pinned Python 3.12 in the CI workflow matrix",
         "The Docker image uses Python 3.12 like CI"),
        ("3.12",), 21,
    ),
    Subject(
        "release-day",
        ("Production releases go out on Thursdays",
         "Prepared the Thursday production release notes",
         "The production release happens every Thursday afternoon"),
        ("thursday", "thursdays"),
        "Moved production releases from Thursdays to Tuesdays so problems surface before the weekend",
        ("Prepared the Tuesday production release notes",
         "Production releases now go out on Tuesdays",
         "The production release happens every Tuesday afternoon"),
        ("tuesday", "tuesdays"), 17,
    ),
    Subject(
        "feature-flags",
        ("Decided to put new features behind LaunchDarkly feature flags",
         "Wrapped the new checkout page in a LaunchDarkly feature flag",
         "LaunchDarkly feature flag turned on the beta search for staff"),
        ("launchdarkly",),
        "Reversed the feature flag decision: dropped LaunchDarkly and read flags from environment variables",
        ("Feature flags are read from environment variables now",
         "Turned on the beta search with an environment variable feature flag",
         "Added FEATURE_NEW_CHECKOUT as an environment variable flag"),
        ("environment",), 18,
    ),
    Subject(
        "http-client",
        ("Use requests for outgoing HTTP calls in the API client",
         "The payment API client sends its HTTP calls with requests",
         "Added a requests session with retries to the HTTP client"),
        ("requests",),
        "Replaced requests with httpx in the API client for async HTTP calls",
        ("The payment API client sends its HTTP calls with httpx",
         "Added an httpx client with retries for outgoing HTTP calls",
         "Outgoing HTTP calls in the API client use httpx now"),
        ("httpx",), 15,
    ),
    Subject(
        "gateway-timeout",
        ("The API gateway timeout is 30 seconds",
         "Requests longer than 30 seconds hit the API gateway timeout",
         "Set the API gateway timeout to 30 seconds in the ingress config"),
        ("30",),
        "Raised the API gateway timeout from 30 to 60 seconds for the export endpoint",
        ("The API gateway timeout is 60 seconds",
         "Exports up to 60 seconds now pass the API gateway timeout",
         "Ingress config has the API gateway timeout at 60 seconds"),
        ("60",), 20,
    ),
    Subject(
        "pytest-workers",
        ("pytest runs with 4 xdist workers in CI",
         "Set pytest -n 4 workers for the CI test job",
         "The CI test job uses 4 pytest workers"),
        ("4",),
        "Reduced pytest from 4 to 2 xdist workers in CI because the runners ran out of memory",
        ("pytest runs with 2 xdist workers in CI",
         "The CI test job uses 2 pytest workers",
         "Set pytest -n 2 workers for the CI test job"),
        ("2",), 22,
    ),
    Subject(
        "answer-style",
        ("The user prefers short answers without explanations",
         "User asked again for brief answers, no long explanations",
         "Kept the reply short because the user prefers brief answers"),
        ("short", "brief"),
        "The user changed their mind: they now want detailed answers with explanations instead of short ones",
        ("The user prefers detailed answers with explanations",
         "Gave a detailed explanation because the user wants detailed answers",
         "User thanked for the detailed answer with explanations"),
        ("detailed",), 16,
    ),
)  # fmt: skip

STABLE = (
    Subject(
        "postgres-port",
        ("PostgreSQL listens on port 5432 on the dev box",
         "Connected the API to PostgreSQL on port 5432",
         "PostgreSQL port 5432 set in settings.toml for local runs",
         "Checked PostgreSQL on port 5432 with pg_isready"),
        ("5432",),
    ),
    Subject(
        "staging-deploys",
        ("Staging deploys automatically after every merge to main",
         "A merge to main triggered the automatic staging deploy",
         "Watched the staging deploy that follows each merge to main"),
        ("staging",),
    ),
    Subject(
        "mypy-strict",
        ("CI runs mypy in strict mode",
         "mypy strict mode caught a missing return type in CI",
         "Kept mypy strict mode on for the whole package in CI"),
        ("mypy",),
    ),
    Subject(
        "code-review",
        ("Pull requests need two approvals before merging",
         "Waited for the second approval before merging the pull request",
         "Two reviewers must approve a pull request before it merges"),
        ("two", "second"),
    ),
    Subject(
        "error-tracking",
        ("Sentry collects the API errors in production",
         "Looked up the checkout crash in Sentry",
         "Sentry alerted on a spike of API errors in production"),
        ("sentry",),
    ),
    Subject(
        "editor-font",
        ("The user codes in the editor with the JetBrains Mono font",
         "Set JetBrains Mono as the editor font on the new laptop",
         "The user likes the JetBrains Mono font in the terminal and editor"),
        ("jetbrains",),
    ),
)  # fmt: skip

ONE_OFFS = (
    "Renewed the TLS certificate for the docs site", "Cleaned up old branches in the repository",
    "Answered a question about the billing export format", "Rotated the staging database password",
    "Fixed a typo in the onboarding email", "Archived the 2025 analytics dashboard",
    "Reviewed the vendor security questionnaire", "Updated the team calendar for the holidays",
    "Sketched the data model for invoices", "Cleared the disk on the build agent",
    "Wrote a postmortem for the login outage", "Renamed the customers table column to full_name",
    "Added an index on orders.created_at", "Drafted the Q1 roadmap", "Tested the backup restore",
    "Removed an unused npm dependency", "Paired on the search relevance bug", "Translated the FAQ to German",
    "Benchmarked the PDF renderer", "Moved the team wiki page about on-call",
)  # fmt: skip

_DETAILS = ("", " today", " this morning", " after the standup", " before lunch", " in the afternoon")


@dataclass(frozen=True)
class ChangingHistory:
    """The events, and kept apart from them the subject of each event id."""

    events: list[Event]
    subject_of: dict[str, str]

    @property
    def days(self) -> list[date]:
        """The days with events, oldest first."""
        return sorted({event.day for event in self.events})


def _event(event_id: str, at: datetime, content: str) -> Event:
    return Event(
        id=event_id, occurred_at=at, content=content, event_type="note", source="benchmark",
        session_id=None, metadata={}, content_sha256=hashlib.sha256(content.encode()).hexdigest(),
        source_file="benchmark", source_line=1,
    )  # fmt: skip


def _days(rng: random.Random, first: int, last: int, gap: tuple[int, int]) -> list[int]:
    """Days from `first` to `last`, `gap` days apart (at random within the bounds)."""
    days, day = [], first
    while day <= last:
        days.append(day)
        day += rng.randint(*gap)
    return days


def changing_history(seed: int = 2026) -> ChangingHistory:
    """The history: changing and stable subjects stated every 2-4 days, one-offs in between."""
    rng = random.Random(seed)
    start = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    said: list[tuple[int, str, str]] = []
    for subject in CHANGING:
        before = _days(rng, rng.randint(0, 2), subject.change_day - 2, (2, 4))
        said += [(day, subject.name, subject.before[n % len(subject.before)]) for n, day in enumerate(before)]
        said.append((subject.change_day, subject.name, subject.change))
        after = _days(rng, subject.change_day + 2, DAYS - 1, (2, 4))
        said += [(day, subject.name, subject.after[n % len(subject.after)]) for n, day in enumerate(after)]
    for subject in STABLE:
        days = _days(rng, rng.randint(0, 3), DAYS - 1, (2, 4))
        said += [(day, subject.name, subject.before[n % len(subject.before)]) for n, day in enumerate(days)]
    said += [(rng.randrange(DAYS), f"one-off-{n}", text) for n, text in enumerate(ONE_OFFS)]
    events, subject_of = [], {}
    for index, (day, name, text) in enumerate(sorted(said)):
        # Working hours, so a day's events never spill into the next UTC day.
        at = start + timedelta(days=day, seconds=rng.randrange(8 * 3600, 18 * 3600))
        event_id = f"chg-{index:04d}"
        events.append(_event(event_id, at, text + rng.choice(_DETAILS)))
        subject_of[event_id] = name
    return ChangingHistory(sorted(events, key=lambda e: (e.occurred_at, e.id)), subject_of)
