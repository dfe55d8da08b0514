"""The inbox: event files accepted by `athena ingest`, stored by content, read by the pipeline.

Files are named after their content's sha256, so ingesting the same file twice stores it once and the
new-events sensor, keyed on that hash, starts no second run. Events an assistant remembers one at a
time (`remember`) go to one file per day, `remembered-<day>.jsonl`, rewritten whole under a lock and
fsynced before the call returns, so a crash leaves the old file or the new one, never half a line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.memory.event_files import ParsedFile, parse_event_bytes, parse_event_file
from resources.memory.event_line import Event
from resources.memory.inbox_index import (
    INDEX_DIR,
    InboxFile,
    InboxIndexEntry,
    event_count,
    inbox_files,
    index_sidecar,
    read_index,
    stat_key,
)
from resources.memory.redaction import Redactor

_HASH_CHARS = 16
_REMEMBER_LOCK = ".remember.lock"


@dataclass(frozen=True)
class IngestedFile:
    """What `InboxResource.ingest` made of one file: its parse, and where the inbox keeps it (None when
    it held no valid event) and whether that copy is new."""

    parsed: ParsedFile
    stored_as: Path | None
    is_new: bool


class InboxResource(dg.ConfigurableResource):
    """The inbox directory and the first day the partitions cover (earlier events are rejected)."""

    inbox_dir: str
    history_start: str
    redact_contacts: bool = Field(
        default=True, description="Mask e-mail addresses and phone numbers too (secrets always are)."
    )

    _redactor: Redactor | None = PrivateAttr(default=None)

    def redactor(self) -> Redactor:
        """The redactor every event line goes through before it is stored (made once: its detectors
        take a moment to set up)."""
        if self._redactor is None:
            self._redactor = Redactor(mask_contacts=self.redact_contacts)
        return self._redactor

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
        """Every inbox file, oldest arrival first (`inbox_index.inbox_files`)."""
        return inbox_files(self.directory())

    def index(self, path: Path) -> InboxIndexEntry | None:
        """The content sha256 of an inbox file and its events per day (`inbox_index.read_index`)."""
        return read_index(self.directory(), path)

    def event_count(self, first: date, last: date) -> int:
        """About how many events of the days `first`..`last` the inbox holds (`inbox_index.event_count`)."""
        return event_count(self.directory(), first, last)

    def parse(self, path: Path) -> ParsedFile:
        """Validate one event file: events before the partitions' start or after today are rejected.
        A file of the inbox gets its index entry (see `index`) from this same parse. Its lines are
        redacted unless the inbox wrote the file redacted by the same rules (`store`, `remember`) and
        it has not changed since: redaction is most of a parse's time, and a backfill re-reads files."""
        # Inbox files only (`*.jsonl`): not a user's file being ingested, nor remember's candidate line.
        in_inbox = path.suffix == ".jsonl" and path.parent.resolve() == self.directory().resolve()
        key = stat_key(path) if in_inbox else None  # before reading: a file growing meanwhile is re-read
        redacted = key is not None and self._redacted_as(path) == key
        parsed = parse_event_file(
            path,
            self.start,
            latest_day=datetime.now(UTC).date(),
            redactor=None if redacted else self.redactor(),
        )
        if key is not None:
            per_day = Counter(event.day.isoformat() for event in parsed.events)
            record = {"sha256": parsed.sha256, "per_day": dict(sorted(per_day.items()))}
            _write_sidecar(self._index_sidecar(path), key | record)
        return parsed

    def _index_sidecar(self, path: Path) -> Path:
        return index_sidecar(self.directory(), path)

    def _redaction_sidecar(self, path: Path) -> Path:
        return self.directory() / INDEX_DIR / f"{path.name}.redacted.json"

    def _mark_redacted(self, path: Path) -> None:
        """Record that the inbox wrote `path` redacted by the current rules, as it is now."""
        _write_sidecar(self._redaction_sidecar(path), stat_key(path) | {"rules": self.redactor().version})

    def _redacted_as(self, path: Path) -> dict[str, int] | None:
        """The size and mtime `path` had when the inbox wrote it redacted by the current rules, if it did."""
        try:
            recorded = json.loads(self._redaction_sidecar(path).read_text())
            if recorded["rules"] == self.redactor().version:
                return {"size": recorded["size"], "mtime_ns": recorded["mtime_ns"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def ingest(self, source: Path) -> IngestedFile:
        """Validate `source` and, when it holds a valid event, store it in the inbox under the hash of
        its content. The file is read, redacted and parsed once: the inbox keeps the redacted bytes the
        parse saw, never the original of a redacted line."""
        data = source.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        redacted, found = self.redactor().redact_file(data)
        parsed = parse_event_bytes(
            redacted, source, self.start, latest_day=datetime.now(UTC).date(), sha256=digest
        )
        parsed.redactions.update(found)
        if not parsed.events:
            return IngestedFile(parsed, None, is_new=False)
        target = self.directory() / f"{digest[:_HASH_CHARS]}-{source.stem}.jsonl"
        if target.exists():
            return IngestedFile(parsed, target, is_new=False)
        partial = target.with_suffix(".jsonl.part")
        partial.write_bytes(redacted)
        # The rename makes the file appear whole: the sensor never reads a half-copied file.
        partial.replace(target)
        self._mark_redacted(target)
        return IngestedFile(parsed, target, is_new=True)

    def remember(self, record: Mapping[str, Any]) -> Event:
        """Append one event, validated exactly as a line of an ingested file, to its day's remembered
        file, durably (written and fsynced before returning) and idempotently (an event whose id is
        already there is not written again). Raises ValueError with the validation's reason."""
        line = json.dumps(dict(record), ensure_ascii=False, sort_keys=True).encode()
        line = self.redactor().redact_line(line)[0] + b"\n"
        directory = self.directory()
        with _locked(directory / _REMEMBER_LOCK):
            event = self._validated(directory, line)
            target = directory / f"remembered-{event.day.isoformat()}.jsonl"
            existing = target.read_bytes() if target.exists() else b""
            # A file of an older version may hold lines written before redaction: it stays unmarked.
            marked = bool(existing) and self._redacted_as(target) == stat_key(target)
            if existing and event.id not in {known.id for known in self.parse(target).events}:
                _write_durably(target, existing.rstrip(b"\n") + b"\n" + line)
                if marked:
                    self._mark_redacted(target)
            elif not existing:
                _write_durably(target, line)
                self._mark_redacted(target)
            return next(known for known in self.parse(target).events if known.id == event.id)

    def _validated(self, directory: Path, line: bytes) -> Event:
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".part") as candidate:
            candidate.write(line)
            candidate.flush()
            parsed = self.parse(Path(candidate.name))
        if parsed.rejected:
            raise ValueError(parsed.rejected[0].reason)
        return parsed.events[0]


def _write_sidecar(sidecar: Path, record: Mapping[str, Any]) -> None:
    """Write `record` as JSON to `sidecar` whole: a reader sees the old record or the new, never half."""
    sidecar.parent.mkdir(exist_ok=True)
    partial = sidecar.with_suffix(".part")
    partial.write_text(json.dumps(record))
    partial.replace(sidecar)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if missing): two processes remembering at once
    take turns, so neither overwrites the other's event."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_durably(target: Path, data: bytes) -> None:
    """Replace `target` with `data`: written and fsynced beside it, renamed, the directory fsynced."""
    partial = target.with_suffix(".jsonl.part")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
