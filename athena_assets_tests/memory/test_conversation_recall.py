"""A chat log recalled as a user asks about it, on the real stack: a turn is embedded with its date and
speaker, so a question naming a person finds that person's turn even when another said the same words;
changing the embedding context embeds every event again under a new key and keeps the old vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from athena_assets_tests.helpers import StackHandle, run_athena, write_jsonl

SOURCE = "chat-maya-tom"
SAID_TWICE = "I ran my first half marathon yesterday, my legs are still shaking!"
# Two sessions of a chat; the same sentence from both friends. Maya's id sorts first: without the
# speaker in what was embedded, the two would tie and Maya's would come first.
SESSIONS = {
    "chat-a": ("2026-09-14", (
        ("Tom", "Hey Maya! How have you been?"),
        ("Maya", "Pretty good, thanks. Busy week, but nothing dramatic."),
        ("Tom", "Same here, I can't wait for the weekend."),
        ("Maya", SAID_TWICE),
        ("Tom", "Oh wow, that's amazing! How long did it take?"),
        ("Maya", "Just under two hours, I was so happy."),
        ("Tom", "Did you see the news about the bridge closing? Traffic is a mess."),
        ("Maya", "Yes, my bus took forever this morning."),
        ("Tom", "Let's catch up again soon, okay?"),
        ("Maya", "Talk soon! Take care."),
    )),
    "chat-b": ("2026-10-20", (
        ("Maya", "Hey Tom! How was your week?"),
        ("Tom", "Honestly a bit tiring, work has been a lot lately."),
        ("Maya", "I totally get that, it happens to me all the time."),
        ("Tom", SAID_TWICE),
        ("Maya", "Haha, welcome to the club. Was the weather okay?"),
        ("Tom", "It rained the whole time, but I didn't care."),
        ("Maya", "I've been trying to sleep more and look at my phone less."),
        ("Tom", "Good idea, I should do the same."),
        ("Maya", "We should plan something together this month."),
        ("Tom", "Definitely, I'll text you on Sunday."),
    )),
}  # fmt: skip
TURNS = [
    (f"{session}-{number:02d}", f"{day}T18:{2 * number:02d}:00Z", speaker, content)
    for session, (day, turns) in SESSIONS.items()
    for number, (speaker, content) in enumerate(turns)
]


def _recall(stack: StackHandle, query: str, *args: str) -> list[dict]:
    result = run_athena(stack, "recall", query, "--source", SOURCE, "-k", "3", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_question_naming_a_speaker_finds_that_speakers_turn(stack: StackHandle, tmp_path: Path) -> None:
    rows = [
        {"id": i, "occurred_at": at, "content": content, "source": SOURCE, "session_id": i[:6],
         "event_type": "message", "metadata": {"speaker": speaker}}
        for i, at, speaker, content in TURNS
    ]  # fmt: skip
    ingested = run_athena(stack, "ingest", str(write_jsonl(tmp_path / "chat.jsonl", rows)))
    assert ingested.returncode == 0, ingested.stderr
    days = ("--from", "2026-09-14", "--to", "2026-10-20")
    backfilled = run_athena(stack, "backfill", *days)
    assert backfilled.returncode == 0, backfilled.stdout + backfilled.stderr

    for speaker, event_id, day in (("Tom", "chat-b-03", "2026-10-20"), ("Maya", "chat-a-03", "2026-09-14")):
        [best, *_] = _recall(stack, f"When did {speaker} run a half marathon?")
        assert best["event_id"] == event_id, best
        assert best["occurred_at"].startswith(day)  # the hit carries the date a "when" question asks
        assert best["metadata"] == {"speaker": speaker}

    # Another context is another set of vectors: every event of the range is embedded again.
    plain = subprocess.run(
        [str(Path(sys.executable).with_name("athena")), "backfill", *days],
        env={**stack.environ(), "ATHENA_EMBEDDING_CONTEXT": "none"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stdout + plain.stderr
    with psycopg.connect(stack.database_url) as conn:
        keys = conn.execute(
            """SELECT model_sha256, count(*) FROM athena.event_embeddings
               WHERE event_id LIKE 'chat-_-__' GROUP BY model_sha256 ORDER BY model_sha256"""
        ).fetchall()
    assert len(keys) == 2 and all(count == len(TURNS) for _, count in keys), keys
    plain_key, context_key = (key for key, _ in keys)
    assert context_key == f"{plain_key}+date+speaker"
