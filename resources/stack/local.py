"""The local stack: embedded PostgreSQL + pgvector, a Dagster instance on it, and two llama-servers.

`athena stack up | down | status` and the test fixture drive this module. Each part is optional in
the same way production is: a database URL or a non-loopback llama.cpp URL means "use that server",
and the stack then only reports on it instead of starting one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from resources.llamacpp.probe import describe_facts, probe_server
from resources.models.manifest import ModelSpec, Role
from resources.settings import (
    PASSFILE_NAME,
    Settings,
    application_database_url,
    embedded_database_url,
    has_password,
    redacted_url,
)
from resources.stack.cpu import describe_vector_extensions
from resources.stack.crash_report import Crash, llama_server_crash, postgres_crashes
from resources.stack.dagster_event_log import dagster_storage_yaml
from resources.stack.llama_server import (
    LlamaServerConfig,
    ServerProcess,
    free_port,
    read_pid_file,
    start_llama_server,
    stop_llama_server,
)
from resources.stack.postgres import (
    DAGSTER_DATABASE,
    PostgresInfo,
    running_postgres,
    start_postgres,
    stop_postgres,
)

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
_DAGSTER_YAML_HEADER = "# Written by `athena stack up`"
SERVER_NAMES: dict[Role, str] = {"embedding": "llamacpp-embeddings", "reasoning": "llamacpp-reasoning"}


@dataclass(frozen=True)
class PartStatus:
    """One part of the stack as `athena stack status` shows it."""

    name: str
    address: str
    healthy: bool
    pid: int | None = None
    model: str | None = None
    managed: bool = True
    detail: str = ""
    # The vector extensions of the CPU a part we run uses (native binaries need AVX2); "" when remote.
    cpu: str = ""


class LocalStack:
    """Start, stop and inspect the local stack described by `settings` and the profile's models."""

    def __init__(self, settings: Settings, models: dict[Role, ModelSpec]) -> None:
        self.settings = settings
        self.models = models

    @property
    def pgdata(self) -> Path:
        """The embedded server's data directory."""
        return self.settings.home / "pgdata"

    @property
    def postgres_log(self) -> Path:
        """The embedded server's log, where it records backends killed by a signal."""
        return self.settings.home / "postgres.log"

    @property
    def manages_database(self) -> bool:
        """Whether the database is ours to start (no ATHENA_DATABASE_URL given)."""
        return self.settings.database_url is None

    def _role_url(self, role: Role) -> str:
        urls = self.settings.embeddings_urls if role == "embedding" else self.settings.reasoning_urls
        return urls[0]

    def manages_server(self, role: Role) -> bool:
        """Whether this stack starts the llama-server for `role` (one loopback URL), or only watches it."""
        urls = self.settings.embeddings_urls if role == "embedding" else self.settings.reasoning_urls
        return len(urls) == 1 and urlsplit(urls[0]).hostname in LOCAL_HOSTS

    def model_path(self, role: Role) -> Path:
        """Where the model file for `role` lives."""
        return self.settings.models_dir / self.models[role].file

    def database_url(self) -> str:
        """The application database (events, vectors, patterns)."""
        return application_database_url(self.settings)

    def dagster_database_url(self) -> str:
        """Dagster's own storage, as SQLAlchemy wants it (psycopg2, see README)."""
        url = self.settings.dagster_database_url or (
            self.settings.database_url
            if self.settings.database_url
            else embedded_database_url(
                self.settings.home / PASSFILE_NAME, self.settings.pg_port, DAGSTER_DATABASE
            )
        )
        scheme, rest = url.split("://", 1)
        return f"postgresql+psycopg2://{rest}" if scheme in {"postgres", "postgresql"} else url

    def start_database(self) -> PostgresInfo | None:
        """Start the embedded PostgreSQL (idempotent) and write DAGSTER_HOME/dagster.yaml."""
        info = None
        if self.manages_database:
            info = start_postgres(self.pgdata, self.settings.pg_port, self.postgres_log)
        self.write_dagster_yaml()
        return info

    def write_dagster_yaml(self) -> Path:
        """A Dagster instance config on PostgreSQL; a URL with a password is referenced, not written."""
        dagster_home = self.settings.dagster_home or self.settings.home / "dagster"
        dagster_home.mkdir(parents=True, exist_ok=True)
        path = dagster_home / "dagster.yaml"
        if path.exists() and not path.read_text().startswith(_DAGSTER_YAML_HEADER):
            # A deployment's own instance config (docker/dagster.yaml) is never overwritten.
            return path
        url = self.dagster_database_url()
        url_yaml = "{env: ATHENA_DAGSTER_DATABASE_URL}" if has_password(url) else f'"{url}"'
        path.write_text(
            _DAGSTER_YAML_HEADER
            + ": Dagster's runs, events and schedules live in PostgreSQL.\n"
            + dagster_storage_yaml(url_yaml)
            + "# One run at a time per model: see athena_assets/defs/pools.py.\n"
            "concurrency:\n"
            "  pools:\n"
            "    default_limit: 1\n"
            "telemetry:\n"
            "  enabled: false\n"
        )
        return path

    def _server_config(self, role: Role) -> LlamaServerConfig:
        spec = self.models[role]
        port = urlsplit(self._role_url(role)).port or 80
        key_file = None
        if self.settings.api_key:
            key_file = self.settings.run_dir / "llamacpp.key"
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(self.settings.api_key + "\n")
        return LlamaServerConfig(
            name=SERVER_NAMES[role],
            model_path=self.model_path(role),
            port=port,
            context_length=spec.context_length,
            embedding=role == "embedding",
            pooling=spec.pooling,
            n_threads=self.settings.n_threads,
            parallel=self.settings.embedding_parallel if role == "embedding" else 1,
            api_key_file=key_file,
        )

    def missing_models(self) -> list[Role]:
        """Roles whose model file is not in the models directory yet."""
        return [
            role for role in self.models if self.manages_server(role) and not self.model_path(role).is_file()
        ]

    def start_llama_servers(self, timeout_s: float = 180) -> dict[Role, ServerProcess]:
        """Start both llama-servers we manage (idempotent) and wait until they answer /health."""
        started: dict[Role, ServerProcess] = {}
        for role in self.models:
            if self.manages_server(role):
                started[role] = start_llama_server(
                    self._server_config(role), self.settings.run_dir, timeout_s, self.settings.api_key
                )
        return started

    def down(self) -> list[str]:
        """Stop what this stack started; returns the names of the parts stopped."""
        stopped = [
            SERVER_NAMES[role]
            for role in self.models
            if stop_llama_server(SERVER_NAMES[role], self.settings.run_dir)
        ]
        if self.manages_database and stop_postgres(self.pgdata):
            stopped.append("postgres")
        return stopped

    def crashes_since(self, since: datetime) -> list[Crash]:
        """Parts of this stack killed by a signal at or after `since`, read from their logs."""
        crashes = postgres_crashes(self.postgres_log, since) if self.manages_database else []
        for role in self.models:
            name = SERVER_NAMES[role]
            crash = llama_server_crash(name, self.settings.run_dir / f"{name}.log", since)
            if crash is not None and self.manages_server(role):
                crashes.append(crash)
        return crashes

    def status(self) -> list[PartStatus]:
        """Each part: address, pid, model and health."""
        parts = [self._database_status()]
        parts += [self._server_status(role) for role in self.models]
        return parts

    def _database_status(self) -> PartStatus:
        if not self.manages_database:
            return PartStatus(
                "postgres",
                redacted_url(self.database_url()),
                _database_answers(self.database_url()),
                managed=False,
            )
        info = running_postgres(self.pgdata)
        return PartStatus(
            "postgres",
            f"127.0.0.1:{self.settings.pg_port}",
            info is not None and _database_answers(self.database_url()),
            pid=info.pid if info else None,
            detail="pgvector" if info else "not running",
            cpu=describe_vector_extensions(),
        )

    def _server_status(self, role: Role) -> PartStatus:
        url = self._role_url(role)
        record = read_pid_file(self.settings.run_dir / f"{SERVER_NAMES[role]}.pid.json")
        facts = probe_server(url, self.settings.api_key)
        return PartStatus(
            SERVER_NAMES[role],
            url,
            facts.up,
            pid=record.pid if record else None,
            # What the server says it serves; the manifest's file while it cannot say.
            model=facts.model or self.models[role].file,
            managed=self.manages_server(role),
            detail=describe_facts(facts),
            cpu=describe_vector_extensions() if self.manages_server(role) else "",
        )


def private_stack_environment(
    home: Path, models_dir: Path | None = None, profile: str = "local"
) -> dict[str, str]:
    """The variables of a private stack under `home` on ports free right now (tests, benchmarks), with
    the models of `profile`."""
    return {
        "ATHENA_HOME": str(home),
        "ATHENA_MODELS_DIR": str(models_dir or home / "models"),
        "ATHENA_MODEL_PROFILE": profile,
        "ATHENA_PG_PORT": str(free_port()),
        "LLAMACPP_EMBEDDINGS_URL": f"http://127.0.0.1:{free_port()}",
        "LLAMACPP_REASONING_URL": f"http://127.0.0.1:{free_port()}",
        "LLAMACPP_N_THREADS": "2",
    }


def _database_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False
