"""A GGUF file's header: what model it claims to be, read before the file is used.

A model that ships inside a third party's packages is pinned by size and sha256 in the manifest; the
header check says, in words a user can act on, when the bytes are not the model the manifest names
(another architecture, or no chat template for a model asked with a chat prompt). Only the metadata
is read (GGUF v2 and v3: magic, version, counts, then typed key/value pairs), never the tensors.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"GGUF"
# GGUF value types: their struct format, or None for the variable-length ones (string 8, array 9).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFHeaderError(ValueError):
    """The file is not a GGUF file, or its header cannot be read."""


@dataclass(frozen=True)
class GGUFHeader:
    """What the header says: the GGUF version, the architecture, the model's name, and whether it
    carries a chat template (an instruction model's)."""

    version: int
    architecture: str | None
    name: str | None
    has_chat_template: bool


def _read(fh: BinaryIO, size: int) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise GGUFHeaderError("the header ends early (a truncated file?)")
    return data


def _string(fh: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _read(fh, 8))
    return _read(fh, length).decode("utf-8", errors="replace")


def _value(fh: BinaryIO, kind: int, keep: bool) -> object:
    if kind in _SCALARS:
        fmt = "<" + _SCALARS[kind]
        return struct.unpack(fmt, _read(fh, struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _string(fh)
    if kind == _ARRAY:
        item, count = struct.unpack("<IQ", _read(fh, 12))
        if item in _SCALARS and not keep:
            fh.seek(count * struct.calcsize("<" + _SCALARS[item]), 1)  # a vocabulary's scores: skipped
            return None
        return [_value(fh, item, keep) for _ in range(count)]
    raise GGUFHeaderError(f"unknown GGUF value type {kind}")


def read_gguf_header(path: Path) -> GGUFHeader:
    """The header of the GGUF file at `path`; a file that is not GGUF is a GGUFHeaderError."""
    wanted = {"general.architecture", "general.name"}
    found: dict[str, object] = {}
    has_template = False
    with path.open("rb") as fh:
        if fh.read(4) != _MAGIC:
            raise GGUFHeaderError(f"{path} is not a GGUF file (no GGUF magic at its start)")
        version, _tensors, pairs = struct.unpack("<IQQ", _read(fh, 20))
        if version not in (2, 3):
            raise GGUFHeaderError(f"{path}: GGUF version {version} is not supported (2 or 3)")
        for _ in range(pairs):
            key = _string(fh)
            (kind,) = struct.unpack("<I", _read(fh, 4))
            value = _value(fh, kind, keep=key in wanted)
            if key in wanted:
                found[key] = value
            has_template = has_template or key == "tokenizer.chat_template"
    architecture, name = found.get("general.architecture"), found.get("general.name")
    return GGUFHeader(
        version,
        architecture if isinstance(architecture, str) else None,
        name if isinstance(name, str) else None,
        has_template,
    )
