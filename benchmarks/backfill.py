"""Backfill throughput through Dagster against the raw embedding loop, and recall latency at scale.

    .venv/bin/python benchmarks/backfill.py                     # 5,000 events over 900 days, 100,000 vectors
    .venv/bin/python benchmarks/backfill.py --events 500 --vectors 10000
    .venv/bin/python benchmarks/backfill.py --skip-recall [--models-dir DIR]

A private stack is started in a temporary ATHENA_HOME on free ports, as the test fixture starts it, but
with the embedding llama-server only: PostgreSQL + pgvector, a Dagster instance on it, the embedding
model file materialised through Dagster (so `event_embeddings` finds its sha256). A deterministic
history is written as JSONL, ingested with `api.ingest.ingest`, and `api.backfill.backfill` is timed
(episodic events then embeddings, in as many Dagster runs as it needs), then timed again with nothing
new to do (a re-run's cost). The first backfill is repeated `--rounds` times (the memory schema dropped
before each, so each parses, loads and embeds everything), between runs of the raw loop of
`embedding_throughput.py` on the same texts and server: each round's rate is divided by the better raw
loop beside it, and the median round is the ratio, Dagster and database time included. Last, vectors
clustered around 1,000 real embeddings (each at a cosine of about 0.8 from its own), with fake events,
are bulk-loaded into a separate schema; vector recall@10 is compared with exact search over the same
vectors, recall is timed with the query's embedding, and `MemoryStore.recall` alone in vector and
hybrid mode, unscoped and scoped to one session (1% of the events) or one repository in the metadata
(5%).

    .venv/bin/python benchmarks/backfill.py --skip-backfill --vectors 100000   # recall only
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import dagster as dg
import numpy as np
import psutil
import psycopg
from benchmark_history import BENCH_HISTORY_START
from embedding_throughput import FILLER, PHRASES, TOPICS, make_events, raw_loop
from psycopg import sql

from athena_assets.api.app import App
from athena_assets.api.backfill import backfill
from athena_assets.api.ingest import ingest
from athena_assets.api.instance import materialize
from athena_assets.api.sample_history import generate_history, write_history
from athena_assets.defs.models.assets import MODEL_FILE_KEYS, model_file_assets
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.memory.event_line import Event
from resources.memory.recall_scope import RecallScope
from resources.memory.records import EmbeddingRow
from resources.memory.schema import DEFAULT_SCHEMA
from resources.memory.store import MemoryStore
from resources.models.manifest import ModelSpec, models_for_profile
from resources.numeric import percentile
from resources.settings import Settings
from resources.stack.llama_server import (
    LlamaServerConfig,
    read_pid_file,
    start_llama_server,
    stop_llama_server,
)
from resources.stack.local import SERVER_NAMES, LocalStack, private_stack_environment

HISTORY_SEED = 2026
RECALL_SCHEMA = "bench_recall"
RECALL_MODEL_SHA256 = "0" * 64  # fake vectors: a model sha no real model has
RECALL_QUERIES = 200
LOAD_CHUNK = 10_000
# The stored vectors lie around this many real embeddings, at a cosine of about 0.8 from theirs.
ANCHORS = 1_000
ANCHOR_NOISE = 0.75
EVENT_EMBEDDINGS = dg.AssetKey("event_embeddings")
EMBEDDING_ROLE = "embedding"


@dataclass(frozen=True)
class BackfillResult:
    """What one timed backfill did: counts, wall time and the Dagster runs it used."""

    events: int
    tokens: int
    seconds: float
    runs: int
    success: bool
    run_ids: list[str]


def history_first_day(days: int) -> date:
    """The first day of a history of `days` days that ends yesterday (events after today are refused)."""
    return datetime.now(UTC).date() - timedelta(days=days)


def history_file(path: Path, count: int, days: int) -> list[str]:
    """Write about `count` deterministic events spread over `days` days; returns their contents."""
    per_day = max(1, math.ceil(count / days))
    events = generate_history(history_first_day(days), days, HISTORY_SEED, events_per_day=(per_day, per_day))
    # Thin evenly (rather than cut the tail) so every day keeps its share of the history.
    step = len(events) / count
    kept = [events[int(index * step)] for index in range(min(count, len(events)))]
    write_history(kept, path)
    return [str(event["content"]) for event in kept]


@contextmanager
def private_stack(
    home: Path, models_dir: Path | None = None
) -> Iterator[tuple[Settings, LocalStack, dg.DagsterInstance]]:
    """Database, Dagster instance, embedding model file (through Dagster) and its server; stopped after."""
    settings = Settings.from_env(
        private_stack_environment(home, models_dir) | {"ATHENA_HISTORY_START": BENCH_HISTORY_START}
    )
    local = LocalStack(settings, models_for_profile(settings.model_profile))
    instance = None
    try:
        local.start_database()
        instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        embedding_key = MODEL_FILE_KEYS[EMBEDDING_ROLE]
        embedding_file = [asset for asset in model_file_assets if embedding_key in asset.keys]
        materialize(settings, embedding_file, instance)
        start_llama_server(embedding_server_config(settings, local), settings.run_dir)
        yield settings, local, instance
    finally:
        if instance is not None:
            instance.dispose()
        stop_llama_server(SERVER_NAMES[EMBEDDING_ROLE], settings.run_dir)
        local.down()


def embedding_server_config(settings: Settings, local: LocalStack) -> LlamaServerConfig:
    """The embedding server as `LocalStack.start_llama_servers` starts it (no reasoning server)."""
    spec: ModelSpec = local.models[EMBEDDING_ROLE]
    port = int(settings.embeddings_urls[0].rsplit(":", 1)[1].split("/")[0])
    return LlamaServerConfig(
        name=SERVER_NAMES[EMBEDDING_ROLE],
        model_path=local.model_path(EMBEDDING_ROLE),
        port=port,
        context_length=spec.context_length,
        embedding=True,
        pooling=spec.pooling,
        n_threads=settings.n_threads,
        parallel=settings.embedding_parallel,
    )


def embedding_tokens(instance: dg.DagsterInstance, run_ids: set[str]) -> int:
    """Tokens `event_embeddings` reported in `run_ids` (a range run repeats its metadata per partition)."""
    per_run: dict[str, int] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(EVENT_EMBEDDINGS, limit=1000, cursor=cursor)
        for record in result.records:
            materialization = record.asset_materialization
            if record.run_id in run_ids and materialization is not None:
                per_run[record.run_id] = int(materialization.metadata["tokens"].value)  # type: ignore[arg-type]
        if not result.has_more:
            return sum(per_run.values())
        cursor = result.cursor


def run_breakdown(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Where one run's wall time went, from its event log: start-up (run start to the first step),
    each step (its start to its end), what the run did after its last step, and the number of asset
    events it wrote (a range run writes materialisations and check results per partition)."""
    kinds = dg.DagsterEventType
    entries = [entry for entry in instance.all_logs(run_id) if entry.is_dagster_event]
    stamps: dict[tuple[str | None, object], float] = {
        (entry.step_key, entry.dagster_event.event_type): entry.timestamp for entry in entries
    }
    steps = sorted({step for step, kind in stamps if kind == kinds.STEP_START})
    started = {step: stamps[(step, kinds.STEP_START)] for step in steps}
    ended = {
        step: stamps.get((step, kinds.STEP_SUCCESS), stamps.get((step, kinds.STEP_FAILURE), 0.0))
        for step in steps
    }
    breakdown = {
        "start-up": min(started.values()) - stamps[(None, kinds.RUN_START)],
        "after the steps": stamps.get((None, kinds.RUN_SUCCESS), max(ended.values())) - max(ended.values()),
    }
    breakdown |= {step: ended[step] - started[step] for step in steps}
    written = (kinds.ASSET_MATERIALIZATION, kinds.ASSET_CHECK_EVALUATION, kinds.ASSET_OBSERVATION)
    breakdown["events written"] = float(sum(entry.dagster_event.event_type in written for entry in entries))
    return breakdown


