"""What many tests share: the session stack's handle, private resources on it, and the repository root.

Fixtures live in `conftest.py`; the plain values and functions they and the tests use live here, so a
test imports them like any module (never a fixture through an import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dagster as dg

from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.resources import AthenaResources
from resources.memory.inbox import InboxResource
from resources.memory.prompt_store import PromptStore
from resources.memory.store import MemoryStore
from resources.settings import Settings
from resources.stack.llama_server import LlamaServerConfig, free_port
from resources.stack.local import LocalStack

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class StackHandle:
    """What a test needs to talk to the session's stack."""

    settings: Settings
    stack: LocalStack
    instance: dg.DagsterInstance
    database_url: str
    embeddings_url: str
    reasoning_url: str

    @property
    def embedding_model_path(self) -> Path:
        """The embedding GGUF file the server runs."""
        return self.stack.model_path("embedding")

    @property
    def reasoning_model_path(self) -> Path:
        """The reasoning GGUF file the server runs."""
        return self.stack.model_path("reasoning")

    def environ(self) -> dict[str, str]:
        """This process's environment plus the variables that point a child process (the CLI, the
        webserver) at this stack."""
        return {
            **os.environ,
            "ATHENA_HOME": str(self.settings.home),
            "DAGSTER_HOME": str(self.settings.dagster_home),
            "ATHENA_PG_PORT": str(self.settings.pg_port),
            "LLAMACPP_EMBEDDINGS_URL": self.embeddings_url,
            "LLAMACPP_REASONING_URL": self.reasoning_url,
        }

    def private_embedding_server(self, name: str) -> LlamaServerConfig:
        """A second embedding llama-server of the session's model, on a free port, for a test to start,
        stop or kill without touching the shared one (one thread, 512-token context: quick to start)."""
        return LlamaServerConfig(
            name=name,
            model_path=self.embedding_model_path,
            port=free_port(),
            context_length=512,
            embedding=True,
            pooling="mean",
            n_threads=1,
        )

    def private_reasoning_server(self, name: str) -> LlamaServerConfig:
        """A second reasoning llama-server of the session's model, on a free port, as the stack starts
        its own (the model's context, one slot), for a test to kill without touching the shared one."""
        return LlamaServerConfig(
            name=name,
            model_path=self.reasoning_model_path,
            port=free_port(),
            context_length=self.stack.models["reasoning"].context_length,
            embedding=False,
            n_threads=self.settings.n_threads,
        )

    def private_resources(self, tmp: Path) -> AthenaResources:
        """The code location's resources on this stack, writing into a new schema of its database and
        reading a private inbox under `tmp`, so a test sees only its own events."""
        resources = AthenaResources.from_settings(replace(self.settings, home=tmp / "home"))
        schema = f"t_{uuid.uuid4().hex[:10]}"
        return replace(
            resources,
            memory=MemoryStore(database_url=self.database_url, schema_name=schema),
            prompt_store=PromptStore(
                database_url=self.database_url, prompts_dir=str(tmp / "prompts"), schema_name=schema
            ),
            inbox=InboxResource(inbox_dir=str(tmp / "inbox"), history_start="2026-01-01"),
        )


def embed_day(
    stack: StackHandle, resources: AthenaResources, rows: Iterable[Mapping[str, Any]], day: str, tmp: Path
) -> dg.ExecuteInProcessResult:
    """Store `rows` as a new file of `resources`' inbox, then materialise `day`'s events and embeddings."""
    resources.inbox.ingest(write_jsonl(tmp / f"events-{day}-{uuid.uuid4().hex[:6]}.jsonl", rows))
    return dg.materialize(
        [episodic_events, event_embeddings],
        resources=resources.as_dict(),
        instance=stack.instance,
        partition_key=day,
    )


def run_athena(stack: StackHandle, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """`athena ARGS...` as a user runs it, against `stack`."""
    athena = Path(sys.executable).with_name("athena")
    return subprocess.run(
        [str(athena), *args],
        env=stack.environ(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]], extra_lines: Iterable[str] = ()) -> Path:
    """`rows` as JSON Lines (then `extra_lines` verbatim) in `path`; returns `path`."""
    path.write_text("\n".join([*(json.dumps(row) for row in rows), *extra_lines]) + "\n")
    return path
