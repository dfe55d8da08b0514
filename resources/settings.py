"""The one reader of the environment: every setting athena-assets understands, with its default.

Everything else (resources, the CLI, the test fixture) receives a `Settings` value instead of reading
`os.environ`, so the README's table of variables and this module cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from resources.llamacpp.embedding_context import DEFAULT_CONTEXT, parse_context

DEFAULT_EMBEDDINGS_URL = "http://127.0.0.1:8001"
DEFAULT_REASONING_URL = "http://127.0.0.1:8002"
DEFAULT_PG_PORT = 5433
API_KEY_ENV = "LLAMACPP_API_KEY"
DATABASE_URL_ENV = "ATHENA_DATABASE_URL"
DEFAULT_HISTORY_START = date(2026, 1, 1)
DEFAULT_COMPRESSION_MODEL = "microsoft/llmlingua-2-xlm-roberta-large-meetingbank"
DEFAULT_COMPRESSION_RATIO = 0.33
# Claude Sonnet's published price for input tokens, US dollars per million.
DEFAULT_CLAUDE_INPUT_USD_PER_MTOK = 3.00
# The nightly consolidation of the previous day, in the partitions' timezone (UTC).
DEFAULT_CONSOLIDATION_HOUR = 3
DEFAULT_CONSOLIDATION_MINUTE = 0


class SettingsError(ValueError):
    """An environment variable holds a value athena-assets cannot use."""


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number; unset it or give e.g. {default}"
        ) from None


def _int_between(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    value = _int(environ, name, default)
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is outside [{low}, {high}]; unset it or give e.g. {default}")
    return value


def _context(environ: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return parse_context(environ.get("ATHENA_EMBEDDING_CONTEXT", "").strip() or DEFAULT_CONTEXT)
    except ValueError as err:
        raise SettingsError(str(err)) from None


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")


def _float(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float, include_low: bool
) -> float:
    """A number in [low, high] (or (low, high] when not `include_low`)."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; unset it or give e.g. {default}") from None
    if not (low <= value <= high) or (value == low and not include_low):
        bounds = f"{'[' if include_low else '('}{low:g}, {high:g}]"
        raise SettingsError(f"{name}={raw!r} is outside {bounds}; unset it or give e.g. {default}")
    return value


def _date(environ: Mapping[str, str], name: str, default: date) -> date:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a date; use YYYY-MM-DD, e.g. 2024-01-01") from None