def timed_backfill(
    settings: Settings, instance: dg.DagsterInstance, events: int, days: int
) -> BackfillResult:
    """`api.backfill.backfill` of the whole history, timed end to end."""
    first = history_first_day(days)
    last = first + timedelta(days=days - 1)
    started = time.perf_counter()
    runs = backfill(App(settings), first, last)
    seconds = time.perf_counter() - started
    tokens = embedding_tokens(instance, {run.run_id for run in runs})
    launched = sum(not run.skipped for run in runs)
    result = BackfillResult(
        events,
        tokens,
        seconds,
        launched,
        all(run.success for run in runs),
        [run.run_id for run in runs if run.run_id],
    )
    print(
        f"  backfill {first}..{last}: {seconds:.2f} s, {events / seconds:.0f} events/s, "
        f"{tokens / seconds:.0f} tokens/s, {launched} run(s), success={result.success}",
        flush=True,
    )
    return result


def raw_rate(url: str, texts: list[str], batch_size: int, threads: int) -> float:
    """Tokens/s of one raw loop over `texts`."""
    started = time.perf_counter()
    tokens = raw_loop(url, texts, batch_size, threads)
    seconds = time.perf_counter() - started
    print(f"  raw loop: {seconds:.2f} s, {tokens / seconds:.0f} tokens/s", flush=True)
    return tokens / seconds


