"""The code location loads and validates the way `dagster dev` and the UI load it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from athena_assets.definitions import build_defs, defs
from athena_assets.defs.resources import AthenaResources
from athena_assets_tests.helpers import REPO, StackHandle
from resources.settings import Settings


def test_dagster_definitions_validate_on_the_workspace(stack: StackHandle) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    completed = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(stack.settings.dagster_home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Validation successful" in completed.stdout + completed.stderr


def test_each_asset_is_in_the_group_of_its_folder_under_defs() -> None:
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {
        "embedding_model_file": "models",
        "reasoning_model_file": "models",
        "episodic_events": "memory",
        "event_embeddings": "memory",
        "consolidated_patterns": "consolidation",
        "compressed_prompts": "prompts",
    }
    for key in graph.get_all_asset_keys():
        assert graph.get(key).code_version is not None, key


def test_model_calls_wait_for_their_pool_and_every_backfill_is_cut_into_years() -> None:
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    assert pools == {
        "embedding_model_file": set(),
        "reasoning_model_file": set(),
        "episodic_events": set(),
        "event_embeddings": {"embedding_model"},
        "consolidated_patterns": {"reasoning_model"},
        "compressed_prompts": {"compression_model"},
    }
    # A UI backfill of ten years is ten runs, like `athena backfill`, not one run holding it all.
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is not None:
            assert node.backfill_policy == dg.BackfillPolicy.multi_run(366), key


def test_the_code_location_holds_every_job_schedule_sensor_and_resource(tmp_path: Path) -> None:
    built = build_defs(Settings.from_env({"ATHENA_HOME": str(tmp_path)}))
    dg.Definitions.validate_loadable(built)
    assert built.resolve_job_def("consolidation_job") is not None
    assert built.resolve_schedule_def("nightly_consolidation").cron_schedule == "0 3 * * *"
    assert {sensor.name for sensor in built.sensors or ()} == {"new_events_sensor", "llamacpp_health_sensor"}
    assert set(built.resources or {}) == {field.name for field in fields(AthenaResources)}


def test_secrets_reach_dagster_as_env_vars_and_the_cli_as_values(monkeypatch: pytest.MonkeyPatch) -> None:
    key, password = "sk-test-9f8e7d6c5b4a", "pg-pass-1a2b3c4d"
    url = f"postgresql://athena:{password}@db.internal:5432/athena"
    monkeypatch.setenv("LLAMACPP_API_KEY", key)
    monkeypatch.setenv("ATHENA_DATABASE_URL", url)
    settings = Settings.from_env()
    defs = build_defs(settings)
    # What the UI is sent about the code location: its resources' configuration among the rest.
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert "LLAMACPP_API_KEY" in snapshot and "ATHENA_DATABASE_URL" in snapshot
    assert key not in snapshot and password not in snapshot
    resources = AthenaResources.from_settings(settings)
    assert isinstance(resources.embeddings.api_key, dg.EnvVar) and isinstance(
        resources.memory.database_url, dg.EnvVar
    )
    direct = AthenaResources.for_direct_use(settings)
    assert (direct.embeddings.api_key, direct.reasoning.api_key, direct.memory.database_url) == (
        key,
        key,
        url,
    )


def test_loading_the_definitions_and_the_cli_imports_no_library_only_consolidation_or_csv_needs() -> None:
    # scikit-learn (with SciPy) and pandas took 2.5 s of every `athena backfill`'s start.
    probe = (
        "import sys\n"
        "import athena_assets.cli.main, athena_assets.definitions\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
