"""Tiers (b) and (c): the reasoning resource against the session's Qwen2.5-Coder-1.5B-Instruct server,
and the JSON Schema subset its answers are validated with."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from athena_assets_tests.helpers import StackHandle
from resources.call_metrics import MetricsCollector
from resources.llamacpp.http import LlamaCppOutputError
from resources.llamacpp.json_schema import schema_errors
from resources.llamacpp.reasoning import LlamaCppReasoningResource

TICKET_SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "minLength": 1, "maxLength": 24},
        "urgent": {"type": "boolean"},
        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    "required": ["topic", "urgent", "severity"],
    "additionalProperties": False,
}


@pytest.fixture
def reasoning(stack: StackHandle) -> Iterator[LlamaCppReasoningResource]:
    with LlamaCppReasoningResource(urls=[stack.reasoning_url]).use_metrics(MetricsCollector()) as resource:
        yield resource


@pytest.mark.timeout(120)
def test_json_schema_answers_are_parsed_and_valid(reasoning: LlamaCppReasoningResource):
    result = reasoning.reason(
        "Ticket: the production database is down and nobody can log in.",
        system="Classify the support ticket.",
        max_tokens=96,
        temperature=0,
        json_schema=TICKET_SCHEMA,
        seed=7,
    )

    assert schema_errors(result.parsed, TICKET_SCHEMA) == []
    assert result.prompt_tokens > 10
    assert 0 < result.output_tokens <= 96
    assert result.tokens_per_second > 0 and result.latency_ms > 0
    stats = reasoning.metrics.get_stats("reasoning")
    assert stats["successful_calls"] == 1
    assert stats["output_tokens"] == result.output_tokens


@pytest.mark.timeout(60)
def test_an_answer_cut_off_by_max_tokens_is_a_clear_error(reasoning: LlamaCppReasoningResource):
    with pytest.raises(LlamaCppOutputError, match="max_tokens=4"):
        reasoning.reason("Describe the weather.", max_tokens=4, json_schema=TICKET_SCHEMA, temperature=0)
    assert reasoning.metrics.get_stats("reasoning")["failed_calls"] == 1


def test_schema_subset_finds_each_kind_of_problem():
    assert schema_errors({"topic": "db", "urgent": True, "severity": "high"}, TICKET_SCHEMA) == []
    errors = schema_errors({"topic": "", "urgent": "yes", "severity": "extreme", "extra": 1}, TICKET_SCHEMA)
    assert any("$.topic: shorter than 1" in error for error in errors)
    assert any("$.urgent: expected boolean" in error for error in errors)
    assert any("'extreme' is not one of" in error for error in errors)
    assert any("unexpected property 'extra'" in error for error in errors)
    assert schema_errors({"urgent": False}, TICKET_SCHEMA)[0] == "$: missing required property 'topic'"
    too_many = {"patterns": ["abc"] * 6}
    bounded = {"type": "object", "properties": {"patterns": {"type": "array", "maxItems": 5}}}
    assert schema_errors(too_many, bounded) == ["$.patterns: 6 items, at most 5 allowed"]
    assert schema_errors(True, {"type": "integer"}) == ["$: expected integer, got bool"]
    assert schema_errors(3.0, {"type": "integer", "maximum": 2}) == ["$: 3.0 is above the maximum 2"]


@pytest.mark.timeout(60)
def test_complete_continues_text_without_a_chat_template(reasoning: LlamaCppReasoningResource):
    calls = reasoning.metrics.get_stats("reasoning")["total_calls"]
    result = reasoning.complete(
        "Water boils at a temperature of", max_tokens=8, temperature=0, stop=["\n", "."]
    )
    assert "100" in result.text, result.text
    assert result.output_tokens > 0 and result.finish_reason in {"stop", "length"}
    assert reasoning.metrics.get_stats("reasoning")["total_calls"] == calls + 1


@pytest.mark.timeout(180)
def test_compact_json_is_one_line_and_costs_fewer_tokens(stack: StackHandle):
    """The instruction model pretty-prints JSON when the schema's grammar lets it; the compact grammar
    (the default) gets the same kind of answer on one line, in fewer generated tokens."""
    question = (
        "Ticket: the production database is down and nobody can log in.",
        "Classify the support ticket.",
    )
    answers = {}
    for compact in (True, False):
        with LlamaCppReasoningResource(urls=[stack.reasoning_url], compact_json=compact) as resource:
            answers[compact] = resource.reason(
                *question, max_tokens=96, temperature=0, json_schema=TICKET_SCHEMA, seed=7
            )
    compact, pretty = answers[True], answers[False]
    assert compact.text == json.dumps(compact.parsed, separators=(",", ":"), ensure_ascii=False)
    assert "\n" in pretty.text, "without the compact grammar this model pretty-prints"
    assert compact.output_tokens < pretty.output_tokens
    assert compact.parsed["urgent"] is True and compact.parsed["severity"] == "high", compact.parsed