class ServerBusy:
    """How busy the embedding llama-server kept the machine's cores while something ran: its CPU-seconds
    per wall second. The same texts cost the server 71-86 CPU-seconds from one minute to the next here,
    so wall-time ratios carry that noise; the busy share of a backfill against the raw loop beside it
    does not (it says what share of the time the server had work)."""

    def __init__(self, settings: Settings) -> None:
        record = read_pid_file(settings.run_dir / f"{SERVER_NAMES[EMBEDDING_ROLE]}.pid.json")
        if record is None:
            raise RuntimeError("the benchmark's embedding server is not running")
        self.process = psutil.Process(record.pid)
        self.shares: list[float] = []

    def _cpu(self) -> float:
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(sum(process.cpu_times()[:2]) for process in processes)

    @contextmanager
    def measured(self) -> Iterator[None]:
        """Record the server's CPU-seconds per wall second while the block runs."""
        cpu, started = self._cpu(), time.perf_counter()
        yield
        self.shares.append((self._cpu() - cpu) / (time.perf_counter() - started))


def fake_event(index: int, rng: random.Random) -> Event:
    """A short synthetic event (words that full-text search can match), spread over a year."""
    content = f"{rng.choice(PHRASES)} {rng.choice(TOPICS)} {rng.choice(FILLER)} #{index}"
    moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * index)
    return Event(
        id=f"bench-{index:07d}",
        occurred_at=moment,
        content=content,
        event_type="observation",
        source="benchmark",
        # Scopes of known selectivity: each session holds 1% of the events, each repository 5%.
        session_id=f"session-{index % 100}",
        metadata={"repo": f"repo-{index % 20}"},
        content_sha256=f"{index:064x}",
        source_file="benchmark",
        source_line=index,
    )


def near(rng: np.random.Generator, anchors: np.ndarray, count: int) -> np.ndarray:
    """`count` unit vectors, each a random anchor moved by noise to a cosine of about 0.8 from it: the
    clustered shape real embeddings have (many texts about each subject), unlike uniform noise."""
    picked = anchors[rng.integers(len(anchors), size=count)]
    noise = rng.standard_normal(picked.shape).astype(np.float32) * (
        ANCHOR_NOISE / math.sqrt(anchors.shape[1])
    )
    vectors = picked + noise
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def load_vectors(store: MemoryStore, count: int, anchors: np.ndarray) -> np.ndarray:
    """Insert `count` fake events with vectors near `anchors` (real embeddings) in bulk, then build the
    index; returns the vectors (row i is event `bench-i`), for the exact search recall is compared with."""
    rng, vectors_rng = random.Random(HISTORY_SEED), np.random.default_rng(HISTORY_SEED)
    store.ensure_schema()
    chunks = []
    for start in range(0, count, LOAD_CHUNK):
        events = [fake_event(index, rng) for index in range(start, min(count, start + LOAD_CHUNK))]
        store.upsert_events(events)
        vectors = near(vectors_rng, anchors, len(events))
        chunks.append(vectors)
        store.write_embeddings(
            [
                EmbeddingRow(event.id, RECALL_MODEL_SHA256, event.content_sha256, vector, 16)
                for event, vector in zip(events, vectors, strict=True)
            ]
        )
    store.ensure_vector_index(anchors.shape[1])
    return np.concatenate(chunks)


def recall_at_10(store: MemoryStore, matrix: np.ndarray, queries: np.ndarray) -> float:
    """Share of the exact 10 nearest (numpy, every vector) that the indexed vector recall returns."""
    found = 0
    for vector in queries:
        exact = {f"bench-{index:07d}" for index in np.argsort(-(matrix @ vector), kind="stable")[:10]}
        hits = store.recall(vector, RECALL_MODEL_SHA256, matrix.shape[1], k=10, mode="vector")
        found += len(exact & {hit.event_id for hit in hits})
    return found / (10 * len(queries))


