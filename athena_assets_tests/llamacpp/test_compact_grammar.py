"""The compact grammar: the schema's documents on one line, and a clear refusal of what it does not
cover. (Generation under it against the real server: test_llamacpp_reasoning.py.)"""

from __future__ import annotations

import re

import pytest

from athena_assets.knowledge.cluster_prompt import answer_schema
from resources.llamacpp.compact_grammar import UnsupportedSchemaError, compact_grammar


def test_the_answer_schema_becomes_a_grammar_without_whitespace() -> None:
    grammar = compact_grammar(answer_schema(["E1", "E2", "E3"], max_patterns=2))
    rules = dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())
    assert rules["root"] == '"{" "\\"patterns\\"" ":" root-patterns "}"'
    # one to two patterns, comma-separated, no space anywhere outside strings
    assert rules["root-patterns"] == '"[" root-patterns-item ("," root-patterns-item){0,1} "]"'
    item = rules["root-patterns-item"]
    assert item.index('"\\"title\\""') < item.index('"\\"kind\\""') < item.index('"\\"evidence\\""')
    assert rules["root-patterns-item-title"] == '"\\"" char{3,60} "\\""'
    assert rules["root-patterns-item-evidence-item"] == '"\\"E1\\"" | "\\"E2\\"" | "\\"E3\\""'
    structure = "\n".join(body for name, body in rules.items() if name != "char")
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"', structure)
    assert literals and not [text for text in literals if " " in text or "\\n" in text]


def test_what_it_does_not_cover_is_refused_not_guessed() -> None:
    optional = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    with pytest.raises(UnsupportedSchemaError, match="require every property"):
        compact_grammar(optional)
    with pytest.raises(UnsupportedSchemaError, match="root-a: type 'null'"):
        compact_grammar(
            {
                "type": "object",
                "properties": {"a": {"type": "null"}},
                "required": ["a"],
                "additionalProperties": False,
            }
        )
