"""Embedding throughput on one llama-server: `LlamaCppEmbeddingResource.embed_batch` against the best
raw request loop and against the seed's one-request-per-text pattern.

    .venv/bin/python benchmarks/embedding_throughput.py            # starts a private embedding server
    .venv/bin/python benchmarks/embedding_throughput.py --url http://127.0.0.1:8001

Without --url the embedding model of the profile is fetched into --models-dir (default: a temporary
ATHENA_HOME, like the test fixture) and served exactly as `athena stack up` serves it. The events are
generated deterministically (20 to 200 tokens each); every method embeds the same events on the same
server, and tokens/s uses the server's own token counts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.models.files import ModelFilesResource
from resources.models.manifest import models_for_profile
from resources.stack.llama_server import LlamaServerConfig, free_port, start_llama_server, stop_llama_server

SERVER_NAME = "benchmark-embeddings"
SEED = "one request per text (seed)"
ACTORS = ("user", "assistant", "tool:calendar", "tool:search", "system")
TOPICS = (
    "the quarterly budget review",
    "dark mode in the editor",
    "the staging deploy",
    "a flight to Lisbon",
    "the postgres migration",
    "weekly report formatting",
    "the onboarding checklist",
    "Zoë's birthday dinner",
    "latency of the recall API",
    "a café near the office",
    "the 東京 offsite",
    "retry and backoff settings",
)
PHRASES = (
    "asked again about",
    "prefers short answers on",
    "reported a failure in",
    "scheduled a meeting about",
    "wants reminders for",
    "corrected the summary of",
    "shared notes on",
    "complained about",
    "approved the plan for",
    "needs a follow-up on",
    "mentioned in passing",
    "compared two options for",
)
FILLER = (
    "because the previous attempt timed out",
    "and said it is urgent",
    "with a link to the document",
    "after the standup",
    "while travelling",
    "for the third time this week",
    "and attached a screenshot",
    "which conflicts with an earlier preference",
    "so the assistant should remember it",
    "🚀 before Friday",
)


def make_events(count: int, seed: int = 2026) -> list[str]:
    """Deterministic memory events of roughly 20 to 200 tokens (all-MiniLM tokenizer)."""
    rng = random.Random(seed)
    events = []
    for index in range(count):
        sentences = [
            f"{rng.choice(ACTORS)} {rng.choice(PHRASES)} {rng.choice(TOPICS)} {rng.choice(FILLER)}."
            for _ in range(rng.randint(1, 10))
        ]
        events.append(
            f"[2026-01-{1 + index % 28:02d} {index % 24:02d}:{index % 60:02d}] " + " ".join(sentences)
        )
    return events


def raw_loop(url: str, events: list[str], batch_size: int, threads: int) -> int:
    """The best plain loop: batched texts, a few threads, one keep-alive client. Returns server tokens."""
    batches = [events[start : start + batch_size] for start in range(0, len(events), batch_size)]
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(timeout=300, limits=limits) as client:

        def send(batch: list[str]) -> int:
            response = client.post(f"{url}/v1/embeddings", json={"input": batch})
            response.raise_for_status()
            return int(response.json()["usage"]["prompt_tokens"])

        with ThreadPoolExecutor(threads) as pool:
            return sum(pool.map(send, batches))


def seed_pattern(url: str, events: list[str]) -> int:
    """The seed's pattern: one request per text, one after the other, a new connection each time."""
    tokens = 0
    for event in events:
        response = httpx.post(f"{url}/v1/embeddings", json={"input": event}, timeout=300)
        response.raise_for_status()
        tokens += int(response.json()["usage"]["prompt_tokens"])
    return tokens


def resource_run(resource: LlamaCppEmbeddingResource, events: list[str]) -> int:
    """`embed_batch` with the resource's defaults. Returns the tokens it reports."""
    return sum(result.tokens for result in resource.embed_batch(events))