def embedded_recall_latencies(
    store: MemoryStore, embeddings: LlamaCppEmbeddingResource, dimension: int, queries: int
) -> list[float]:
    """Milliseconds of `queries` recalls as a long-lived process (the MCP server) makes them: the query
    text embedded by the server, then the vector recall (the stored vectors are random, so only the
    time means something)."""
    rng = random.Random(HISTORY_SEED + 3)
    latencies = []
    for _ in range(queries):
        text = f"why did the {rng.choice(TOPICS)} fail after the {rng.choice(FILLER)}"
        started = time.perf_counter()
        query = embeddings.embed_query(text)
        hits = store.recall(query.embedding, RECALL_MODEL_SHA256, dimension, k=5, mode="vector")
        latencies.append((time.perf_counter() - started) * 1000)
        if len(hits) != 5:
            raise RuntimeError(f"recall returned {len(hits)} hits, expected 5")
    return latencies


def recall_latencies(
    store: MemoryStore,
    dimension: int,
    mode: Literal["vector", "hybrid"],
    queries: np.ndarray,
    scope: RecallScope | None = None,
) -> list[float]:
    """Milliseconds of one recall per query vector, each with a deterministic random query text."""
    rng = random.Random(HISTORY_SEED + 1)
    latencies = []
    for vector in queries:
        text = f"{rng.choice(TOPICS)} {rng.choice(FILLER)}"
        started = time.perf_counter()
        hits = store.recall(
            vector, RECALL_MODEL_SHA256, dimension, k=5, query_text=text, mode=mode, scope=scope
        )
        latencies.append((time.perf_counter() - started) * 1000)
        if len(hits) != 5:
            raise RuntimeError(f"{mode} recall returned {len(hits)} hits, expected 5")
    return latencies


def main() -> None:
    """Parse the arguments, start the private stack, run both benchmarks, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--days", type=int, default=900)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--models-dir", type=Path, help="reuse model files from here (default: a temp dir)")
    parser.add_argument("--skip-backfill", action="store_true", help="measure recall only")
    parser.add_argument("--rounds", type=int, default=3, help="first backfills, each between raw loops")
    parser.add_argument("--batch-size", type=int, default=32, help="raw loop: texts per request")
    parser.add_argument("--threads", type=int, default=4, help="raw loop: requests in flight")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with (
        tempfile.TemporaryDirectory(prefix="athena-bench-") as home,
        private_stack(Path(home), args.models_dir) as (settings, local, instance),
    ):
        if not args.skip_backfill:
            rows += backfill_rows(settings, instance, local, Path(home), args)
        if not args.skip_recall:
            rows += recall_rows(local.database_url(), settings, args.vectors)
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def forget_memory(database_url: str) -> None:
    """Drop the memory schema (events, vectors, loaded days), so the next backfill is a first one again:
    it parses, loads and embeds the whole history. The inbox and the Dagster instance stay."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(DEFAULT_SCHEMA)))


