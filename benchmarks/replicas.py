"""Embedding throughput with one llama-server against two replicas on the same machine.

    .venv/bin/python benchmarks/replicas.py [--events 2000] [--repeats 2] [--models-dir DIR]
    .venv/bin/python benchmarks/replicas.py --urls URL,URL [--api-key-env LLAMACPP_API_KEY]

`LlamaCppEmbeddingResource` spreads its batches over every URL it is given. This measures what that
buys on one machine: one server with all the cores (`-t <cores>`), against two servers with half of
them each, and against two servers that each take all the cores (oversubscribed). With `--urls` it
starts nothing and compares the first of the given running servers with all of them (the compose
deployment's replicas, `athena deploy up --replicas`, published on 127.0.0.1). Every setup embeds
the same deterministic events through `embed_batch` with its defaults, runs are interleaved so drift in
machine load hits each setup alike, and the best run counts. The ratio to one server is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

from embedding_throughput import make_events, private_server, resource_run, timed

from resources.call_metrics import MetricsCollector
from resources.llamacpp.embedding import LlamaCppEmbeddingResource


def setups(cores: int) -> dict[str, list[tuple[int, int]]]:
    """Each setup's servers as (threads, parallel slots)."""
    half = max(1, cores // 2)
    return {
        f"1 server, -t {cores}": [(cores, 2)],
        f"2 servers, -t {half} each": [(half, 2), (half, 2)],
        f"2 servers, -t {cores} each (oversubscribed)": [(cores, 2), (cores, 2)],
    }


def main() -> None:
    """Parse the arguments, start each setup's servers, embed, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, help="where the model file is (fetched if missing)")
    parser.add_argument("--urls", help="running servers to compare, comma-separated (starts none)")
    parser.add_argument("--api-key-env", default="LLAMACPP_API_KEY", help="with --urls: the key's variable")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    events = make_events(args.events)
    results: dict[str, list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="athena-bench-") as home, ExitStack() as servers:
        models_dir = args.models_dir or Path(home) / "models"
        urls: dict[str, list[str]] = {}
        if args.urls:
            given = [url.strip() for url in args.urls.split(",") if url.strip()]
            urls = {"1 replica": given[:1], f"{len(given)} replicas": given}
        for number, (name, replicas) in enumerate(() if args.urls else setups(cores).items()):
            urls[name] = [
                servers.enter_context(
                    private_server(models_dir, Path(home) / f"run-{number}-{index}", threads, parallel)
                )
                for index, (threads, parallel) in enumerate(replicas)
            ]
        api_key = os.environ.get(args.api_key_env) if args.urls else None
        resources = {
            name: LlamaCppEmbeddingResource(urls=found, api_key=api_key).use_metrics(MetricsCollector())
            for name, found in urls.items()
        }
        for resource in resources.values():
            servers.enter_context(resource)
            resource_run(resource, events[:64])  # warm up every replica
        for _ in range(args.repeats):
            for name, resource in resources.items():
                results.setdefault(name, []).append(timed(name, lambda r=resource: resource_run(r, events)))
    rates = {name: max(tokens / seconds for seconds, tokens in runs) for name, runs in results.items()}
    baseline = next(iter(rates.values()))
    print(f"\n{args.events} events, {cores} cores, best of {args.repeats}\n")
    print("| setup | tokens/s | vs one server |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f} |")


if __name__ == "__main__":
    main()
