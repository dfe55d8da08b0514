"""A model file's sha256 without reading it again: remembered beside the file (`<file>.sha256.json`,
keyed by its size and modification time), so a short-lived command (`athena recall`) knows which
model's vectors to search in a millisecond instead of hashing hundreds of megabytes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from resources.models.sources import sha256_file

SIDECAR_SUFFIX = ".sha256.json"


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
