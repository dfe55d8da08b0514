"""Asking the reasoning model about one cluster: which events fit the prompt budget, the identity of each
request, one retry after an unusable answer, and the reuse of remembered answers.

Generation is as deterministic as the server allows (temperature 0 and a seed derived from the cluster's
members); since llama-server still varies when its prompt cache is reused, every answer is remembered
under the sha256 of its exact request, and a re-run reuses it instead of asking again.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from athena_assets.knowledge import cluster_prompt, support_judge
from athena_assets.knowledge.clustering import Cluster
from athena_assets.knowledge.config import ConsolidationConfig
from resources.llamacpp.http import LlamaCppInputError, LlamaCppOutputError
from resources.llamacpp.interfaces import Reasoner
from resources.llamacpp.reasoning import ReasoningResult
from resources.memory.pattern_store import PatternStore
from resources.numeric import within_budget

# The chat template wraps the messages in a few turn markers the /tokenize count of the text leaves out.
TEMPLATE_MARGIN_TOKENS = 32
_PLACEHOLDER_LABEL = "E999"
# Enough for {"flag":false} under a compact grammar (the support judge's budget, so its keys stay).
_YES_NO_TOKENS = support_judge.MAX_TOKENS


@dataclass
class Prompting:
    """One day's prompting: the frame's token count (asked for once, when first needed) and the
    successful results (their server-side speeds). Mutable on purpose: it accumulates over the day.
    Without a `store` (the seed's one-off `consolidate_with_reasoning`) answers are not remembered."""

    config: ConsolidationConfig
    reasoning: Reasoner
    store: PatternStore | None
    reasoning_model: str
    frame_tokens: int | None = None
    results: list[ReasoningResult] = field(default_factory=list)
    judged: dict[str, Any] = field(default_factory=dict)

    @property
    def few_shot(self) -> bool:
        """Whether the model is a base model asked by continuing worked examples (see `cluster_prompt.py`)."""
        return self.reasoning.prompting == "few-shot"

    def frame(self) -> str:
        """The prompt without any event: what every prompt of the day pays."""
        if self.few_shot:
            return cluster_prompt.build_completion([])
        return (
            cluster_prompt.SYSTEM
            + "\n"
            + cluster_prompt.build_prompt([], self.config.max_patterns_per_cluster)
        )

    def frame_cost(self) -> int:
        """Tokens of the frame, the chat template's markers included."""
        if self.frame_tokens is None:
            self.frame_tokens = self.reasoning.count_tokens(self.frame()) + TEMPLATE_MARGIN_TOKENS
        return self.frame_tokens

    def shown(self, cluster: Cluster, content: dict[str, str]) -> list[str]:
        """The member ids that fit the prompt budget, most central first."""
        lines = [
            cluster_prompt.event_line(_PLACEHOLDER_LABEL, content[i], self.config.max_event_chars)
            for i in cluster.by_centrality
        ]
        # A token covers at least one UTF-8 byte, so a prompt with fewer bytes than the budget fits
        # without asking the server to tokenize anything.
        upper_bound = len(self.frame().encode()) + sum(len(line.encode()) + 1 for line in lines)
        if upper_bound + TEMPLATE_MARGIN_TOKENS <= self.config.max_prompt_tokens:
            return list(cluster.by_centrality)
        costs = [self.reasoning.count_tokens(line, add_special=False) + 1 for line in lines]
        kept = within_budget(costs, self.config.max_prompt_tokens - self.frame_cost())
        return [cluster.by_centrality[position] for position in kept]

    def ask(
        self, cluster: Cluster, lines: list[str], labels: list[str], usable: Callable[[Any], str | None]
    ) -> tuple[Any | None, str | None, int, bool]:
        """(answer, why none was usable, calls made, an answer was reused): the first answer `usable`
        accepts (it returns None for a good answer, else the reason), after one retry.

        Every answer is kept under the sha256 of its exact request, usable or not, so a re-run reuses
        what the model said instead of asking again (llama-server is not bit-reproducible)."""
        config = self.config
        if self.few_shot:
            # One pattern per call: the examples show one, and a base model fills extra slots with copies.
            schema = cluster_prompt.pattern_schema(
                labels, config.title_chars, config.description_chars, config.constrain_evidence
            )
            text, system = cluster_prompt.build_completion(lines), ""
        else:
            schema = cluster_prompt.answer_schema(
                labels, config.max_patterns_per_cluster, config.title_chars, config.description_chars,
                config.constrain_evidence,
            )  # fmt: skip
            text, system = (
                cluster_prompt.build_prompt(lines, config.max_patterns_per_cluster),
                cluster_prompt.SYSTEM,
            )
        attempts = (
            (config.temperature, cluster.seed),
            (config.retry_temperature, (cluster.seed + 1) % 2**32),
        )
        reason: str | None = None
        calls, reused = 0, False
        for temperature, seed in attempts:
            key = request_sha256(
                self.reasoning_model, system, text, schema, config.max_tokens, temperature, seed
            )
            remembers = self.store is not None and config.reuse_answers
            answer = self.store.remembered_answer(key) if remembers else None
            if answer is not None:
                reused = True
            else:
                calls += 1
                try:
                    result = self._generate(text, system, schema, temperature, seed)
                except LlamaCppOutputError as err:
                    reason = str(err)
                    continue
                except LlamaCppInputError as err:
                    # The server's context is smaller than the budget assumed: asking again cannot help.
                    return None, f"prompt refused by the server: {err}", calls, reused
                self.results.append(result)
                answer = {"patterns": [result.parsed]} if self.few_shot else result.parsed
                # Kept at once: a run that fails on a later cluster still spares the next run this call.
                if self.store is not None:
                    self.store.remember_answer(
                        key, cluster.key, cluster_prompt.PROMPT_VERSION, answer, result.output_tokens
                    )
            reason = usable(answer)
            if reason is None:
                return answer, None, calls, reused
        return None, reason, calls, reused

    def judge(self, cluster: Cluster, evidence: Sequence[str], statement: str) -> bool | None:
        """Whether the model judges `statement` supported by `evidence` (`support_judge.py`), or None
        where the model is not trusted to judge (`judges_support`) or gave no answer."""
        system, prompt = support_judge.question(evidence, statement)
        version = f"judge-{support_judge.JUDGE_VERSION}"
        answer = self.yes_no(cluster, system, prompt, support_judge.SCHEMA, version)
        return support_judge.verdict(answer)

    def yes_no(
        self, cluster: Cluster, system: str, prompt: str, schema: dict[str, Any], version: str
    ) -> Any | None:
        """The answer to a short question under `schema` (a yes/no flag), or None where the model is not
        trusted to judge (`judges_support`) or gave no answer. Remembered like every answer, so a
        re-run judges the same; `version` names the question's wording in the remembered row."""
        if not self.reasoning.judges_support:
            return None
        key = request_sha256(self.reasoning_model, system, prompt, schema, _YES_NO_TOKENS, 0.0, cluster.seed)
        remembers = self.store is not None and self.config.reuse_answers
        answer = self.judged.get(key) or (self.store.remembered_answer(key) if remembers else None)
        if answer is None:
            try:
                result = self.reasoning.reason(
                    prompt,
                    system=system,
                    max_tokens=_YES_NO_TOKENS,
                    temperature=0,
                    json_schema=schema,
                    seed=cluster.seed,
                )
            except (LlamaCppOutputError, LlamaCppInputError):
                return None
            self.results.append(result)
            answer = result.parsed
            if self.store is not None:
                self.store.remember_answer(key, cluster.key, version, answer, result.output_tokens)
        self.judged[key] = answer  # the gate sees each draft twice: while asking, and after
        return answer

    def _generate(
        self, text: str, system: str, schema: dict[str, Any], temperature: float, seed: int
    ) -> ReasoningResult:
        if self.few_shot:
            return self.reasoning.complete(
                text, self.config.max_tokens, temperature, stop=["\n"], seed=seed, json_schema=schema
            )
        return self.reasoning.reason(
            text, system=system, max_tokens=self.config.max_tokens, temperature=temperature,
            json_schema=schema, seed=seed,
        )  # fmt: skip


def request_sha256(
    reasoning_model: str,
    system: str,
    text: str,
    schema: dict[str, object],
    max_tokens: int,
    temperature: float,
    seed: int,
) -> str:
    """The identity of a reasoning request: the same model asked the same way gets the same key."""
    request = {
        "model": reasoning_model,
        "system": system,
        "prompt": text,
        "schema": schema,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
