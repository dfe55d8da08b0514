"""Inferences cut from a model's description where its evidence does not make them.

The 1.5B model ends a grounded statement with a conclusion of its own: "Ruff check failures in several
files, indicating a pattern of poor coding style", "..., reducing the time needed to run tests", "This
helps maintain code clarity and maintainability", "was made after extensive testing and analysis of the
codebase". The gate judges a description's sentences whole, so such a tail rides on the grounded words
before it, or the judge model accepts it. Here a clause that draws an inference (", indicating ...",
", which ..."), one that gives a cause or purpose ("after ...", "to ensure ..."), and a sentence that
draws one ("This helps ...") are cut where most of their words are absent from the evidence; the rest
stays as the model wrote it, and the gate then judges what is left.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from athena_assets.knowledge.clustering import PatternDraft
from athena_assets.knowledge.gate import mostly_known, sentences, stems

_CONNECTIVES = (
    "indicating|suggesting|implying|which|reducing|improving|ensuring|making|leading|resulting|causing|"
    "highlighting|showing|demonstrating|thereby"
)
# A cause or purpose the model supplies ("was made after extensive testing", "to ensure the issue is
# resolved") needs no comma before it.
_REASONS = r"after|due\s+to|because|to\s+ensure|in\s+order\s+to|so\s+that"
_INFERENCE_CLAUSE = re.compile(rf",\s+(?=(?:{_CONNECTIVES})\b)|\s+(?=(?:{_REASONS})\b)", re.IGNORECASE)
_INFERENCE_SENTENCE = re.compile(
    r"(?:this|these|it|that)\s+(?:helps?|ensures?|indicates?|suggests?|improves?|shows?|means|"
    r"highlights?|demonstrates?|leads?|results?|makes?)\b",
    re.IGNORECASE,
)


def without_unsupported_inferences(description: str, evidence_texts: Sequence[str]) -> str:
    """`description` without the inference clauses and sentences its evidence does not support (see the
    module doc); `description` itself where nothing would be left."""
    known: set[str] = set().union(*(stems(text) for text in evidence_texts))
    kept = []
    for sentence in sentences(description):
        if _INFERENCE_SENTENCE.match(sentence) and not mostly_known(sentence, known):
            continue
        starts = list(_INFERENCE_CLAUSE.finditer(sentence))
        ends = [found.start() for found in starts[1:]] + [len(sentence)]
        for found, end in zip(starts, ends, strict=False):  # no clause: `ends` alone holds the length
            # What follows an unsupported inference continues it: the sentence ends before it.
            if not mostly_known(sentence[found.end() : end], known):
                ending = sentence[-1] if sentence.endswith((".", "!", "?")) else ""
                sentence = sentence[: found.start()].rstrip(" ,;:") + ending
                break
        kept.append(sentence)
    return " ".join(kept) or description


def cut_unsupported_inferences(
    drafts: Sequence[PatternDraft], content: Mapping[str, str]
) -> list[PatternDraft]:
    """`drafts` with their descriptions cut as `without_unsupported_inferences` does (`content`: event
    texts by id)."""
    cut = []
    for draft in drafts:
        description = without_unsupported_inferences(
            draft.description, [content[event_id] for event_id in draft.evidence_ids]
        )
        cut.append(draft if description == draft.description else replace(draft, description=description))
    return cut
