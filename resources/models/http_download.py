"""Resumable HTTP(S) downloads into a `.part` file: Range resume, retries with backoff, disk-space check.

The `.part` file and a sha256 of exactly its bytes are kept in step, so a resumed download hashes the
prefix already on disk once and then only the new bytes. The base `FetchError` and the two errors this
layer raises live here so that this module imports nothing from `resources.models.fetch`, which
re-exports them as part of its public API.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

Progress = Callable[[int, int | None], None]
DiskFree = Callable[[Path], int] | None
CHUNK_BYTES = 1024 * 1024
_CONTENT_RANGE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")


class FetchError(RuntimeError):
    """A model file could not be fetched; the message names the URL or file and what to do."""


class DownloadError(FetchError):
    """The server was unreachable or answered with an error, after the allowed retries."""


class InsufficientDiskSpaceError(FetchError):
    """The models directory's file system has less free space than the file needs."""


class _RetryableError(Exception):
    """A failure worth another attempt: connection or timeout, 5xx, a body cut short."""


@dataclass(frozen=True)
class PartResult:
    """What ended up in the `.part` file and how much of it was transferred by this call."""

    sha256: str
    size_bytes: int
    downloaded_bytes: int
    resumed_from: int


@dataclass(frozen=True)
class FetchResult:
    """A model file in place and verified, and what it took to get it there."""

    path: Path
    size_bytes: int
    sha256: str
    source: str
    seconds: float
    mb_per_s: float
    downloaded_bytes: int
    resumed_from: int
    reused: bool


def ensure_disk_space(directory: Path, needed: int, disk_free: DiskFree = None) -> None:
    """Raise `InsufficientDiskSpaceError` when `directory` has fewer than `needed` bytes free."""
    free = disk_free(directory) if disk_free is not None else shutil.disk_usage(directory).free
    if needed > free:
        raise InsufficientDiskSpaceError(
            f"{directory} needs {needed} bytes free for this model but has {free} bytes free; "
            "free some space or point ATHENA_MODELS_DIR at a larger disk"
        )


class _PartFile:
    """The `.part` file and a running sha256 of exactly the bytes in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hasher = hashlib.sha256()
        self.size = 0
        self.appended = 0  # bytes written by this object: what was transferred, even by failed attempts
        self.sync()

    def sync(self) -> None:
        """Re-hash the file if it is not the size we last wrote (e.g. a write failed half-way)."""
        on_disk = self.path.stat().st_size if self.path.exists() else 0
        if on_disk == self.size:
            return
        self.hasher, self.size = hashlib.sha256(), 0
        with self.path.open("rb") as fh:
            while block := fh.read(CHUNK_BYTES):
                self.hasher.update(block)
                self.size += len(block)

    def reset(self) -> None:
        """Throw the partial content away and start again from byte 0."""
        self.path.unlink(missing_ok=True)
        self.hasher, self.size = hashlib.sha256(), 0

    def append(self, chunks: Iterable[bytes], progress: Progress | None, total: int | None) -> None:
        """Append `chunks`, hashing as they are written."""
        try:
            with self.path.open("ab") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    self.hasher.update(chunk)
                    self.size += len(chunk)
                    self.appended += len(chunk)
                    if progress is not None:
                        progress(self.size, total)
        except OSError as err:
            raise FetchError(f"cannot write {self.path}: {err}; check free space and permissions") from err


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from a Content-Range header; None where it does not say."""
    match = _CONTENT_RANGE.match((value or "").strip())
    if not match:
        return None, None
    first, _, total = match.groups()
    return (int(first) if first else None), (int(total) if total != "*" else None)


