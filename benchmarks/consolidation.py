"""Consolidation of one day of events (default 200): the wall time split between clustering, reasoning,
embedding the patterns and storage, and reasoning tokens/s through `LlamaCppReasoningResource` against
raw requests to the same server, in the same run.

    .venv/bin/python benchmarks/consolidation.py                 # a private stack in a temporary home
    .venv/bin/python benchmarks/consolidation.py --events 200 --replay 0 --repeats 2    # every request

Without URLs, the profile's models are fetched into --models-dir (default: the temporary home) and an
embedded PostgreSQL and both llama-servers are started exactly as `athena stack up` starts them, then
stopped. The events are generated deterministically: a dozen recurring subjects in varied words, plus
unrelated one-offs. The day is consolidated by the same `consolidate_day` the asset runs; afterwards the
exact reasoning requests it made are replayed, alternately through the resource and as raw HTTP
requests (the first --replay of them, the best of --repeats passes each), and output tokens/s compared
(target: resource / raw >= 0.95).
"""

import argparse
import hashlib
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import PrivateAttr, ValidationError

from athena_assets.defs.memory.embeddings import embed_events
from athena_assets.knowledge.config import ConsolidationConfig
from athena_assets.knowledge.consolidate_day import Clients, consolidate_day
from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.llamacpp.http import LlamaCppOutputError
from resources.llamacpp.reasoning import LlamaCppReasoningResource
from resources.memory.event_line import Event
from resources.memory.pattern_store import PatternStore
from resources.memory.store import MemoryStore
from resources.models.files import ModelFilesResource
from resources.models.manifest import models_for_profile
from resources.settings import Settings
from resources.stack.local import LocalStack, private_stack_environment

DAY = date(2026, 11, 2)
MODEL_SHA256 = "benchmark"
SUBJECTS = {
    "dark mode": ("asked to switch the editor to dark mode", "wants the dark theme everywhere",
                  "complained the light theme is too bright", "turned dark mode back on"),
    "staging deploy": ("the staging deploy failed on a migration lock", "staging deploy broke again",
                       "deploy to staging timed out during the migration", "reran the failed staging deploy"),
    "weekly report": ("asked for the weekly report as a bullet list", "wants the weekly report shorter",
                      "corrected the numbers in the weekly report", "sent the weekly report to the team"),
    "flight to Lisbon": ("booked a flight to Lisbon", "changed the Lisbon flight to the morning",
                         "asked about baggage on the Lisbon flight", "checked in for the Lisbon flight"),
    "postgres tests": ("pytest timed out waiting for postgres", "the postgres fixture failed on CI",
                       "raised the postgres fixture timeout", "postgres tests are flaky again"),
    "budget review": ("moved the quarterly budget review to Thursday", "prepared the budget review slides",
                      "asked who attends the budget review", "the budget review ran over time"),
    "coffee": ("prefers oat milk in the coffee order", "ordered the usual flat white with oat milk",
               "asked for decaf after 3 pm", "the coffee order was wrong again"),
    "recall latency": ("recall API latency went above 200 ms", "profiled the slow recall queries",
                       "added an HNSW index to speed up recall", "recall latency is back under 50 ms"),
    "onboarding": ("started the onboarding checklist for the new hire", "the new hire needs laptop access",
                   "scheduled onboarding sessions for Monday", "finished the onboarding checklist"),
    "short answers": ("asked for shorter answers without preamble", "said the answer was too long",
                      "prefers one-line answers in chat", "wants summaries in three bullets"),
    "retries": ("raised the HTTP retry budget to 30 s", "retries hid a real outage",
                "added jitter to the retry backoff", "capped retries at five attempts"),
    "birthday dinner": ("booked a table for Zoë's birthday dinner", "asked for a vegetarian dinner menu",
                        "moved Zoë's birthday dinner to 8 pm", "ordered a cake for the birthday dinner"),
}  # fmt: skip
ONE_OFFS = (
    "renewed the passport", "watered the plants", "read an article about tides", "fixed a squeaky door",
    "bought new running shoes", "watched a documentary on owls", "cleaned the keyboard", "called the bank",
)  # fmt: skip
DETAILS = ("", " again", " this morning", " after the standup", " before lunch", " late in the evening")


