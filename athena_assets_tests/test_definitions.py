"""The code location loads and validates the way `dagster dev` and the UI load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from athena_assets.definitions import defs
from athena_assets_tests.conftest import StackHandle

REPO = Path(__file__).resolve().parents[1]


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


def test_model_files_are_assets_in_the_models_group() -> None:
    graph = defs.resolve_asset_graph()
    for name in ("embedding_model_file", "reasoning_model_file"):
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "models"
        assert node.code_version is not None
