"""Why a part of the local stack died: PostgreSQL backends and llama-servers killed by a signal.

A client only sees "server closed the connection unexpectedly" or "connection refused"; the reason
(SIGILL from an instruction the CPU lacks, the out-of-memory killer's SIGKILL) is in the part's log.
These functions read it back, so `athena` can say what happened instead of a generic error.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from resources.stack.cpu import describe_vector_extensions

# Written by the postmaster (log_timezone=UTC, see postgres_server): the next DETAIL line names the query.
_PG_SIGNAL = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC \[\d+\] LOG:\s+(?P<process>.+?) "
    r"\(PID (?P<pid>\d+)\) was terminated by signal (?P<signal>\d+)"
)
_PG_DETAIL = re.compile(r"DETAIL:\s+Failed process was running: (?P<query>.*)$")
# Written by the shell that starts each llama-server (see llama_server.server_command).
LLAMA_EXIT_PREFIX = "[athena] llama-server exited with status"
_LLAMA_EXIT = re.compile(r"^\[athena\] llama-server exited with status (?P<status>\d+) at (?P<when>\d+)$")

_HINTS = {
    signal.SIGILL: "this usually means a binary built for a newer CPU than this one ({cpu})",
    signal.SIGKILL: "often the kernel's out-of-memory killer, or someone ran kill -9",
    signal.SIGSEGV: "a crash inside the program; its log may say more",
    signal.SIGBUS: "often a full disk or a truncated model file",
}


@dataclass(frozen=True)
class Crash:
    """One process of the stack killed by a signal, as its log tells it."""

    part: str
    signal: int
    when: datetime
    doing: str
    log_path: Path

    def message(self) -> str:
        """One sentence a user can act on."""
        try:
            name = signal.Signals(self.signal).name
            description = signal.strsignal(self.signal) or name
        except ValueError:
            name, description = f"signal {self.signal}", "unknown signal"
        hint = _HINTS.get(self.signal, "see the log").format(cpu=describe_vector_extensions())
        doing = f" while running {self.doing}" if self.doing else ""
        return (
            f"the {self.part} was killed by signal {self.signal} ({name}: {description.lower()}){doing}; "
            f"{hint}. Log: {self.log_path}"
        )


def _tail(path: Path, max_bytes: int = 256_000) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - max_bytes))
            return handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []


def postgres_crashes(log_path: Path, since: datetime) -> list[Crash]:
    """PostgreSQL processes killed by a signal at or after `since`, from the server log."""
    lines = _tail(log_path)
    crashes = []
    for index, line in enumerate(lines):
        match = _PG_SIGNAL.match(line)
        if match is None:
            continue
        when = datetime.fromisoformat(match["when"]).replace(tzinfo=UTC)
        if when < since:
            continue
        detail = _PG_DETAIL.search(lines[index + 1]) if index + 1 < len(lines) else None
        query = detail["query"].strip() if detail else ""
        crashes.append(
            Crash(
                part=f"PostgreSQL {match['process']}",
                signal=int(match["signal"]),
                when=when,
                doing=query[:160] + ("..." if len(query) > 160 else ""),
                log_path=log_path,
            )
        )
    return crashes


def llama_server_crash(name: str, log_path: Path, since: datetime) -> Crash | None:
    """The llama-server `name` if it ended by a signal at or after `since` (exit status 128 + N)."""
    for line in reversed(_tail(log_path, 16_000)):
        match = _LLAMA_EXIT.match(line.strip())
        if match is None:
            continue
        status = int(match["status"])
        when = datetime.fromtimestamp(int(match["when"]), UTC)
        # SIGTERM and SIGINT are how `stack down` and Ctrl-C stop a server: not crashes.
        if status - 128 in (0, signal.SIGTERM, signal.SIGINT) or status < 128:
            return None
        if when < since.replace(microsecond=0):
            return None
        return Crash(part=f"llama-server {name}", signal=status - 128, when=when, doing="", log_path=log_path)
    return None
