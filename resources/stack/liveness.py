"""Whether a recorded process id still names a running process.

`os.kill(pid, 0)` and `psutil.pid_exists` both say yes for a zombie: a process that has died but whose
parent has not collected it. A server killed outright (SIGKILL, the OOM killer) stays a zombie for as
long as its parent, often a supervisor or a CI harness that never reaps strangers, does not look.
"""

from __future__ import annotations

import time

import psutil


def process_runs(pid: int) -> bool:
    """True when `pid` is a live process (a zombie is not); True also when we may not inspect it."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait up to `timeout_s` for `pids` to end (a zombie has ended); returns those still running.

    `psutil.wait_procs` would wait out its whole timeout on a zombie that is not our child.
    """
    deadline = time.monotonic() + timeout_s
    while (running := [pid for pid in pids if process_runs(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running
