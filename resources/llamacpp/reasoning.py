"""`LlamaCppReasoningResource`: text generation from llama-server, as a chat (`reason`,
`/v1/chat/completions`, for an instruction model) or as a continuation (`complete`, `/v1/completions`,
for a base model without a chat template).

With a JSON schema the server constrains sampling with a grammar made from it, so even a small base
model answers in the right shape; the answer is then parsed and validated (`resources.llamacpp.json_schema`)
and returned as `ReasoningResult.parsed`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from resources.llamacpp.base import LlamaCppResourceBase
from resources.llamacpp.compact_grammar import UnsupportedSchemaError, compact_grammar
from resources.llamacpp.http import (
    LlamaCppError,
    LlamaCppInputError,
    LlamaCppOutputError,
    LlamaCppResponseError,
)
from resources.llamacpp.json_schema import schema_errors


@dataclass(frozen=True)
class ReasoningResult:
    """One generation: the text, the server's token counts and speed, and the parsed JSON if asked for.

    `tokens_per_second` is the generation speed llama-server measured (output tokens per second of
    decoding), falling back to output tokens over the whole latency when the server gives no timings.
    """

    text: str
    prompt_tokens: int
    output_tokens: int
    tokens_per_second: float
    latency_ms: float
    parsed: Any = None
    finish_reason: str = ""


class LlamaCppReasoningResource(LlamaCppResourceBase):
    """Chat completions from one or more llama-server replicas of the reasoning model."""

    max_tokens: int = Field(default=512, description="Default cap on generated tokens per call.")
    temperature: float = Field(default=0.2, description="Default sampling temperature.")
    model_name: str = Field(default="", description="The manifest's model name, for messages.")
    prompting: str = Field(
        default="chat",
        description="How the model is best asked: 'chat' (an instruction model with a chat template) or "
        "'few-shot' (a base model: worked examples continued by `complete`). From the manifest.",
    )
    stop: list[str] = Field(
        # A base model (no chat template of its own) is served with llama-server's ChatML fallback and
        # does not end its turn by itself; stopping at the turn markers keeps free-text answers clean.
        default_factory=lambda: ["<|im_end|>", "<|im_start|>", "<end_of_turn>"],
        description="Stop strings sent with every request.",
    )

    judges_support: bool = Field(
        default=False,
        description="Whether the model's yes/no judgement of a statement against evidence is reliable "
        "enough for the consolidation's gate (benchmarks/support_judge.py measures it per model).",
    )
    compact_json: bool = Field(
        default=True,
        description="Constrain JSON answers to compact JSON (no whitespace between tokens): about a third "
        "fewer generated tokens than the pretty-printed JSON the schema's own grammar lets a model write.",
    )
    cache_prompt: bool = Field(
        default=True,
        description="Let llama-server reuse the cached prefix a request shares with the one before (the "
        "system message and the question of every consolidation prompt).",
    )

    def reason(
        self,
        prompt: str,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
        *,
        seed: int | None = None,
        top_p: float | None = None,
    ) -> ReasoningResult:
        """Generate an answer to `prompt` (after an optional `system` message).

        With `json_schema`, generation is grammar-constrained to it and the answer is parsed and
        validated into `parsed`; `LlamaCppOutputError` says when it is cut off or does not conform.
        """
        if not prompt.strip():
            raise LlamaCppInputError("the prompt is empty")
        limit = max_tokens or self.max_tokens
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        payload: dict[str, Any] = {
            "messages": messages,
            "max_tokens": limit,
            "temperature": self.temperature if temperature is None else temperature,
            "stream": False,
            "cache_prompt": self.cache_prompt,
        }
        if self.stop:
            payload["stop"] = list(self.stop)
        if seed is not None:
            payload["seed"] = seed
        if top_p is not None:
            payload["top_p"] = top_p
        if json_schema is not None:
            payload |= _constrained(json_schema, self.compact_json, chat=True)
        return self._generate("/v1/chat/completions", payload, limit, json_schema)

    def complete(
        self,
        text: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        *,
        stop: list[str] | None = None,
        seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
        top_p: float | None = None,
    ) -> ReasoningResult:
        """Continue `text` as written, without a chat template: how a base model (one with no chat
        template of its own, like the offline Gemma 3 270M) is asked what it knows. With `json_schema`
        the continuation is grammar-constrained to it and parsed, as in `reason`."""
        if not text.strip():
            raise LlamaCppInputError("the text to complete is empty")
        limit = max_tokens or self.max_tokens
        payload: dict[str, Any] = {
            "prompt": text,
            "max_tokens": limit,
            "temperature": self.temperature if temperature is None else temperature,
            "stream": False,
            "stop": list(self.stop if stop is None else stop),
            "cache_prompt": self.cache_prompt,
        }
        if seed is not None:
            payload["seed"] = seed
        if top_p is not None:
            payload["top_p"] = top_p
        if json_schema is not None:
            payload |= _constrained(json_schema, self.compact_json, chat=False)
        return self._generate("/v1/completions", payload, limit, json_schema)

    def ask(
        self,
        prompt: str,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        *,
        top_p: float | None = None,
    ) -> ReasoningResult:
        """Ask the model the way it is best asked (`prompting`): an instruction model through its chat
        template (`reason`), a base model by continuing the text (`complete`, the system text first)."""
        if self.prompting == "few-shot":
            text = f"{system}\n\n{prompt}" if system else prompt
            return self.complete(text, max_tokens, temperature, top_p=top_p)
        return self.reason(prompt, system, max_tokens, temperature, top_p=top_p)

    def _generate(
        self, path: str, payload: dict[str, Any], limit: int, json_schema: dict[str, Any] | None
    ) -> ReasoningResult:
        started = time.monotonic()
        try:
            answer = self.http.post(path, payload)
            result = _result(answer.body, answer.latency_ms, limit, json_schema)
        except LlamaCppError:
            self.metrics.record("reasoning", (time.monotonic() - started) * 1000, success=False)
            raise
        self.metrics.record(
            "reasoning",
            result.latency_ms,
            tokens=result.prompt_tokens + result.output_tokens,
            output_tokens=result.output_tokens,
        )
        return result


def _result(body: Any, latency_ms: float, limit: int, json_schema: dict[str, Any] | None) -> ReasoningResult:
    try:
        choice = body["choices"][0]
        # A chat completion answers with a message; a plain completion with text.
        text = (choice["message"]["content"] if "message" in choice else choice["text"]) or ""
    except (KeyError, IndexError, TypeError):
        raise LlamaCppResponseError(
            "the server answered without choices[0].message.content or .text"
        ) from None
    finish_reason = str(choice.get("finish_reason") or "")
    usage = body.get("usage") or {}
    output_tokens = int(usage.get("completion_tokens", 0))
    speed = float((body.get("timings") or {}).get("predicted_per_second") or 0.0)
    if speed <= 0 and latency_ms > 0:
        speed = output_tokens / (latency_ms / 1000)
    parsed = _parse(text, finish_reason, limit, json_schema) if json_schema is not None else None
    return ReasoningResult(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        output_tokens=output_tokens,
        tokens_per_second=speed,
        latency_ms=latency_ms,
        parsed=parsed,
        finish_reason=finish_reason,
    )


def _parse(text: str, finish_reason: str, limit: int, json_schema: dict[str, Any]) -> Any:
    try:
        parsed = json.loads(text)
    except ValueError:
        if finish_reason == "length":
            raise LlamaCppOutputError(
                f"the answer stopped at max_tokens={limit} before its JSON was complete; raise max_tokens "
                "or bound the schema (maxItems, maxLength)"
            ) from None
        raise LlamaCppOutputError(
            f"the answer is not JSON (does the server support response_format?): {text[:200]!r}"
        ) from None
    errors = schema_errors(parsed, json_schema)
    if errors:
        raise LlamaCppOutputError(f"the answer does not match the schema: {'; '.join(errors[:5])}")
    return parsed


def _constrained(json_schema: dict[str, Any], compact: bool, chat: bool) -> dict[str, Any]:
    """The request fields that constrain generation to `json_schema`: a compact grammar where the
    schema allows one (`compact_grammar.py`), else the schema itself (llama-server's own grammar)."""
    if compact:
        try:
            return {"grammar": compact_grammar(json_schema)}
        except UnsupportedSchemaError:
            pass
    if not chat:
        return {"json_schema": json_schema}
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "strict": True, "schema": json_schema},
        }
    }
