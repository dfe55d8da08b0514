"""Each run in a container of its own, made like the compose deployment's code location container.

dagster-docker's DockerRunLauncher starts a container per run from the code location's image
(`DAGSTER_CURRENT_IMAGE`), but what else the run needs - the inbox and models volumes, the compose
network that resolves `postgres` and `llamacpp-embeddings`, the database URLs and the API key - it
takes from instance configuration, where a project's volume and network names (`athena_models`,
`athena_default`) would have to be written out for each project name. This launcher finds the code
location's container in the launching container's own compose project instead (by Compose's labels)
and gives each run its volumes (`volumes_from`), networks and environment. The same launcher serves
any project name; docker/dagster.run-containers.yaml configures it, docs/deploy.md says how the same
settings carry to dagster-k8s.
"""

from __future__ import annotations

import socket
from typing import Any

from dagster._core.storage.dagster_run import DagsterRun
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext

import docker

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CODE_LOCATION_SERVICE = "athena-assets"
# Set by Docker in every container; a run's container gets its own.
_NOT_INHERITED = ("HOSTNAME=",)


def _code_location_container(client: docker.DockerClient) -> Any:
    """The running code location container of the compose project this process runs in."""
    own = client.containers.get(socket.gethostname())
    project = own.labels.get(PROJECT_LABEL)
    if not project:
        raise RuntimeError(
            f"container {own.name} is not part of a compose project (no {PROJECT_LABEL} label): "
            "run the daemon with docker/docker-compose.run-containers.yml"
        )
    found = client.containers.list(
        filters={"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={CODE_LOCATION_SERVICE}"]}
    )
    if not found:
        raise RuntimeError(f"no running {CODE_LOCATION_SERVICE} container in compose project {project}")
    return found[0]


class ComposeRunLauncher(DockerRunLauncher):
    """A DockerRunLauncher whose run containers share the code location container's volumes,
    networks and environment (see the module's docstring)."""

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        """The configured context plus the code location container's volumes, networks and environment."""
        context = super().get_container_context(dagster_run)
        code_location = _code_location_container(docker.client.from_env())
        environment = [
            item for item in code_location.attrs["Config"]["Env"] if not item.startswith(_NOT_INHERITED)
        ]
        networks = list(code_location.attrs["NetworkSettings"]["Networks"])
        return context.merge(
            DockerContainerContext(
                env_vars=environment,
                networks=networks,
                container_kwargs={"volumes_from": [code_location.id]},
            )
        )
