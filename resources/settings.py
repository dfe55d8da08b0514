"""The one reader of the environment: every setting athena-assets understands, with its default.

Everything else (resources, the CLI, the test fixture) receives a `Settings` value instead of reading
`os.environ`, so the README's table of variables and this module cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_EMBEDDINGS_URL = "http://127.0.0.1:8001"
DEFAULT_REASONING_URL = "http://127.0.0.1:8002"
DEFAULT_PG_PORT = 5433
API_KEY_ENV = "LLAMACPP_API_KEY"


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


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")


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
    n_threads: int = 0
    embedding_parallel: int = 2
    api_key: str | None = field(default=None, repr=False)
    allow_http_downloads: bool = False
    dagster_home: Path | None = None

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
            database_url=env.get("ATHENA_DATABASE_URL", "").strip() or None,
            dagster_database_url=env.get("ATHENA_DAGSTER_DATABASE_URL", "").strip() or None,
            pg_port=_int(env, "ATHENA_PG_PORT", DEFAULT_PG_PORT),
            embeddings_urls=_urls(env, "LLAMACPP_EMBEDDINGS_URL", DEFAULT_EMBEDDINGS_URL),
            reasoning_urls=_urls(env, "LLAMACPP_REASONING_URL", DEFAULT_REASONING_URL),
            embedding_dim=_int(env, "LLAMACPP_EMBEDDING_DIM", 0),
            n_threads=_int(env, "LLAMACPP_N_THREADS", 0),
            embedding_parallel=_int(env, "LLAMACPP_EMBEDDING_PARALLEL", 2),
            api_key=env.get(API_KEY_ENV, "").strip() or None,
            allow_http_downloads=_bool(env, "ATHENA_ALLOW_HTTP", False),
            dagster_home=Path(dagster_home).expanduser() if dagster_home else home / "dagster",
        )

    @property
    def run_dir(self) -> Path:
        """Where the local stack keeps its pid files and logs."""
        return self.home / "run"
