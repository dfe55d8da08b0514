"""A pattern's kind from its evidence's event types, where they say one.

The events' types are the user's own record of what happened (an error, a fix, a decision, a stated
preference), so where they agree on a kind they decide it. The small model copies the kind of its
prompt's worked example: measured on the demo, every pattern it wrote was a `problem-solution`, a stated
style preference and a style decision included. The model's kind stands where the evidence carries no
types (a chat log) or types that name no kind (observations alone).
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from athena_assets.knowledge.clustering import PatternDraft


def kind_of(event_types: Sequence[str | None]) -> str | None:
    """The kind the typed events among `event_types` share, or None where they name none: a kind holds
    when at least a third of the typed events are of its type (an error and its fix together for a
    `problem-solution`), tried in this order."""
    types = Counter(kind for kind in event_types if kind)
    if not types:
        return None
    share = sum(types.values()) / 3
    if types["preference"] >= share:
        return "preference"
    if types["decision"] >= share:
        return "decision"
    if types["error"] and types["fix"] and types["error"] + types["fix"] >= share:
        return "problem-solution"
    if types["error"] >= share:
        return "pitfall"
    if types["command"] >= share:
        return "procedure"
    return None


def with_evidence_kind(draft: PatternDraft, event_types: Mapping[str, str | None]) -> PatternDraft:
    """`draft` with the kind its evidence's types name (`kind_of`), or as it was where they name none."""
    kind = kind_of([event_types.get(event_id) for event_id in draft.evidence_ids])
    return draft if kind is None or kind == draft.kind else replace(draft, kind=kind)
