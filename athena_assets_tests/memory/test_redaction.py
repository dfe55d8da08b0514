"""Secrets found and replaced by typed placeholders, look-alikes kept (pure logic, no stack)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from resources.memory.inbox import InboxResource
from resources.memory.redaction import Redactor

# (text, the secret that must go, its placeholder kind)
SECRETS = [
    ("exported AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE today", "AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
    ("psql postgresql://athena:hunter2secret@db.internal/athena failed", "hunter2secret", "password-in-url"),
    ("curl -H 'Authorization: Bearer abcDEF0123456789ghiJKL_mnop' https://api.internal",
     "abcDEF0123456789ghiJKL_mnop", "bearer-token"),
    ("set OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ in .env",
     "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ", "api-key"),
    ("the ANTHROPIC key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 expired",
     "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt", "api-key"),
    ("github token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB leaked in CI",
     "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "github-token"),
    ("slack bot xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx posted",
     "xoxb-123456789012-1234567890123", "slack-token"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc charged twice", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
     "stripe-access-key"),
    ("my password is: Tr0ub4dor&3xyzQ for the staging box", "Tr0ub4dor&3xyzQ", "secret"),
    ("DB_PASSWORD=correct-horse-battery-staple9 in compose", "correct-horse-battery-staple9", "secret"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U no",
     "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
    ("key file:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtP1x\n-----END RSA PRIVATE KEY-----\nend",
     "MIIEowIBAAKCAQEAtP1x", "private-key"),
    ("mail jane.doe@example.com about it", "jane.doe@example.com", "email"),
    ("call +44 20 7946 0958 after six", "7946 0958", "phone"),
]  # fmt: skip
LOOK_ALIKES = [
    "the token budget is 4096 and the key idea is chunking",
    "password reset emails go to the on-call rota",
    "Set max_tokens=512; the token is refreshed hourly",
    "the commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
    "ran at 2026-11-27 14:10 on port 5432, version 1.2.3",
    "git remote git@github.com:org/repo.git",
    "the secret to fast recall is the HNSW index",
]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    """One redactor for the module (its detector setup is shared)."""
    return Redactor()


@pytest.mark.parametrize(("text", "secret", "kind"), SECRETS)
def test_each_kind_of_secret_is_replaced_by_its_placeholder(
    redactor: Redactor, text: str, secret: str, kind: str
) -> None:
    redaction = redactor.redact(text)
    assert secret not in redaction.text
    assert f"[REDACTED:{kind}]" in redaction.text
    assert redaction.counts[kind] >= 1
    # Everything around the secret stays.
    assert text.split()[-1] in redaction.text


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_stay(redactor: Redactor, text: str) -> None:
    redaction = redactor.redact(text)
    assert (redaction.text, redaction.total) == (text, 0)


def test_contacts_are_kept_when_masking_is_off() -> None:
    text = "mail jane.doe@example.com or call +44 20 7946 0958; key AKIAIOSFODNN7EXAMPLE"
    redaction = Redactor(mask_contacts=False).redact(text)
    assert "jane.doe@example.com" in redaction.text and "+44 20 7946 0958" in redaction.text
    assert "AKIAIOSFODNN7EXAMPLE" not in redaction.text


def test_an_event_line_is_redacted_in_every_string_and_a_clean_line_is_untouched(redactor: Redactor) -> None:
    line = json.dumps(
        {
            "id": "e1",
            "occurred_at": "2026-11-01T10:00:00Z",
            "content": "deploy used AKIAIOSFODNN7EXAMPLE",
            "metadata": {
                "env": {"DB_PASSWORD": "hunter2hunter2!"},
                "tags": ["Bearer abcDEF0123456789ghiJKL"],
            },
        }
    ).encode()
    redacted, counts = redactor.redact_line(line)
    record = json.loads(redacted)
    assert record["content"] == "deploy used [REDACTED:aws-access-key]"
    assert "hunter2hunter2!" not in redacted.decode() and "abcDEF0123456789ghiJKL" not in redacted.decode()
    assert record["id"] == "e1" and record["occurred_at"] == "2026-11-01T10:00:00Z"
    assert sum(counts.values()) == 3
    clean = b'{"id": "e2", "occurred_at": "2026-11-01T10:00:00Z", "content": "nothing to hide"}'
    assert redactor.redact_line(clean) == (clean, {})
    # A line that is not JSON (a future dead letter) is redacted as text.
    broken, found = redactor.redact_line(
        b'{"content": "token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", oops'
    )
    assert b"ghp_" not in broken and found["github-token"] == 1


class _CountingRedactor(Redactor):
    """A redactor that counts the lines it is asked to redact."""

    lines = 0

    def redact_line(self, line: bytes) -> tuple[bytes, Counter[str]]:
        type(self).lines += 1
        return super().redact_line(line)


def _event_line(number: int, content: str) -> str:
    return json.dumps({"id": f"e{number}", "occurred_at": "2026-11-02T10:00:00Z", "content": content})


def test_a_file_the_inbox_wrote_redacted_is_not_redacted_again_until_it_changes(tmp_path: Path) -> None:
    inbox = InboxResource(inbox_dir=str(tmp_path / "inbox"), history_start="2026-01-01")
    inbox._redactor = _CountingRedactor()
    source = tmp_path / "events.jsonl"
    source.write_text(
        "\n".join(_event_line(n, f"deploy key AKIAIOSFODNN7EXAMPLE{n}") for n in range(3)) + "\n"
    )
    stored = inbox.ingest(source).stored_as
    assert _CountingRedactor.lines == 3 and "AKIA" not in stored.read_text()

    parsed = inbox.parse(stored)
    assert _CountingRedactor.lines == 3, "its lines were redacted when it was written"
    assert all("[REDACTED:" in event.content for event in parsed.events)
    assert inbox.event_count(date(2026, 11, 2), date(2026, 11, 2)) == 3
    assert inbox.event_count(date(2026, 11, 3), date(2026, 11, 9)) == 0, "counted per day"

    # Changed behind the inbox's back (or written by an older version): every line is redacted again.
    with stored.open("a") as out:
        out.write(_event_line(9, "token ghp_" + "a1B2c3D4e5" * 4) + "\n")
    assert inbox.event_count(date(2026, 11, 3), date(2026, 11, 9)) == 4, "not indexed now: every line"
    parsed = inbox.parse(stored)
    assert _CountingRedactor.lines == 3 + 4
    assert all("ghp_" not in event.content for event in parsed.events)
    assert inbox.event_count(date(2026, 11, 2), date(2026, 11, 2)) == 4, "indexed again by that parse"
