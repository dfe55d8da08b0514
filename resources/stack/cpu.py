"""The CPU's vector extensions: what `athena stack status` and crash messages show next to each part.

The native parts (pgvector, llama-server) need AVX2; a binary that uses AVX-512 or AMX without checking
the CPU first dies with SIGILL where those are missing, so users need to see what their CPU has.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# The extensions that decide whether a native binary of this project can run here.
_RELEVANT = re.compile(r"^(sse4_2|avx|avx2|fma|f16c|bmi2|avx512\w*|amx\w*|avx_vnni)$")


@cache
def vector_extensions(cpuinfo: Path = CPUINFO) -> tuple[str, ...]:
    """The CPU's relevant vector extensions, in /proc/cpuinfo's order; empty where it cannot tell."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            return tuple(flag for flag in line.split(":", 1)[1].split() if _RELEVANT.match(flag))
    return ()


def describe_vector_extensions(flags: tuple[str, ...] | None = None) -> str:
    """A short summary such as "avx2 fma f16c, no avx512" (AVX-512's dozen flags folded into one)."""
    flags = vector_extensions() if flags is None else flags
    if not flags:
        return "unknown"
    avx512 = [flag for flag in flags if flag.startswith("avx512")]
    amx = [flag for flag in flags if flag.startswith("amx")]
    base = [flag for flag in flags if flag not in avx512 and flag not in amx]
    parts = [" ".join(base)]
    parts.append(f"avx512 ({len(avx512)} flags)" if avx512 else "no avx512")
    if amx:
        parts.append("amx")
    return ", ".join(parts)
