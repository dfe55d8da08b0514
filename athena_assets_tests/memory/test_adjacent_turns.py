"""Question-and-reply pairs in hybrid recall (pure rules): which turn asks, what an asking hit lifts, and
where a lifted reply lands among the hits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from resources.memory.adjacent_turns import REPLY_SHARE, asks, lifted
from resources.memory.recall import with_replies
from resources.memory.records import RecallHit

AT = datetime(2026, 9, 14, 18, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("How was the concert on Friday?", True),
        ("Did you end up buying it?  ", True),
        ('She asked "are you coming?"', True),
        ("Incredible, Moonfolk played for almost three hours.", False),
        ("Is it fixed? I think so.", False),  # answered in the same turn
        ("", False),
    ],
)
def test_a_turn_asks_when_it_ends_with_a_question_mark(content: str, expected: bool) -> None:
    assert asks(content) is expected


def _reply(hit: str, event: str, content: str = "Incredible, Moonfolk played.") -> dict[str, Any]:
    return {"hit_id": hit, "event_id": event, "occurred_at": AT, "content": content, "event_type": "message",
            "source": "chat", "session_id": "s1", "metadata": {}}  # fmt: skip


def test_a_reply_gets_its_share_of_the_question_never_less_than_its_own() -> None:
    scores = {"ask": 1.0, "other-ask": 0.4, "found-reply": 0.7}
    replies = [_reply("ask", "reply"), _reply("other-ask", "reply"), _reply("ask", "found-reply")]
    # The better question wins; a reply already above its share keeps its own score.
    assert lifted(scores, replies) == {"reply": REPLY_SHARE * 1.0}


def _hit(event_id: str, score: float, content: str, vector_rank: int | None = 1) -> RecallHit:
    return RecallHit(event_id=event_id, score=score, occurred_at=AT, content=content, vector_rank=vector_rank,
                     text_rank=None, session_id="s1")  # fmt: skip


def test_a_reply_nobody_found_joins_below_its_question_and_k_still_holds() -> None:
    hits = [_hit("ask", 1.2, "How was the concert?"), _hit("a", 0.9, "Busy week."), _hit("b", 0.5, "Ha.")]
    best = with_replies(hits, [_reply("ask", "reply")], k=3)
    assert [hit.event_id for hit in best] == ["ask", "a", "reply"]
    joined = best[2]
    assert joined.score == pytest.approx(REPLY_SHARE * 1.2)
    assert (joined.vector_rank, joined.text_rank) == (None, None)  # neither branch found it
    assert joined.content == "Incredible, Moonfolk played."


def test_a_reply_among_the_hits_moves_up_and_is_not_listed_twice() -> None:
    hits = [_hit("ask", 1.0, "Which one?"), _hit("x", 0.45, "Hm."), _hit("reply", 0.1, "This one.", 7)]
    best = with_replies(hits, [_reply("ask", "reply", "This one.")], k=5)
    assert [hit.event_id for hit in best] == ["ask", "reply", "x"]
    assert best[1].vector_rank == 7  # still the rank its branch gave it


def test_no_replies_leave_the_order_alone() -> None:
    hits = [_hit("a", 1.0, "The build is green."), _hit("b", 0.5, "Great.")]
    assert with_replies(hits, [], k=1) == hits[:1]
