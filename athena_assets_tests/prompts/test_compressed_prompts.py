"""`compressed_prompts` on the real stack: events -> embeddings -> patterns -> a compressed Claude prompt."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from athena_assets.defs.consolidation.assets import consolidated_patterns
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets.defs.memory.events import episodic_events
from athena_assets.defs.prompts.assets import compressed_prompts
from athena_assets.defs.resources import AthenaResources
from athena_assets_tests.helpers import StackHandle, write_jsonl
from resources.compression.compressor import PromptCompressorResource

DAY = "2026-11-04"
THEMES = {
    "pytest": "pytest fixture timed out waiting for the PostgreSQL socket in CI, run {i}",
    "ruff": "the user asked again to keep ruff line length at 110 in pyproject, request {i}",
}
USD_PER_MTOK = 3.0
# Short answers keep the small model's calls to seconds; the wording is not under test here.
FAST_CONSOLIDATION = {
    "max_patterns_per_cluster": 1,
    "max_tokens": 200,
    "title_chars": 40,
    "description_chars": 80,
}


@pytest.fixture(scope="module")
def pipeline(stack: StackHandle, tmp_path_factory: pytest.TempPathFactory) -> AthenaResources:
    """A private schema and inbox, with one day of two clear themes consolidated into patterns."""
    tmp = tmp_path_factory.mktemp("prompts")
    resources = stack.private_resources(tmp)
    rows = [
        {"id": f"{theme}-{i}", "occurred_at": f"{DAY}T{9 + i:02d}:00:00Z", "content": text.format(i=i)}
        for theme, text in THEMES.items()
        for i in range(4)
    ]
    resources.inbox.ingest(write_jsonl(tmp / "events.jsonl", rows))
    result = dg.materialize(
        [episodic_events, event_embeddings, consolidated_patterns],
        resources=resources.as_dict(),
        instance=stack.instance,
        partition_key=DAY,
        run_config={"ops": {"consolidated_patterns": {"config": FAST_CONSOLIDATION}}},
    )
    assert result.success
    return resources


def _materialize(stack: StackHandle, resources: AthenaResources) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [compressed_prompts], resources=resources.as_dict(), instance=stack.instance, partition_key=DAY
    )


def _row(resources: AthenaResources) -> dict[str, object]:
    store = resources.prompt_store
    with psycopg.connect(store.database_url) as conn:
        cursor = conn.execute(
            f'SELECT * FROM "{store.schema_name}".compressed_prompts'  # noqa: S608 - a generated schema name
        )
        names = [column.name for column in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert len(rows) == 1, "one row per day, however often the day is materialised"
    return rows[0]


def test_the_prompt_is_compressed_stored_and_written_with_its_savings(stack: StackHandle, pipeline) -> None:
    result = _materialize(stack, pipeline)
    row = _row(pipeline)
    assert row["patterns"] >= 1
    assert row["compressed_tokens"] < row["original_tokens"]
    assert row["tokens_saved"] == row["original_tokens"] - row["compressed_tokens"]
    assert row["dollars_saved"] == pytest.approx(row["tokens_saved"] * USD_PER_MTOK / 1_000_000)
    written = Path(pipeline.prompt_store.file_for(date.fromisoformat(DAY)))
    assert written.read_text(encoding="utf-8") == row["compressed_prompt"]
    # No LLMLingua-2 model can be on these machines: the fallback is used and the check says so.
    [check] = result.get_asset_check_evaluations()
    assert row["method"] == "extractive"
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert "llmlingua" in str(check.metadata["fallback_reason"].value).lower()
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["tokens_saved"].value == row["tokens_saved"]
    assert str(metadata["preview"].value).strip()
    assert pipeline.prompt_store.totals() == (1, row["tokens_saved"], pytest.approx(row["dollars_saved"]))

    _materialize(stack, pipeline)
    assert _row(pipeline)["original_tokens"] == row["original_tokens"]


def test_disabled_compression_passes_the_prompt_through_and_still_counts_it(
    stack: StackHandle, pipeline
) -> None:
    resources = replace(pipeline, compressor=PromptCompressorResource(enabled=False))
    result = _materialize(stack, resources)
    row = _row(resources)
    assert row["method"] == "passthrough"
    assert row["compressed_prompt"] == row["original_prompt"]
    assert row["compressed_tokens"] == row["original_tokens"] > 0
    assert row["tokens_saved"] == 0 and row["dollars_saved"] == 0
    [check] = result.get_asset_check_evaluations()
    assert check.passed is True