class _Transfer:
    """One download: the request loop state shared by the attempts of a `download_to_part` call."""

    def __init__(
        self,
        url: str,
        part: _PartFile,
        expected_size: int | None,
        progress: Progress | None,
        disk_free: DiskFree,
    ) -> None:
        self.url = url
        self.part = part
        self.expected_size = expected_size
        self.progress = progress
        self.disk_free = disk_free
        self.resumed_from = part.size

    def _start_over(self) -> None:
        self.part.reset()
        self.resumed_from = 0

    def attempt(self, client: httpx.Client) -> None:
        """One request for the bytes not yet in the `.part`; raises `_RetryableError` to try again."""
        self.part.sync()
        offset = self.part.size
        # identity: Range offsets count the bytes as sent, so they must not be content-decoded
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            with client.stream("GET", self.url, headers=headers) as response:
                total = self._check_response(response, offset)
                if response.status_code != 416:
                    # no chunk_size: httpx would hold back up to a chunk, lost if the connection drops
                    self.part.append(response.iter_raw(), self.progress, total)
        except httpx.TransportError as err:
            raise _RetryableError(f"{type(err).__name__}: {err}") from err
        if total is not None and self.part.size < total:
            raise _RetryableError(f"the connection ended after {self.part.size} of {total} bytes")

    def _check_response(self, response: httpx.Response, offset: int) -> int | None:
        """Accept the response (returning the full file size, if known) or raise why not."""
        status = response.status_code
        if status == 416 and offset:
            _, total = _content_range(response.headers.get("content-range"))
            if total == offset:
                return total  # the .part already holds the whole file; nothing left to read
            self._start_over()
            raise _RetryableError(f"the server refused to resume at byte {offset} (HTTP 416)")
        if status in {408, 429} or status >= 500:
            raise _RetryableError(f"HTTP {status} {response.reason_phrase}")
        if status not in {200, 206}:
            raise DownloadError(
                f"{self.url} answered HTTP {status} {response.reason_phrase}; check the source URL in "
                "models.toml and that the file is public"
            )
        if status == 206:
            first, total = _content_range(response.headers.get("content-range"))
            if first != offset:
                self._start_over()
                raise _RetryableError(f"asked for bytes from {offset}, the server sent them from {first}")
        else:
            if offset:
                self._start_over()  # the server ignored Range and sends the whole file again
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
        if total is not None and self.expected_size is not None and total != self.expected_size:
            raise DownloadError(
                f"{self.url} is {total} bytes but models.toml expects size_bytes = {self.expected_size}; "
                "check the URL, or update size_bytes and sha256 if the model changed on purpose"
            )
        if total is not None and self.expected_size is None:
            ensure_disk_space(self.part.path.parent, total - self.part.size, self.disk_free)
        if self.progress is not None:
            self.progress(self.part.size, total)
        return total


def download_to_part(
    url: str,
    part_path: Path,
    *,
    expected_size: int | None = None,
    progress: Progress | None = None,
    retries: int = 4,
    timeout_s: float = 60.0,
    backoff_s: float = 0.5,
    disk_free: DiskFree = None,
) -> PartResult:
    """Download `url` into `part_path`, resuming from the bytes already there.

    Connection errors, timeouts, 5xx answers and bodies cut short are retried up to `retries` times
    with exponential backoff and jitter, each retry resuming at the current `.part` size; other HTTP
    errors (404, 403, ...) fail at once. Raises `DownloadError` (naming the URL) or
    `InsufficientDiskSpaceError`; the partial `.part` is kept so the next call resumes.
    """
    part = _PartFile(part_path)
    if expected_size is not None and part.size > expected_size:
        part.reset()  # longer than the file can be: left over from another version of it
    if expected_size is not None:
        ensure_disk_space(part_path.parent, expected_size - part.size, disk_free)
    transfer = _Transfer(url, part, expected_size, progress, disk_free)
    if expected_size is None or part.size < expected_size:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(timeout_s)) as client:
            _with_retries(transfer, client, retries, backoff_s)
    return PartResult(
        sha256=part.hasher.hexdigest(),
        size_bytes=part.size,
        downloaded_bytes=part.appended,
        resumed_from=transfer.resumed_from,
    )


def _with_retries(transfer: _Transfer, client: httpx.Client, retries: int, backoff_s: float) -> None:
    for attempt in range(retries + 1):
        try:
            transfer.attempt(client)
            return
        except _RetryableError as err:
            if attempt == retries:
                raise DownloadError(
                    f"could not download {transfer.url} after {attempt + 1} attempt(s): {err}; check the "
                    f"network and the URL, then run again ({transfer.part.path.name} keeps the "
                    f"{transfer.part.size} bytes fetched so far and the next run resumes from there)"
                ) from err
            # jitter keeps parallel fetchers from retrying in lock step; not a security use of random
            time.sleep(backoff_s * 2**attempt * random.uniform(0.5, 1.5))  # noqa: S311
