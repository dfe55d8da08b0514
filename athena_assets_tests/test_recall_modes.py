"""One table of recall modes: the CLI's choices and default, the MCP tool's schema and the Python API
all derive from `RECALL_MODES`, and the default is the same everywhere."""

from __future__ import annotations

import inspect

import anyio

from athena_assets.api.recall import DEFAULT_MODE, MODES, RECALL_MODES, recall
from athena_assets.cli.main import build_parser
from athena_assets.mcp.server import build_server
from athena_assets.mcp.tools import MemoryTools


def _cli_mode_action():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")  # argparse has no public lookup
    recall_parser = commands.choices["recall"]
    return next(a for a in recall_parser._actions if a.dest == "mode")


def test_the_default_is_hybrid_everywhere() -> None:
    assert DEFAULT_MODE == "hybrid", "the best mode on the recall benchmark (docs/benchmarks.md)"
    assert _cli_mode_action().default == DEFAULT_MODE
    assert inspect.signature(recall).parameters["mode"].default == DEFAULT_MODE
    assert inspect.signature(MemoryTools.recall).parameters["mode"].default == DEFAULT_MODE


def test_cli_and_mcp_offer_exactly_the_table() -> None:
    assert tuple(_cli_mode_action().choices) == MODES == tuple(mode.name for mode in RECALL_MODES)

    async def schema() -> dict:
        tools = await build_server(MemoryTools(app=None)).list_tools()  # type: ignore[arg-type]
        return next(tool for tool in tools if tool.name == "recall").input_schema["properties"]["mode"]

    mode = anyio.run(schema)
    assert mode["enum"] == list(MODES) and mode["default"] == DEFAULT_MODE
    for spec in RECALL_MODES:
        assert spec.description in mode["description"]
