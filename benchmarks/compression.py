"""Benchmark of `PromptCompressorResource`: latency and achieved ratio of each method on prompts of about
1k, 5k and 20k cl100k tokens, printed as a table beside the seed's claims.

The real LLMLingua-2 model (microsoft/llmlingua-2-xlm-roberta-large-meetingbank) cannot be downloaded
here, so LLMLingua-2 runs on two locally built stand-ins with seeded random weights: a tiny 2-layer BERT
(the code path and llmlingua's own overhead) and a model with xlm-roberta-large's exact architecture
(24 layers, 1024 wide: the compute the real model needs on this machine). Their ratios follow the
configured rate by construction; only the real model's *choice* of words is missing.

The extractive method uses the embedding llama-server given by --embeddings-url, or starts a private
one on a free loopback port (the profile's embedding model, fetched into a temporary directory). The machine's
load average is printed too: the CPUs may be shared, and latency moves with it.

    .venv/bin/python benchmarks/compression.py [--embeddings-url http://127.0.0.1:8001] [--skip-large]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertForTokenClassification,
    BertTokenizer,
    XLMRobertaConfig,
    XLMRobertaForTokenClassification,
    XLMRobertaTokenizer,
)

from resources.compression.compressor import PromptCompressorResource
from resources.compression.token_counting import cl100k
from resources.llamacpp.embedding import LlamaCppEmbeddingResource
from resources.models.files import ModelFilesResource
from resources.settings import Settings
from resources.stack.llama_server import LlamaServerConfig, free_port, start_llama_server, stop_llama_server

SEED_CLAIMS = "seed's claims: 100-200 ms per prompt, 60-75% fewer tokens (ratio 0.25-0.40)"
INSTRUCTION = "What happened with the Kubernetes cluster deployment, and which tickets are still open?"
SUBJECTS = ["Alice", "Bob", "Carol", "the deploy bot", "the on-call engineer", "Dana", "the data team"]
VERBS = ["reviewed", "merged", "deployed", "reported", "fixed", "discussed", "scheduled", "rolled back"]
OBJECTS = [
    "the billing service",
    "the Kubernetes cluster",
    "the budget report",
    "the database migration",
    "the login page",
    "the nightly backup job",
    "the search index",
    "the customer interview notes",
]
TAILS = [
    "after the standup",
    "before the release on {date}",
    "with {n} failing tests",
    "in ticket #{n}",
    "because latency rose to {n} ms",
    "and asked for a second review",
]
CHARS = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()$%#/"))


def prompt(tokens: int, seed: int) -> str:
    """Memory-like event sentences until the text has `tokens` cl100k tokens."""
    rng = random.Random(seed)
    sentences: list[str] = []
    used = 0
    while used < tokens:
        tail = rng.choice(TAILS).format(
            date=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", n=rng.randint(2, 9999)
        )
        sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {tail}."
        sentence = sentence[0].upper() + sentence[1:]
        # Joined with a space, which cl100k merges into the sentence's first token.
        used += len(cl100k().encode_ordinary(f" {sentence}" if sentences else sentence))
        sentences.append(sentence)
    return " ".join(sentences)


def _words() -> list[str]:
    text = " ".join(SUBJECTS + VERBS + OBJECTS + TAILS + [INSTRUCTION])
    return sorted(
        set(re.findall(r"[A-Za-z]+", text)) | {word.capitalize() for word in re.findall(r"[a-z]+", text)}
    )


def save_tiny_bert(directory: Path) -> Path:
    """A 2-layer BERT token classifier (seeded random weights) whose vocabulary covers the prompts."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS, *(f"##{c}" for c in CHARS), *_words()]
    tokenizer = BertTokenizer(
        vocab={piece: i for i, piece in enumerate(dict.fromkeys(vocab))}, do_lower_case=False
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertForTokenClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_large_xlm_roberta(directory: Path) -> Path:
    """xlm-roberta-large's encoder (24 x 1024, 16 heads) with random weights and the prompts' vocabulary.

    The vocabulary is small (the real one has 250k pieces), which changes the size of the embedding table
    but not the compute per token, which is what this stand-in measures.
    """
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"▁{word}", -5.0) for word in _words()] + [("▁", -8.0)] + [(c, -10.0) for c in CHARS]
    tokenizer = XLMRobertaTokenizer(vocab=[*pieces, ("<mask>", 0.0)])
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=514,
        pad_token_id=1,
    )
    XLMRobertaForTokenClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@contextlib.contextmanager
