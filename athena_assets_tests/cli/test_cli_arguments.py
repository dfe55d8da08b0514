"""Tier (b): the `athena` command line reads what a user types, and says what is wrong before it
connects to anything."""

import pytest

from athena_assets.cli.backfill_args import backfill_assets
from athena_assets.cli.main import build_parser

DAYS = ["backfill", "--from", "2026-11-01", "--to", "2026-11-02"]


@pytest.mark.parametrize(
    "typed",
    [
        ["--assets", "episodic_events,event_embeddings"],
        ["--assets", "episodic_events", "event_embeddings"],
        ["--assets", "episodic_events, event_embeddings,", "episodic_events"],
    ],
)
def test_backfill_assets_are_separated_by_commas_or_spaces(typed: list[str]) -> None:
    args = build_parser().parse_args(DAYS + typed)
    assert backfill_assets(args) == ("episodic_events", "event_embeddings")


def test_backfill_without_assets_loads_and_embeds_events_only() -> None:
    assert backfill_assets(build_parser().parse_args(DAYS)) == ("episodic_events", "event_embeddings")


def test_an_unknown_asset_is_refused_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*DAYS, "--assets", "episodic_events,embeddings"])
    error = capsys.readouterr().err
    assert "unknown asset embeddings" in error and "event_embeddings" in error


def test_patterns_read_as_of_a_day_or_with_replaced_ones_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["patterns", "--as-of", "2026-11-03", "--json"])
    assert (args.as_of.isoformat(), args.include_superseded) == ("2026-11-03", False)
    assert build_parser().parse_args(["patterns", "--include-superseded"]).include_superseded
    with pytest.raises(SystemExit):
        build_parser().parse_args(["patterns", "--as-of", "2026-11-03", "--include-superseded"])
    assert "not allowed with argument --as-of" in capsys.readouterr().err