def timed(name: str, run: Callable[[], int]) -> tuple[float, int]:
    """(seconds, tokens) of one run, also printed as it finishes (a contended machine makes runs long)."""
    started = time.perf_counter()
    tokens = run()
    seconds = time.perf_counter() - started
    print(f"  {name}: {seconds:.2f} s, {tokens / seconds:.0f} tokens/s", flush=True)
    return seconds, tokens


@contextmanager
def private_server(models_dir: Path, run_dir: Path, threads: int, parallel: int) -> Iterator[str]:
    """The profile's embedding model served on a free port, as `athena stack up` would serve it."""
    spec = models_for_profile("local")["embedding"]
    path = ModelFilesResource(models_dir=str(models_dir)).fetch("embedding").path
    config = LlamaServerConfig(
        name=SERVER_NAME,
        model_path=path,
        port=free_port(),
        context_length=spec.context_length,
        embedding=True,
        pooling=spec.pooling,
        n_threads=threads,
        parallel=parallel,
    )
    try:
        yield start_llama_server(config, run_dir).url
    finally:
        stop_llama_server(SERVER_NAME, run_dir)


def benchmark(url: str, count: int, repeats: int, batch_size: int, threads: int) -> None:
    """Run every method on `url` and print tokens/s and the ratios."""
    events = make_events(count)
    resource = LlamaCppEmbeddingResource(urls=[url]).use_metrics(MetricsCollector())
    with resource:
        lengths = [result.tokens for result in resource.embed_batch(events)]  # also warms the server up
        print(f"server {url}: {resource.describe()}")
        print(
            f"{count} events, {min(lengths)} to {max(lengths)} tokens (mean {statistics.mean(lengths):.0f}), "
            f"{sum(lengths)} tokens in all; best of {repeats} runs"
        )
        runs: dict[str, list[tuple[float, int]]] = {"raw loop": [], "embed_batch": [], SEED: []}
        for _ in range(repeats):  # interleaved, so drift in machine load hits every method alike
            runs["raw loop"].append(timed("raw loop", lambda: raw_loop(url, events, batch_size, threads)))
            runs["embed_batch"].append(timed("embed_batch", lambda: resource_run(resource, events)))
            runs[SEED].append(timed(SEED, lambda: seed_pattern(url, events)))
    print()
    rates = {name: max(tokens / seconds for seconds, tokens in results) for name, results in runs.items()}
    print(f"{'method':32} {'best s':>8} {'tokens/s':>10} {'vs raw':>7}")
    for name, results in runs.items():
        best = min(seconds for seconds, _ in results)
        print(f"{name:32} {best:8.2f} {rates[name]:10.0f} {rates[name] / rates['raw loop']:7.3f}")
    print(
        f"\nembed_batch / raw loop = {rates['embed_batch'] / rates['raw loop']:.3f} (target >= 0.95); "
        f"embed_batch / seed = {rates['embed_batch'] / rates[SEED]:.2f}x"
    )


def main() -> None:
    """Parse the arguments, start a server unless --url is given, run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an embedding llama-server to use instead of starting one")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="raw loop: texts per request")
    parser.add_argument("--threads", type=int, default=4, help="raw loop: requests in flight")
    parser.add_argument("--models-dir", type=Path, help="where the model file is (fetched if missing)")
    parser.add_argument("--server-threads", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=2, help="llama-server --parallel (slots)")
    args = parser.parse_args()
    if args.url:
        benchmark(args.url.rstrip("/"), args.events, args.repeats, args.batch_size, args.threads)
        return
    with tempfile.TemporaryDirectory(prefix="athena-bench-") as home:
        models_dir = args.models_dir or Path(home) / "models"
        with private_server(models_dir, Path(home) / "run", args.server_threads, args.parallel) as url:
            benchmark(url, args.events, args.repeats, args.batch_size, args.threads)


if __name__ == "__main__":
    main()
