"""A model file's identity, its sha256, without reading it again: remembered beside the file
(`<file>.sha256.json`, keyed by its size and modification time).

This is the one source of a model's identity: the model-file assets verify and record it, the assets
that embed or reason key their rows by it, and recall searches the vectors it names; a short-lived
command (`athena recall`) learns it in a millisecond instead of hashing hundreds of megabytes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from resources.models.sources import sha256_file

SIDECAR_SUFFIX = ".sha256.json"


def model_sha256(path: Path) -> str:
    """The identity of the model file at `path` (see the module docstring); a missing file is an error
    that names it and the command that fetches it."""
    if not path.is_file():
        raise FileNotFoundError(f"the model file {path} is not there; run `athena models` to fetch it")
    return remembered_sha256(path)


def remembered_sha256(path: Path) -> str:
    """The sha256 of the file at `path`, from its sidecar when the file has not changed since, else
    computed and remembered (a read-only models directory only costs the hashing)."""
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        recorded = json.loads(sidecar.read_text())
        if {name: recorded[name] for name in key} == key:
            return str(recorded["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    sha = sha256_file(path)
    try:
        # Written to a temporary file and renamed: two commands at once never read half a sidecar.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
            json.dump(key | {"sha256": sha}, out)
        Path(out.name).replace(sidecar)
    except OSError:
        pass
    return sha
