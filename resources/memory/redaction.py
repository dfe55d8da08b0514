"""Secrets out of the memory: every event line is redacted before anything keeps it.

A coding assistant's memory is full of things that must never be stored or embedded: keys pasted into a
terminal, database URLs with passwords, tokens in stack traces. Each is replaced by a typed placeholder,
`[REDACTED:<kind>]`, before the event reaches the inbox copy, the table, the dead letters or a prompt,
so the original is kept nowhere.

Detection is Yelp's `detect-secrets` for the formats it knows (AWS, GitHub, GitLab, Slack, Stripe,
Twilio, JWTs, private-key headers, passwords in URLs, ...), with its high-entropy plugins left out: on
prose they flag every other word. What it misses in prose is added here: `NAME=value` and
`password: value` with a secret-looking value next to a word like key, token, secret or password,
`Bearer` headers, newer API-key formats (OpenAI `sk-...`, Anthropic, Hugging Face, Google), whole
private-key blocks. E-mail addresses and phone numbers are masked too unless `mask_contacts` is off.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from detect_secrets.core.scan import scan_line
from detect_secrets.settings import (
    cache_bust,
    configure_settings_from_baseline,
    default_settings,
    get_settings,
)

PLACEHOLDER = "[REDACTED:{}]"
PLACEHOLDER_PREFIX = "[REDACTED:"

# detect-secrets' plugins that flag ordinary words in prose (eager entropy search) or public facts.
_NOISY_PLUGINS = {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}
# detect-secrets' secret types, as placeholder kinds.
_KINDS = {
    "Basic Auth Credentials": "password-in-url",
    "Secret Keyword": "secret",
    "JSON Web Token": "jwt",
}
# A run of characters a token is made of: a match is widened to the whole token it sits in (a detector
# may match only a token's prefix, e.g. GitHub's "ghp").
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-./+=~]*")

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----", re.S
)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("bearer-token", re.compile(r"(?i)(?P<keep>\bbearer\s+)[A-Za-z0-9._~+/=-]{16,}")),
    (
        "api-key",
        re.compile(
            r"(?P<keep>)\b(?:sk-(?:proj-|ant-(?:api\d{2}-)?|svcacct-)?[A-Za-z0-9_-]{20,}"
            r"|hf_[A-Za-z0-9]{30,}|AIza[0-9A-Za-z_-]{35})"
        ),
    ),
)
# `NAME=value`, `password: value`, `the token is value`: a secret word, then a value that looks like a
# secret (8+ characters mixing letters with digits or symbols; plain words are kept).
_SENSITIVE_NAMES = (
    r"(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?|auth)"
)
_SENSITIVE_NAME = re.compile(rf"(?i){_SENSITIVE_NAMES}")
_KEYWORD_VALUE = re.compile(
    rf"(?i)\b[A-Za-z0-9_.-]*{_SENSITIVE_NAMES}[A-Za-z0-9_.-]*[\"']?(?:\s*[:=]|\s+(?:is|was)\b\s*:?)\s*[\"']?"
    r"(?P<value>[^\s\"',;)]{8,})"
)
_CONTACTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Not git@host: an SSH remote names a server, not a person.
    (
        "email",
        re.compile(
            r"(?<![\w.+-])(?!git@)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
        ),
    ),
    (
        "phone",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,3}"
            r"|\(\d{3}\)\s?\d{3}[-.]\d{4}|\d{3}[-.]\d{3}[-.]\d{4})(?![\w])"
        ),
    ),
)


_PLACEHOLDER_KIND = re.compile(r"\[REDACTED:([a-z0-9-]+)\]")


def redaction_counts(events: Iterable[Any]) -> Counter[str]:
    """Placeholders by kind in the contents and metadata of `events` (anything with `content` and
    `metadata`): what was redacted, counted where it ended up (an inbox copy is already redacted)."""
    counts: Counter[str] = Counter()
    for event in events:
        text = event.content + json.dumps(event.metadata, ensure_ascii=False)
        counts.update(_PLACEHOLDER_KIND.findall(text))
    return counts


_configure_lock = threading.Lock()
_configured: list[bool] = []  # set once detect-secrets is configured (a list: no `global` needed)


def _configure_detectors() -> None:
    """Point detect-secrets' process-wide settings at the plugins used here, once: entering its
    `transient_settings` for every string cost more than the scanning itself (it clears its caches)."""
    with _configure_lock:
        if _configured:
            return
        with default_settings():
            plugins = [name for name in get_settings().plugins if name not in _NOISY_PLUGINS]
        cache_bust()
        configure_settings_from_baseline({"plugins_used": [{"name": name} for name in plugins]})
        _configured.append(True)


def _looks_secret(value: str) -> bool:
    """A value with letters and digits or symbols: `hunter2`-like, not a plain word or a number."""
    has_letter = any(c.isalpha() for c in value)
    has_other = any(c.isdigit() or not c.isalnum() for c in value)
    return has_letter and has_other and not value.startswith(PLACEHOLDER_PREFIX)


@dataclass
class Redaction:
    """Redacted text and how many secrets of each kind were replaced."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """How many secrets were replaced."""
        return sum(self.counts.values())


# Raised when the rules change, so text redacted by older rules is redacted again when it is read.
REDACTION_RULES_VERSION = "1"


class Redactor:
    """Replaces secrets (and, by default, e-mail addresses and phone numbers) with typed placeholders."""

    def __init__(self, mask_contacts: bool = True) -> None:
        self.mask_contacts = mask_contacts
        _configure_detectors()

    @property
    def version(self) -> str:
        """What text redacted by this redactor is redacted against: the rules and the contacts choice."""
        return f"{REDACTION_RULES_VERSION}:{'contacts' if self.mask_contacts else 'secrets'}"

    def redact(self, text: str) -> Redaction:
        """`text` with every secret found replaced by `[REDACTED:<kind>]`."""
        counts: Counter[str] = Counter()

        def replace(kind: str) -> str:
            counts[kind] += 1
            return PLACEHOLDER.format(kind)

        text = _PRIVATE_KEY_BLOCK.sub(lambda _: replace("private-key"), text)
        spans = self._detected(text)
        for start, end, kind in sorted(spans, reverse=True):
            text = text[:start] + replace(kind) + text[end:]
        for kind, pattern in _PATTERNS:
            text = pattern.sub(lambda match, kind=kind: match.group("keep") + replace(kind), text)
        text = _KEYWORD_VALUE.sub(lambda match: self._keyword(match, replace), text)
        if self.mask_contacts:
            for kind, pattern in _CONTACTS:
                text = pattern.sub(lambda _, kind=kind: replace(kind), text)
        return Redaction(text, counts)

    def _detected(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, kind) spans of what detect-secrets finds, widened to whole tokens
        (except a password in a URL, which ends at the `@`)."""
        spans: list[tuple[int, int, str]] = []
        offset = 0
        for line in text.splitlines(keepends=True):
            # Nothing shorter than 8 characters is a secret detect-secrets knows; skip its set-up.
            for secret in scan_line(line) if len(line.strip()) >= 8 else ():
                kind = _KINDS.get(secret.type, secret.type.lower().replace(" ", "-"))
                for found in re.finditer(re.escape(secret.secret_value or ""), line):
                    start, end = found.span()
                    if start == end:
                        continue
                    if kind != "password-in-url":
                        while start > 0 and _TOKEN_CHARS.fullmatch(line[start - 1]):
                            start -= 1
                        end += len(_TOKEN_CHARS.match(line, end).group(0))
                    spans.append((offset + start, offset + end, kind))
            offset += len(line)
        merged: list[tuple[int, int, str]] = []
        for start, end, kind in sorted(spans):
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end), merged[-1][2])
            else:
                merged.append((start, end, kind))
        return merged

    @staticmethod
    def _keyword(match: re.Match[str], replace: Callable[[str], str]) -> str:
        value = match.group("value")
        if not _looks_secret(value):
            return match.group(0)
        return match.group(0)[: match.start("value") - match.start()] + replace("secret")

    def redact_record(self, record: Any) -> tuple[Any, Counter[str]]:
        """A parsed JSON value with every string in it redacted (keys are kept as they are)."""
        counts: Counter[str] = Counter()

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                redaction = self.redact(value)
                counts.update(redaction.counts)
                return redaction.text
            if isinstance(value, list):
                return [walk(item) for item in value]
            if isinstance(value, dict):
                return {key: secret_field(key, item) or walk(item) for key, item in value.items()}
            return value

        def secret_field(key: str, item: Any) -> str | None:
            # {"DB_PASSWORD": "hunter2hunter2!"}: the name says what the value is.
            named = _SENSITIVE_NAME.search(key) is not None
            if named and isinstance(item, str) and len(item) >= 8 and _looks_secret(item):
                counts["secret"] += 1
                return PLACEHOLDER.format("secret")
            return None

        return walk(record), counts

    def redact_line(self, raw: bytes) -> tuple[bytes, Counter[str]]:
        """One line of an event file with its secrets replaced: the strings of a JSON object, or the
        line as text when it is not one (it will be a dead letter, which must not keep the secret
        either). A line without secrets comes back byte for byte."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            redacted, counts = self.redact_record(record)
            if not counts:
                return raw, counts
            return json.dumps(redacted, ensure_ascii=False).encode("utf-8"), counts
        redaction = self.redact(text)
        if not redaction.counts:
            return raw, redaction.counts
        return redaction.text.encode("utf-8"), redaction.counts

    def redact_file(self, data: bytes) -> tuple[bytes, Counter[str]]:
        """An event file (JSON Lines) with every line redacted; line breaks are kept."""
        counts: Counter[str] = Counter()
        lines = []
        for line in data.split(b"\n"):
            body, ending = (line[:-1], b"\r") if line.endswith(b"\r") else (line, b"")
            redacted, found = self.redact_line(body) if body.strip() else (body, Counter())
            counts.update(found)
            lines.append(redacted + ending)
        return b"\n".join(lines), counts