def embedding_server(url: str | None, workdir: Path) -> Iterator[str]:
    """`url`, or a private embedding llama-server started for the benchmark and stopped after it."""
    if url:
        yield url.rstrip("/")
        return
    # A temporary models directory, like the test fixture: the user's own is left alone.
    files = ModelFilesResource(models_dir=str(workdir / "models"), profile=Settings.from_env().model_profile)
    files.fetch("embedding")
    spec = files.spec("embedding")
    config = LlamaServerConfig(
        name="compression-benchmark-embeddings",
        model_path=files.path("embedding"),
        port=free_port(),
        context_length=spec.context_length,
        embedding=True,
        pooling=spec.pooling,
        n_threads=os.cpu_count() or 2,
        parallel=2,
    )
    run_dir = workdir / "run"
    start_llama_server(config, run_dir)
    try:
        yield config.url
    finally:
        stop_llama_server(config.name, run_dir)


@dataclass(frozen=True)
class Row:
    """One measurement."""

    label: str
    size: int
    original: int
    compressed: int
    ratio: float
    latency_ms: float
    method: str


def measure(label: str, resource: PromptCompressorResource, prompts: dict[int, str]) -> list[Row]:
    """Latency and ratio of `resource` on each prompt, after loading and one warm-up call."""
    started = time.perf_counter()
    resource.prepare()
    print(f"  {label}: ready in {time.perf_counter() - started:.1f} s ({resource.method})", flush=True)
    resource.compress(prompt(200, 99), instruction=INSTRUCTION)
    rows = []
    for size, context in prompts.items():
        result = resource.compress(context, instruction=INSTRUCTION)
        rows.append(
            Row(
                label,
                size,
                result.original_tokens,
                result.compressed_tokens,
                result.ratio,
                result.latency_ms,
                result.method,
            )
        )
        print(f"    {size:>6} tokens: {result.latency_ms:10.0f} ms, ratio {result.ratio:.3f}", flush=True)
    return rows


def print_table(rows: list[Row]) -> None:
    """The results as a fixed-width table, followed by the seed's claims."""
    header = (
        f"{'method':<52} {'target':>7} {'tokens':>7} {'kept':>7} {'ratio':>6} {'saved':>6} {'latency ms':>11}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        print(
            f"{row.label:<52} {row.size:>7} {row.original:>7} {row.compressed:>7} {row.ratio:>6.3f} "
            f"{1 - row.ratio:>6.1%} {row.latency_ms:>11.0f}"
        )
    print(f"\n{SEED_CLAIMS}; configured target here: keep 0.33 (67% fewer tokens)")


def main() -> None:
    """Run every available method on every prompt size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings-url", help="an embedding llama-server to use instead of a private one")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--skip-large", action="store_true", help="skip the xlm-roberta-large stand-in")
    args = parser.parse_args()
    prompts = {size: prompt(size, size) for size in args.sizes}
    print(f"load average before: {os.getloadavg()}; torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="athena-compression-bench-") as tmp:
        workdir = Path(tmp)
        tiny = save_tiny_bert(workdir / "tiny-bert-base-multilingual-cased")
        with embedding_server(args.embeddings_url, workdir) as url:
            embeddings = LlamaCppEmbeddingResource(urls=[url])
            missing = str(workdir / "no-model")
            cases = [
                ("passthrough (ENABLE_COMPRESSION=false)", PromptCompressorResource(enabled=False)),
                (
                    "llmlingua2, tiny 2-layer BERT, random weights",
                    PromptCompressorResource(model=str(tiny), embeddings=embeddings),
                ),
            ]
            if not args.skip_large:
                large = save_large_xlm_roberta(workdir / "random-xlm-roberta-large")
                cases.append(
                    (
                        "llmlingua2, xlm-roberta-large arch., random weights",
                        PromptCompressorResource(model=str(large), embeddings=embeddings),
                    )
                )
            cases += [
                (
                    "extractive, all-MiniLM-L6-v2 via llama-server",
                    PromptCompressorResource(model=missing, embeddings=embeddings),
                ),
                ("extractive, word overlap (no embedding server)", PromptCompressorResource(model=missing)),
            ]
            rows = [row for label, resource in cases for row in measure(label, resource, prompts)]
            embeddings.close()
    print(f"load average after: {os.getloadavg()}")
    print_table(rows)
    print(
        "llmlingua2 rows: the real model is not available offline here; ratios follow the target by "
        "construction, and the xlm-roberta-large row is the real model's compute. Prompts over "
        "llmlingua_max_tokens (8192) are first cut by the extractive ranker."
    )


if __name__ == "__main__":
    main()