def make_events(count: int, seed: int = 2026) -> list[Event]:
    """`count` deterministic events on `DAY`: nine in ten about a recurring subject, the rest one-offs."""
    rng = random.Random(seed)
    subjects = list(SUBJECTS.values())
    events = []
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    for index in range(count):
        if rng.random() < 0.9:
            text = f"user {rng.choice(rng.choice(subjects))}{rng.choice(DETAILS)}"
        else:
            text = f"user {rng.choice(ONE_OFFS)}{rng.choice(DETAILS)}"
        occurred_at = start + timedelta(seconds=index * 86_000 // count)
        events.append(
            Event(
                id=f"bench-{index:04d}",
                occurred_at=occurred_at,
                content=text,
                event_type="note",
                source="benchmark",
                session_id=None,
                metadata={},
                content_sha256=hashlib.sha256(text.encode()).hexdigest(),
                source_file="benchmark",
                source_line=index + 1,
            )
        )
    return events


class RecordingReasoning(LlamaCppReasoningResource):
    """The reasoning resource, remembering every request it makes so they can be replayed."""

    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    def reason(self, prompt: str, system: str | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """`LlamaCppReasoningResource.reason`, recorded."""
        self._calls.append({"prompt": prompt, "system": system, **kwargs})
        return super().reason(prompt, system, **kwargs)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The requests made so far, in order."""
        return list(self._calls)


@dataclass(frozen=True)
class Pass:
    """One replay of the requests: output tokens and wall seconds of each request."""

    tokens: tuple[int, ...]
    seconds: tuple[float, ...]

    def rate(self, keep: list[int]) -> float:
        """Output tokens per wall second over the requests at positions `keep`."""
        seconds = sum(self.seconds[i] for i in keep)
        return sum(self.tokens[i] for i in keep) / seconds if seconds > 0 else 0.0


def _payload(call: dict[str, Any], stop: list[str]) -> dict[str, Any]:
    """The request body `LlamaCppReasoningResource.reason` sends for `call`."""
    messages = [{"role": "system", "content": call["system"]}, {"role": "user", "content": call["prompt"]}]
    return {
        "messages": messages,
        "max_tokens": call["max_tokens"],
        "temperature": call["temperature"],
        "stream": False,
        "stop": stop,
        "seed": call["seed"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "strict": True, "schema": call["json_schema"]},
        },
    }


def raw_pass(url: str, calls: list[dict[str, Any]], stop: list[str]) -> Pass:
    """The requests as plain HTTP posts on one keep-alive client."""
    tokens, seconds = [], []
    with httpx.Client(timeout=600) as client:
        for call in calls:
            started = time.perf_counter()
            response = client.post(f"{url}/v1/chat/completions", json=_payload(call, stop))
            response.raise_for_status()
            seconds.append(time.perf_counter() - started)
            tokens.append(int(response.json()["usage"]["completion_tokens"]))
    return Pass(tuple(tokens), tuple(seconds))


def resource_pass(resource: LlamaCppReasoningResource, calls: list[dict[str, Any]]) -> tuple[Pass, set[int]]:
    """The requests through `reason` (parsing and validation included); also the positions that failed."""
    tokens, seconds, failed = [], [], set()
    for position, call in enumerate(calls):
        started = time.perf_counter()
        try:
            result = resource.reason(**call)
            tokens.append(result.output_tokens)
        except LlamaCppOutputError:
            failed.add(position)
            tokens.append(0)
        seconds.append(time.perf_counter() - started)
    return Pass(tuple(tokens), tuple(seconds)), failed


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The `--threshold` and `--set FIELD=VALUE` options that change the measured `ConsolidationConfig`."""
    parser.add_argument("--threshold", type=float, help="similarity_threshold (default: the config's)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="another ConsolidationConfig field, e.g. --set lookback_days=14 (repeatable)",
    )  # fmt: skip


def chosen_config(
    parser: argparse.ArgumentParser, args: argparse.Namespace, **fixed: Any
) -> ConsolidationConfig:
    """The `ConsolidationConfig` of `add_config_options`' options (and `fixed` fields); a malformed or
    unknown `--set` stops with the parser's usage error naming it."""
    chosen: dict[str, Any] = dict(fixed)
    for item in args.set:
        field, equals, value = item.partition("=")
        if not equals or field not in ConsolidationConfig.model_fields:
            parser.error(f"--set {item!r}: expected FIELD=VALUE with a ConsolidationConfig field as FIELD")
        chosen[field] = value
    if args.threshold:
        chosen["similarity_threshold"] = args.threshold
    # Pydantic turns the strings into each field's type; a value it cannot take is a usage error too.
    try:
        return ConsolidationConfig(**chosen)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        parser.error(f"--set: {problems}")


@contextmanager
def private_stack(
    home: Path, models_dir: Path | None, profile: str = "local"
) -> Iterator[tuple[str, str, str]]:
    """(database URL, embeddings URL, reasoning URL) of a stack of `profile`'s models started in `home`,
    stopped afterwards."""
    settings = Settings.from_env(private_stack_environment(home, models_dir, profile))
    models = models_for_profile(settings.model_profile)
    files = ModelFilesResource(models_dir=str(settings.models_dir), profile=profile)
    for role in models:
        files.fetch(role)
    stack = LocalStack(settings, models)
    try:
        stack.start_database()
        stack.start_llama_servers()
        yield stack.database_url(), settings.embeddings_urls[0], settings.reasoning_urls[0]
    finally:
        stack.down()


@contextmanager
def loaded_clients(
    urls: tuple[str, str, str], profile: str, events: list[Event], model_sha256: str, prefix: str
) -> Iterator[Clients]:
    """The clients of a consolidation over `events`, stored and embedded into a new schema of the
    stack at `urls` (named `prefix` and a random suffix), with `profile`'s reasoning model."""
    database_url, embeddings_url, reasoning_url = urls
    memory = MemoryStore(database_url=database_url, schema_name=f"{prefix}_{uuid.uuid4().hex[:8]}")
    embeddings = LlamaCppEmbeddingResource(urls=[embeddings_url]).use_metrics(MetricsCollector())
    spec = models_for_profile(profile)["reasoning"]
    reasoning = LlamaCppReasoningResource(
        urls=[reasoning_url], timeout_s=600, prompting=spec.prompting, judges_support=spec.judges_support
    )
    reasoning.use_metrics(MetricsCollector())
    with embeddings, reasoning:
        memory.upsert_events(events)
        days = sorted({event.day for event in events})
        stored = memory.events_for_days(days[0], days[-1])
        embed_events(stored, embeddings, memory, embeddings.vector_key(model_sha256))
        yield Clients(reasoning, embeddings, memory, PatternStore.beside(memory))


def _load(events: list[Event], memory: MemoryStore, embeddings: LlamaCppEmbeddingResource) -> float:
    started = time.perf_counter()
    memory.ensure_schema()
    memory.upsert_events(events)
    embed_events(memory.events_for_days(DAY, DAY), embeddings, memory, embeddings.vector_key(MODEL_SHA256))
    return time.perf_counter() - started


def benchmark(database_url: str, embeddings_url: str, reasoning_url: str, args: argparse.Namespace) -> None:
    """Load the events, consolidate the day, replay its reasoning requests; print the figures."""
    memory = MemoryStore(database_url=database_url, schema_name=f"bench_{uuid.uuid4().hex[:8]}")
    config = ConsolidationConfig(
        max_tokens=args.max_tokens,
        max_patterns_per_cluster=args.max_patterns,
        lookback_days=0,
        reuse_answers=False,
    )
    embeddings = LlamaCppEmbeddingResource(urls=[embeddings_url]).use_metrics(MetricsCollector())
    # A shared machine can stall one answer for minutes; a benchmark should report that, not give up.
    reasoning = RecordingReasoning(urls=[reasoning_url], timeout_s=600).use_metrics(MetricsCollector())
    # The replay goes through the plain resource: the recording subclass is not what is measured.
    plain = LlamaCppReasoningResource(urls=[reasoning_url], timeout_s=600).use_metrics(MetricsCollector())
    with embeddings, reasoning, plain:
        loaded = _load(make_events(args.events), memory, embeddings)
        patterns = PatternStore.beside(memory)
        patterns.ensure_schema()
        clients = Clients(reasoning, embeddings, memory, patterns)
        report = consolidate_day(DAY, config, clients, MODEL_SHA256, "benchmark-reasoning")
        calls = reasoning.calls[: args.replay or None]
        raw_runs, resource_runs, failed = [], [], set()
        for _ in range(args.repeats):  # alternated, so drift in machine load hits both alike
            raw_runs.append(raw_pass(reasoning_url, calls, list(plain.stop)))
            run, failures = resource_pass(plain, calls)
            resource_runs.append(run)
            failed |= failures
    keep = [position for position in range(len(calls)) if position not in failed]
    raw_rate = max(run.rate(keep) for run in raw_runs)
    resource_rate = max(run.rate(keep) for run in resource_runs)
    counts = report.counts()
    print(f"{args.events} events on {DAY} loaded and embedded in {loaded:.1f} s")
    print(
        f"{counts['clusters']} clusters ({counts['events_clustered']} events, {counts['clusters_trimmed']} "
        f"trimmed, {counts['clusters_failed']} failed); patterns {counts['patterns_new']} new, "
        f"{counts['patterns_reinforced']} reinforced, {counts['patterns_discarded']} discarded"
    )
    total = sum(report.seconds.values())
    print(f"\n{'phase':12} {'seconds':>9} {'share':>7}")
    for phase, seconds in report.seconds.items():
        print(f"{phase:12} {seconds:9.2f} {seconds / total:7.1%}")
    print(f"{'total':12} {total:9.2f}")
    summary = report.reasoning
    print(
        f"\nreasoning during consolidation: {summary.calls} calls, {summary.prompt_tokens} prompt + "
        f"{summary.output_tokens} output tokens, {summary.tokens_per_s:.1f} output tokens/s "
        f"(server decode {summary.generation_tokens_per_s:.1f} tokens/s)"
    )
    print(
        f"replayed {len(keep)} requests, best of {args.repeats}: resource {resource_rate:.1f} tokens/s, "
        f"raw {raw_rate:.1f} tokens/s, resource / raw = {resource_rate / raw_rate:.3f} (target >= 0.95)"
    )


def main() -> None:
    """Parse the arguments, start a private stack unless URLs are given, run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=192, help="answer budget per reasoning call")
    parser.add_argument("--max-patterns", type=int, default=1, help="patterns asked per cluster")
    parser.add_argument("--repeats", type=int, default=1, help="replays of the requests per method")
    parser.add_argument("--replay", type=int, default=12, help="requests replayed per pass (0: all)")
    parser.add_argument("--database-url", help="a PostgreSQL with pgvector (else a private one starts)")
    parser.add_argument("--embeddings-url", help="an embedding llama-server")
    parser.add_argument("--reasoning-url", help="a reasoning llama-server")
    parser.add_argument("--models-dir", type=Path, help="where the model files are (fetched if missing)")
    args = parser.parse_args()
    urls = (args.database_url, args.embeddings_url, args.reasoning_url)
    if all(urls):
        benchmark(*urls, args)
        return
    if any(urls):
        parser.error("give all of --database-url, --embeddings-url and --reasoning-url, or none")
    with (
        tempfile.TemporaryDirectory(prefix="athena-bench-") as home,
        private_stack(Path(home), args.models_dir) as urls,
    ):
        benchmark(*urls, args)


if __name__ == "__main__":
    main()
