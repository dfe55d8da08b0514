"""The inbox: event files accepted by `athena ingest`, stored by content, read by the pipeline.

Files are named after their content's sha256, so ingesting the same file twice stores it once and the
new-events sensor, keyed on that hash, starts no second run.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from resources.memory.event_files import ParsedFile, parse_event_file

_HASH_CHARS = 16


@dataclass(frozen=True)
class InboxFile:
    """A file in the inbox: where it is and when it arrived (ns since the epoch)."""

    path: Path
    mtime_ns: int


class InboxResource(dg.ConfigurableResource):
    """The inbox directory and the first day the partitions cover (earlier events are rejected)."""

    inbox_dir: str
    history_start: str

    @property
    def start(self) -> date:
        """The first partition day."""
        return date.fromisoformat(self.history_start)

    def directory(self) -> Path:
        """The inbox directory, created on first use."""
        path = Path(self.inbox_dir).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def files(self) -> list[InboxFile]:
        """Every inbox file, oldest arrival first (ties broken by name, so the order is stable)."""
        found = []
        for path in self.directory().glob("*.jsonl"):
            stat = path.stat()
            found.append(InboxFile(path, stat.st_mtime_ns))
        return sorted(found, key=lambda item: (item.mtime_ns, item.path.name))

    def parse(self, path: Path) -> ParsedFile:
        """Validate one event file: events before the partitions' start or after today are rejected."""
        return parse_event_file(path, self.start, latest_day=datetime.now(UTC).date())

    def store(self, source: Path) -> tuple[Path, bool]:
        """Copy `source` into the inbox under its content hash; returns (path, whether it is new)."""
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:_HASH_CHARS]
        target = self.directory() / f"{digest}-{source.stem}.jsonl"
        if target.exists():
            return target, False
        partial = target.with_suffix(".jsonl.part")
        shutil.copyfile(source, partial)
        # The rename makes the file appear whole: the sensor never reads a half-copied file.
        partial.replace(target)
        return target, True
