"""Failures a user can fix, said in one line: which database does not answer, and what to do."""

from __future__ import annotations

from resources.settings import Settings, application_database_url, redacted_url


def database_down(settings: Settings, err: BaseException) -> str:
    """One line for a database that does not answer: which one, why, and what to do."""
    reason = str(err).strip().splitlines()[0].rsplit(": ", 1)[-1] if str(err).strip() else type(err).__name__
    where = redacted_url(application_database_url(settings))
    fix = "check ATHENA_DATABASE_URL" if settings.database_url else "start it with `athena stack up`"
    return f"the database at {where} does not answer ({reason}); {fix}"


def database_unreachable(err: BaseException) -> bool:
    """Whether `err`, or an error it was raised from, is a database that stopped answering: psycopg's,
    or psycopg2's under SQLAlchemy (Dagster's run and event storage), matched by name so that neither
    is imported here."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ == "OperationalError":
            return True
        current = current.__cause__ or current.__context__
    return False
