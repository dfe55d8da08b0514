"""`make demo`: the whole local pipeline on the bundled sample history, printed as it goes.

Brings the stack up, materialises the model files through Dagster, asks each llama-server for one
answer, ingests the sample history, backfills it through Dagster, shows what recall finds, and
consolidates the last days into patterns with their evidence and a compressed Claude prompt.
"""

from datetime import timedelta

from athena_assets.api.app import App, Settings
from athena_assets.api.backfill import backfill
from athena_assets.api.context import prompt_savings
from athena_assets.api.ingest import ingest
from athena_assets.api.metrics import store_stats
from athena_assets.api.patterns import patterns
from athena_assets.api.recall import recall
from athena_assets.api.sample_history import BUNDLED_DAYS, BUNDLED_FILE, BUNDLED_START
from athena_assets.api.stack import ask_both_models, materialize_models, stack_up

# Three days: the first day of the range asks the model about every theme of its three-week window (9
# calls on the sample) and each later day about 5-8 clusters and supersession questions, 5-15 s a call on
# 2 cores; a week took 13 minutes of the demo. The daily schedule pays one day at a time.
CONSOLIDATED_DAYS = 3
SHOWN_PATTERNS = 6
# A paraphrase for vectors (the answer says "prefers chunking ... over truncating"); error wording for
# hybrid, where vectors alone rank a dimension error first and the words find the 500 and its fix.
RECALL_EXAMPLES = (
    ("vector", "the user wants long events split rather than cut off"),
    ("hybrid", "the embedding server refused an input that was too long"),
    ("hybrid", "sensor cursor skipped files"),
)


def _say(line: str = "") -> None:
    print(line, flush=True)


def run_demo(settings: Settings) -> int:
    """Run the demo end to end; returns the process exit code."""
    app = App(settings)
    _say("== 1. model files, materialised through Dagster")
    for name, path in materialize_models(app).items():
        _say(f"   {name}: {path}")
    _say("== 2. the local stack")
    started = stack_up(app)
    for note in started.notes:
        _say(f"   note: {note}")
    for part in started.parts:
        _say(f"   {part.name:<20} {'up' if part.healthy else 'DOWN':<5} {part.address}  {part.detail}")

    answers = ask_both_models(app)
    vector, reply = answers.vector, answers.reply
    _say(
        f"== 3. one embedding: {vector.dimension} dimensions, {vector.tokens} tokens, "
        f"first values {[round(value, 4) for value in vector.embedding[:4]]}"
    )
    speed = f"{reply.output_tokens} tokens, {reply.tokens_per_second:.0f} tokens/s"
    _say(f"   one question ({speed}): {answers.question}")
    _say(f"   answer: {reply.text.strip()}")

    _say(f"== 4. ingest the sample history ({BUNDLED_FILE.name})")
    for report in ingest(app, [BUNDLED_FILE]):
        _say(
            f"   {len(report.parsed.events)} events on {len(report.parsed.days)} days, "
            f"{len(report.parsed.rejected)} rejected"
        )
    first, last = BUNDLED_START, BUNDLED_START + timedelta(days=BUNDLED_DAYS - 1)
    _say(f"== 5. backfill {first}..{last} through Dagster")
    runs = backfill(app, first, last)
    for run in runs:
        if run.skipped:
            _say(f"   {run.first}..{run.last}: nothing new since the last demo, no run")
            continue
        _say(f"   run {run.run_id}: {run.first}..{run.last} {'ok' if run.success else 'FAILED'}")
    if not all(run.success for run in runs):
        return 1
    stats = store_stats(app)
    _say(
        f"   stored: {stats.events} events over {stats.days} days, {stats.embeddings} vectors, "
        f"{stats.dead_letters} dead letters"
    )

    for mode, query in RECALL_EXAMPLES:
        _say(f"== recall ({mode}): {query!r}")
        for rank, hit in enumerate(recall(app, query, k=3, mode=mode), start=1):
            _say(f"   {rank}. [{hit.score:.3f}] {hit.occurred_at:%Y-%m-%d} {hit.content[:110]}")

    # The small local model needs seconds per cluster: the demo consolidates the last days only.
    recent = last - timedelta(days=CONSOLIDATED_DAYS - 1)
    _say(f"== 6. consolidate {recent}..{last} into patterns, then compress the Claude prompts")
    runs = backfill(app, recent, last, ("consolidated_patterns", "compressed_prompts"))
    if not all(run.success for run in runs):
        return 1
    for pattern in patterns(app, since=recent)[:SHOWN_PATTERNS]:
        # Support counts the clusters (day, theme) that found the pattern, not its evidence events.
        times = "time" if pattern.support == 1 else "times"
        seen = f"found {pattern.support} {times}, {len(pattern.evidence)} events"
        _say(f"   [{pattern.kind}, by {pattern.method}] {pattern.title} ({seen})")
        _say(f"      {pattern.description[:150]}")
        for event in pattern.evidence[:2]:
            _say(f"      - {event.occurred_at:%Y-%m-%d} {event.content[:110]}")
    saved = prompt_savings(app, last)
    _say(
        f"   {saved.prompts} prompts, {saved.tokens_saved} tokens saved (${saved.dollars_saved:.5f}); "
        f"latest: {saved.file}"
    )
    return 0
