"""Asking the reasoning model whether events support a statement: a yes/no question under a schema.

The gate's word rules (`gate.py`) reject a description whose words its evidence does not use, which
also rejects a correct abstraction ("set lock timeouts to avoid deadlocks" from events about lock
waits); an instruction model can judge the meaning instead. `benchmarks/support_judge.py` measures
how often each model agrees with hand labels before the gate is allowed to rely on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from resources.llamacpp.http import LlamaCppError
from resources.llamacpp.interfaces import Reasoner

JUDGE_VERSION = "1"
SYSTEM = "You check statements against evidence, strictly. Answer with JSON only."
_QUESTION = (
    "Events:\n{events}\n\nStatement: {statement}\n\n"
    "Is the statement supported by the events? General wording that sums up what the events say is "
    "supported; a cause, effect, number, tool or outcome that no event mentions is not."
)
SCHEMA = {
    "type": "object",
    "properties": {"supported": {"type": "boolean"}},
    "required": ["supported"],
    "additionalProperties": False,
}


MAX_TOKENS = 16


def question(events: Sequence[str], statement: str) -> tuple[str, str]:
    """(system, prompt) of the question whether `events` support `statement`."""
    lines = "\n".join(f"E{n}: {' '.join(text.split())}" for n, text in enumerate(events, start=1))
    return SYSTEM, _QUESTION.format(events=lines, statement=" ".join(statement.split()))


def supported(reasoning: Reasoner, events: Sequence[str], statement: str, seed: int = 0) -> bool | None:
    """Whether the model judges `statement` supported by `events` (None when it gave no usable answer)."""
    system, prompt = question(events, statement)
    try:
        result = reasoning.reason(
            prompt, system=system, max_tokens=MAX_TOKENS, temperature=0, json_schema=SCHEMA, seed=seed
        )
    except LlamaCppError:
        return None
    return verdict(result.parsed)


def verdict(answer: object) -> bool | None:
    """The judgement an answer states, or None when it states none."""
    return bool(answer["supported"]) if isinstance(answer, dict) and "supported" in answer else None
