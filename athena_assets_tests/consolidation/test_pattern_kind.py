"""A pattern's kind from its evidence's event types (`pattern_kind.py`); through a cluster in
`test_consolidation_logic.py`."""

from __future__ import annotations

import pytest

from athena_assets.knowledge.clustering import PatternDraft
from athena_assets.knowledge.pattern_kind import kind_of, with_evidence_kind


@pytest.mark.parametrize(
    ("types", "kind"),
    [
        (["preference", "preference", "observation"], "preference"),
        (["decision", "decision", "fix", "error", "observation"], "decision"),
        (["error", "fix", "command", "command", "command", "command"], "problem-solution"),
        # One fix among many commands is a procedure with a fix in it, not a problem and its solution.
        (
            ["error", "fix", "command", "command", "command", "command", "command", "command", "command"],
            "procedure",
        ),
        (["error", "error", "observation"], "pitfall"),
        (["command", "command", "observation", None, None], "procedure"),
        # Types that name no kind, or none at all: the model's kind stands.
        (["observation", "observation"], None),
        ([None, None, None], None),
        ([], None),
    ],
)
def test_the_evidence_types_name_a_kind_where_a_third_share_one(
    types: list[str | None], kind: str | None
) -> None:
    assert kind_of(types) == kind


def _draft(kind: str, *evidence: str) -> PatternDraft:
    return PatternDraft("Comments say why", "Comments explain why, not what.", kind, 0.9, evidence)


def test_the_evidence_kind_replaces_the_models_and_untyped_evidence_keeps_it() -> None:
    types = {"p1": "preference", "p2": "preference", "o1": "observation", "t1": None}
    assert with_evidence_kind(_draft("problem-solution", "p1", "p2", "o1"), types).kind == "preference"
    assert with_evidence_kind(_draft("procedure", "o1", "t1"), types).kind == "procedure"
    assert with_evidence_kind(_draft("fact", "unknown-id"), types).kind == "fact"
    unchanged = _draft("preference", "p1")
    assert with_evidence_kind(unchanged, types) is unchanged
