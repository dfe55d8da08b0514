"""How model fetches are reported to people: the models folder's README table, and progress callbacks.

`write_models_readme` keeps `models_dir/README.md` in step with the files there; `terminal_progress`
(for the CLI) and `logging_progress` (for Dagster's `context.log.info`) turn the `(bytes_done, total)`
calls of a fetch into a progress bar or periodic log lines. `models_dir_lock` is the lock that fetches
and README updates of one models directory take, so concurrent runs neither share a `.part` file nor
drop each other's README rows.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from resources.models.http_download import FetchResult, Progress
from resources.models.manifest import ModelSpec


@contextmanager
def models_dir_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory` (e.g. the CLI and a Dagster run fetching into one folder).

    The lock is on the directory itself, so no lock file is left behind; fetches into one directory
    take turns, which costs little since they share the network anyway.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


_README_COLUMNS = ("File", "Role", "Profile", "Model", "Size", "SHA-256", "Source")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _readme_rows(readme: Path) -> dict[str, list[str]]:
    """The table rows of an existing README, keyed by file name, cells kept as written."""
    if not readme.is_file():
        return {}
    rows: dict[str, list[str]] = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]]
        if (
            len(cells) != len(_README_COLUMNS)
            or cells[0] == _README_COLUMNS[0]
            or set(cells[0]) <= set("-: ")
        ):
            continue
        rows[cells[0].replace("\\|", "|")] = cells
    return rows


def write_models_readme(
    models_dir: Path, results: Mapping[str, FetchResult], specs: Mapping[str, ModelSpec]
) -> Path:
    """Write `models_dir/README.md`: a table of the model files, sizes, sha256 and sources.

    `results` and `specs` share keys (the roles). Rows already in the README are kept while their file
    is still in `models_dir`, so fetching one role does not erase the other's row.
    """
    readme = models_dir / "README.md"
    with models_dir_lock(models_dir):
        rows = {name: cells for name, cells in _readme_rows(readme).items() if (models_dir / name).is_file()}
        for key, result in results.items():
            spec = specs[key]
            size = f"{result.size_bytes} bytes ({result.size_bytes / 1e6:.1f} MB)"
            values = (result.path.name, spec.role, spec.profile, spec.name, size, result.sha256, spec.source)
            rows[result.path.name] = [_cell(v) for v in values]
        _write_table(readme, rows)
    return readme


def _write_table(readme: Path, rows: Mapping[str, list[str]]) -> None:
    lines = [
        "# Model files",
        "",
        "Fetched and verified by athena-assets (`python -m resources.models.fetch`, or the",
        "`*_model_file` assets in Dagster) from the sources in `resources/models/models.toml`.",
        "Check a file with `sha256sum <file>` against the table.",
        "",
        "| " + " | ".join(_README_COLUMNS) + " |",
        "|" + "---|" * len(_README_COLUMNS),
        *("| " + " | ".join(rows[name]) + " |" for name in sorted(rows)),
    ]
    scratch = readme.with_name(f".README.md.{os.getpid()}")
    scratch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scratch.replace(readme)  # readers never see a half-written table


def _describe(done: int, total: int | None, rate: float) -> str:
    if total:
        return f"{100 * done / total:5.1f}% {done / 1e6:.1f}/{total / 1e6:.1f} MB, {rate:.1f} MB/s"
    return f"{done / 1e6:.1f} MB, {rate:.1f} MB/s"


def _progress_reporter(emit: Callable[[int, int | None, float], None], every_s: float) -> Progress:
    """A progress callback that calls `emit(done, total, MB/s)` at most every `every_s`, and at the end."""
    started = time.monotonic()
    last, first_done = float("-inf"), None

    def report(done: int, total: int | None) -> None:
        nonlocal last, first_done
        now = time.monotonic()
        if first_done is None or done < first_done:
            first_done = done  # measure the rate from where this transfer (re)started
        finished = total is not None and done >= total
        if now - last < every_s and not finished:
            return
        last = now
        emit(done, total, (done - first_done) / 1e6 / max(now - started, 1e-6))

    return report


def terminal_progress(label: str = "") -> Progress:
    """A progress callback drawing a bar on stderr when it is a terminal (a no-op otherwise)."""
    stream = sys.stderr
    if not stream.isatty():
        return lambda done, total: None

    def draw(done: int, total: int | None, rate: float) -> None:
        filled = int(30 * done / total) if total else 0
        bar = f"[{'#' * filled}{'.' * (30 - filled)}] " if total else ""
        stream.write(f"\r{label} {bar}{_describe(done, total, rate)}\033[K")
        if total is not None and done >= total:
            stream.write("\n")
        stream.flush()

    return _progress_reporter(draw, every_s=0.1)


def logging_progress(log: Callable[[str], None], every_s: float = 5.0, label: str = "") -> Progress:
    """A progress callback that sends a line to `log` (e.g. `context.log.info`) every `every_s` seconds."""
    prefix = f"{label}: " if label else ""
    return _progress_reporter(
        lambda done, total, rate: log(f"{prefix}{_describe(done, total, rate)}"), every_s
    )
