"""What the inbox holds, read without parsing an event file and without Dagster: its files, and for each
the content sha256 and events per day its last parse recorded in `.index/` (`InboxResource` writes
them). `athena backfill` reads these to learn that a range has nothing new before importing Dagster."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

INDEX_DIR = ".index"


@dataclass(frozen=True)
class InboxFile:
    """A file in the inbox: where it is and when it arrived (ns since the epoch)."""

    path: Path
    mtime_ns: int


@dataclass(frozen=True)
class InboxIndexEntry:
    """An inbox file's content sha256 and how many of its valid events fall on each UTC day."""

    sha256: str
    per_day: Mapping[date, int]

    @property
    def days(self) -> frozenset[date]:
        """The days of its valid events."""
        return frozenset(self.per_day)


def stat_key(path: Path) -> dict[str, int]:
    """What identifies a version of a file without reading it: its size and modification time."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def index_sidecar(directory: Path, path: Path) -> Path:
    """Where the index of inbox file `path` is kept."""
    return directory / INDEX_DIR / f"{path.name}.json"


def inbox_files(directory: Path) -> list[InboxFile]:
    """Every inbox file, oldest arrival first (ties broken by name, so the order is stable)."""
    found = [InboxFile(path, path.stat().st_mtime_ns) for path in directory.glob("*.jsonl")]
    return sorted(found, key=lambda item: (item.mtime_ns, item.path.name))


def read_index(directory: Path, path: Path) -> InboxIndexEntry | None:
    """The content sha256 of an inbox file and its events per day, as its last parse recorded them
    (keyed by size and modification time: a remembered-events file grows); None when it was not parsed
    since it last changed, or by a version that kept no counts. Reads no event file."""
    try:
        recorded = json.loads(index_sidecar(directory, path).read_text())
        if {name: recorded[name] for name in ("size", "mtime_ns")} == stat_key(path):
            per_day = {date.fromisoformat(day): int(n) for day, n in recorded["per_day"].items()}
            return InboxIndexEntry(recorded["sha256"], per_day)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def event_count(directory: Path, first: date, last: date) -> int:
    """About how many events of the days `first`..`last` the inbox holds (what sizes a backfill's runs):
    counted per day by each file's index, or all its non-blank lines when it was not parsed since it last
    changed (an over-count, never an under-count)."""
    if last < first:
        return 0
    total = 0
    for item in inbox_files(directory):
        entry = read_index(directory, item.path)
        if entry is not None:
            total += sum(n for day, n in entry.per_day.items() if first <= day <= last)
        else:
            with item.path.open("rb") as lines:
                total += sum(1 for line in lines if line.strip())
    return total