def backfill_rows(
    settings: Settings, instance: dg.DagsterInstance, local: LocalStack, home: Path, args: argparse.Namespace
) -> list[tuple[str, str]]:
    """Backfill the generated history through Dagster `--rounds` times, each a first backfill, between
    raw loops on the same texts; the rows."""
    url = settings.embeddings_urls[0]
    source = home / "history.jsonl"
    texts = history_file(source, args.events, args.days)
    reports = ingest(App(settings), [source])
    rejected = sum(len(report.parsed.rejected) for report in reports)
    print(f"{len(texts)} events over {args.days} days ingested ({rejected} rejected); server {url}")
    raw_loop(url, texts[:64], args.batch_size, args.threads)  # warm the server up
    # raw, backfill, raw, backfill, ..., raw: each backfill is compared with the better of the raw loops
    # either side of it, so the machine's drift (4,400-5,200 tokens/s within an hour here) cannot
    # flatter a round, and the median round is the ratio (one slow or fast moment cannot decide it).
    raw_busy, backfill_busy = ServerBusy(settings), ServerBusy(settings)
    with raw_busy.measured():
        raws = [raw_rate(url, texts, args.batch_size, args.threads)]
    results: list[BackfillResult] = []
    again = None
    for round_ in range(args.rounds):
        if round_ > 0:
            forget_memory(local.database_url())
        with backfill_busy.measured():
            results.append(timed_backfill(settings, instance, len(texts), args.days))
        if again is None:  # the same backfill again, nothing new to do: what a re-run costs
            again = timed_backfill(settings, instance, len(texts), args.days)
        with raw_busy.measured():
            raws.append(raw_rate(url, texts, args.batch_size, args.threads))
    ratios = [
        (result.tokens / result.seconds) / max(raws[index], raws[index + 1])
        for index, result in enumerate(results)
    ]
    busy = [
        share / statistics.mean(raw_busy.shares[index : index + 2])
        for index, share in enumerate(backfill_busy.shares)
    ]
    first = results[0]
    assert again is not None
    breakdown = [run_breakdown(instance, run_id) for run_id in first.run_ids]
    phases = sorted({phase for run in breakdown for phase in run})
    totals = {phase: sum(run.get(phase, 0.0) for run in breakdown) for phase in phases}
    return [
        ("events", f"{len(texts)} over {args.days} days"),
        ("first backfill wall time, each round", ", ".join(f"{result.seconds:.1f} s" for result in results)),
        ("all succeeded", str(all(result.success for result in results))),
        (
            "the same backfill again, nothing new (target < 10% of the first)",
            f"{again.seconds:.2f} s = {again.seconds / first.seconds:.1%} ({again.tokens} tokens embedded)",
        ),
        ("backfill tokens/s, each round", ", ".join(f"{r.tokens / r.seconds:.0f}" for r in results)),
        ("raw loop tokens/s, before, between and after", ", ".join(f"{rate:.0f}" for rate in raws)),
        ("backfill / the better raw loop beside it, each round", ", ".join(f"{r:.3f}" for r in ratios)),
        ("backfill / raw, median round (target >= 0.9)", f"{statistics.median(ratios):.3f}"),
        ("server CPU-seconds per second, raw loops", ", ".join(f"{share:.2f}" for share in raw_busy.shares)),
        (
            "server busy share, backfill / raw loops beside it, each round",
            ", ".join(f"{b:.3f}" for b in busy),
        ),
        ("server busy share, median round", f"{statistics.median(busy):.3f}"),
        ("Dagster runs per backfill", str(first.runs)),
        *[
            (
                f"first round, {phase} (all runs)",
                f"{value:.0f}" if phase == "events written" else f"{value:.1f} s",
            )
            for phase, value in totals.items()
        ],
    ]


def recall_rows(database_url: str, settings: Settings, count: int) -> list[tuple[str, str]]:
    """Load `count` fake vectors, then time recall per mode and scope; the rows."""
    spec = models_for_profile(settings.model_profile)[EMBEDDING_ROLE]
    dimension = int(spec.embedding_dim or 0)
    store = MemoryStore(database_url=database_url, schema_name=RECALL_SCHEMA)
    with LlamaCppEmbeddingResource(urls=settings.embeddings_urls) as embeddings:
        texts = make_events(ANCHORS, seed=HISTORY_SEED)
        anchors = np.stack([np.asarray(r.embedding, dtype=np.float32) for r in embeddings.embed_batch(texts)])
    anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
    print(f"loading {count} {dimension}-d vectors near {ANCHORS} real embeddings into {RECALL_SCHEMA}")
    started = time.perf_counter()
    matrix = load_vectors(store, count, anchors)
    rows = [(f"load {count} vectors + HNSW index", f"{time.perf_counter() - started:.1f} s")]
    queries = near(np.random.default_rng(HISTORY_SEED + 2), anchors, RECALL_QUERIES)
    rows.append((f"vector recall@10 against exact search at {count} vectors (target >= 0.95)",
                 f"{recall_at_10(store, matrix, queries):.3f}"))  # fmt: skip
    with LlamaCppEmbeddingResource(urls=settings.embeddings_urls) as embeddings:
        embedded_recall_latencies(store, embeddings, dimension, 5)  # warm up
        latencies = embedded_recall_latencies(store, embeddings, dimension, RECALL_QUERIES)
    rows.append(
        (
            f"recall with the query's embedding, unscoped, at {count} vectors (p50 / p95, target p95 <= 30)",
            f"{statistics.median(latencies):.1f} / {percentile(latencies, 0.95):.1f} ms",
        )
    )
    scopes = {
        "unscoped": None,
        "one session (1%)": RecallScope(session_id="session-7"),
        "one repository (5%)": RecallScope(where={"repo": "repo-3"}),
    }
    for label, scope in scopes.items():
        for mode in ("vector", "hybrid"):
            recall_latencies(store, dimension, mode, queries[:1], scope)  # warm up
            latencies = recall_latencies(store, dimension, mode, queries, scope)
            rows.append(
                (
                    f"recall {mode}, {label}, at {count} vectors (p50 / p95)",
                    f"{statistics.median(latencies):.1f} / {percentile(latencies, 0.95):.1f} ms",
                )
            )
    return rows


if __name__ == "__main__":
    main()