def _urls(environ: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """A comma-separated list of base URLs (several replicas of one server role)."""
    raw = environ.get(name, "").strip() or default
    urls = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SettingsError(
                f"{name} holds {url!r}; expected http(s)://host:port[,http(s)://host:port...]"
            )
    return urls


def has_password(url: str) -> bool:
    """True when a URL (postgresql://user:password@host/db) carries a password."""
    rest = url.split("://", 1)[-1]
    return "@" in rest and ":" in rest.split("@", 1)[0]


# The embedded server's application database (the Dagster instance has its own, see stack/postgres.py).
APP_DATABASE = "athena"
# Beside the embedded server's data directory: the libpq password file of its generated password (0600).
PASSFILE_NAME = "postgres.pgpass"


def redacted_url(url: str) -> str:
    """`url` with its password (if it has one) replaced by ***, fit for a message or a log."""
    if not has_password(url):
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.split("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


@dataclass(frozen=True)
class Settings:
    """athena-assets configuration, read once from environment variables (see README, Configuration)."""

    home: Path
    models_dir: Path
    model_profile: str = "local"
    database_url: str | None = None
    dagster_database_url: str | None = None
    pg_port: int = DEFAULT_PG_PORT
    embeddings_urls: tuple[str, ...] = (DEFAULT_EMBEDDINGS_URL,)
    reasoning_urls: tuple[str, ...] = (DEFAULT_REASONING_URL,)
    embedding_dim: int = 0
    # What the embedder reads besides a conversation turn's content (ATHENA_EMBEDDING_CONTEXT).
    embedding_context: tuple[str, ...] = parse_context(DEFAULT_CONTEXT)
    n_threads: int = 0
    embedding_parallel: int = 2
    api_key: str | None = field(default=None, repr=False)
    # The bearer token `athena mcp --http` requires (ATHENA_MCP_TOKEN); needed off loopback.
    mcp_token: str | None = field(default=None, repr=False)
    allow_http_downloads: bool = False
    dagster_home: Path | None = None
    history_start: date = DEFAULT_HISTORY_START
    enable_compression: bool = True
    # Mask e-mail addresses and phone numbers in events (ATHENA_REDACT_CONTACTS); secrets always are.
    redact_contacts: bool = True
    compression_ratio: float = DEFAULT_COMPRESSION_RATIO
    compression_model: str = DEFAULT_COMPRESSION_MODEL
    claude_input_usd_per_mtok: float = DEFAULT_CLAUDE_INPUT_USD_PER_MTOK
    consolidation_hour: int = DEFAULT_CONSOLIDATION_HOUR
    consolidation_minute: int = DEFAULT_CONSOLIDATION_MINUTE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("ATHENA_HOME", "").strip() or "~/.athena").expanduser()
        models_dir = Path(env.get("ATHENA_MODELS_DIR", "").strip() or home / "models").expanduser()
        dagster_home = env.get("DAGSTER_HOME", "").strip()
        return cls(
            home=home,
            models_dir=models_dir,
            model_profile=env.get("ATHENA_MODEL_PROFILE", "").strip() or "local",
            database_url=env.get(DATABASE_URL_ENV, "").strip() or None,
            dagster_database_url=env.get("ATHENA_DAGSTER_DATABASE_URL", "").strip() or None,
            pg_port=_int(env, "ATHENA_PG_PORT", DEFAULT_PG_PORT),
            embeddings_urls=_urls(env, "LLAMACPP_EMBEDDINGS_URL", DEFAULT_EMBEDDINGS_URL),
            reasoning_urls=_urls(env, "LLAMACPP_REASONING_URL", DEFAULT_REASONING_URL),
            embedding_dim=_int(env, "LLAMACPP_EMBEDDING_DIM", 0),
            embedding_context=_context(env),
            n_threads=_int(env, "LLAMACPP_N_THREADS", 0),
            embedding_parallel=_int(env, "LLAMACPP_EMBEDDING_PARALLEL", 2),
            api_key=env.get(API_KEY_ENV, "").strip() or None,
            mcp_token=env.get("ATHENA_MCP_TOKEN", "").strip() or None,
            allow_http_downloads=_bool(env, "ATHENA_ALLOW_HTTP", False),
            dagster_home=Path(dagster_home).expanduser() if dagster_home else home / "dagster",
            history_start=_date(env, "ATHENA_HISTORY_START", DEFAULT_HISTORY_START),
            enable_compression=_bool(env, "ENABLE_COMPRESSION", True),
            redact_contacts=_bool(env, "ATHENA_REDACT_CONTACTS", True),
            # The share of tokens to keep: 0.33 keeps a third; 1 keeps everything.
            compression_ratio=_float(
                env, "ATHENA_COMPRESSION_RATIO", DEFAULT_COMPRESSION_RATIO, 0.0, 1.0, include_low=False
            ),
            compression_model=env.get("ATHENA_COMPRESSION_MODEL", "").strip() or DEFAULT_COMPRESSION_MODEL,
            claude_input_usd_per_mtok=_float(
                env,
                "ATHENA_CLAUDE_INPUT_USD_PER_MTOK",
                DEFAULT_CLAUDE_INPUT_USD_PER_MTOK,
                0.0,
                float("inf"),
                include_low=True,
            ),
            consolidation_hour=_int_between(
                env, "ATHENA_CONSOLIDATION_HOUR", DEFAULT_CONSOLIDATION_HOUR, 0, 23
            ),
            consolidation_minute=_int_between(
                env, "ATHENA_CONSOLIDATION_MINUTE", DEFAULT_CONSOLIDATION_MINUTE, 0, 59
            ),
        )

    @property
    def run_dir(self) -> Path:
        """Where the local stack keeps its pid files and logs."""
        return self.home / "run"

    @property
    def inbox_dir(self) -> Path:
        """Where `athena ingest` stores event files for the pipeline to load."""
        return self.home / "inbox"


def application_database_url(settings: Settings) -> str:
    """ATHENA_DATABASE_URL, or the embedded server's application database."""
    if settings.database_url:
        return settings.database_url
    return embedded_database_url(settings.home / PASSFILE_NAME, settings.pg_port, APP_DATABASE)


def embedded_database_url(passfile: Path, port: int, database: str) -> str:
    """A libpq URL of `database` on the embedded server: its password is read from `passfile` by libpq
    (psycopg and psycopg2 alike), so the URL itself carries no secret and can be shown anywhere."""
    return f"postgresql://postgres@127.0.0.1:{port}/{database}?passfile={passfile}"
