"""The pure parts of `athena deploy`: the env file, the compose command line, the offline wheelhouse's
inputs. The deployment itself is tested on a real engine in test_compose_up.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from athena_assets.api.deploy.compose import Deployment, read_env_file
from athena_assets.api.deploy.docker_engine import DeployError
from athena_assets.api.deploy.offline_images import REPO, requirements


def test_the_env_file_is_read_as_compose_reads_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\n\nCOMPOSE_PROJECT_NAME=athena\nPOSTGRES_PASSWORD=a=b\nLLAMACPP_API_KEY=\n")
    assert read_env_file(env) == {
        "COMPOSE_PROJECT_NAME": "athena",
        "POSTGRES_PASSWORD": "a=b",
        "LLAMACPP_API_KEY": "",
    }


def test_a_missing_env_file_names_the_copy_to_make(tmp_path: Path) -> None:
    with pytest.raises(
        DeployError, match=r"does not exist: cp docker/.env.example .* and fill in POSTGRES_PASSWORD"
    ):
        read_env_file(tmp_path / ".env")


def test_the_command_line_stacks_the_overrides_and_the_replicas_profile(tmp_path: Path) -> None:
    plain = Deployment(tmp_path / ".env")
    everything = Deployment(tmp_path / ".env", offline=True, run_containers=True, replicas=True)
    assert [Path(file).name for file in plain.files()] == ["docker-compose.yml"]
    assert [Path(file).name for file in everything.files()] == [
        "docker-compose.yml",
        "docker-compose.offline.yml",
        "docker-compose.run-containers.yml",
    ]
    assert "--profile" not in plain.command("up")
    assert everything.command("up", "-d")[-4:] == ["--profile", "replicas", "up", "-d"]
    assert everything.environ({})["ATHENA_EMBEDDINGS_URLS"] == (
        "http://llamacpp-embeddings:8001,http://llamacpp-embeddings-2:8001"
    )
    assert "ATHENA_EMBEDDINGS_URLS" not in plain.environ({})
    assert (
        everything.services[-1] == "llamacpp-embeddings-2" and "llamacpp-embeddings-2" not in plain.services
    )


def test_the_wheelhouse_holds_the_runtime_pins_and_what_builds_the_project() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = requirements()
    assert set(pins) == {*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]}
    assert not set(pyproject["project"]["optional-dependencies"]["dev"]) & set(pins)
