"""`athena mcp` as an assistant meets it: the SDK's own client over stdio and over streamable HTTP,
against the real stack (PostgreSQL + pgvector, the embedding llama-server, the Dagster instance).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from athena_assets_tests.helpers import StackHandle, run_athena
from resources.stack.llama_server import free_port

pytestmark = pytest.mark.timeout(600)
ATHENA = str(Path(sys.executable).with_name("athena"))
TOOLS = {"remember", "recall", "patterns", "context"}


def _stdio(stack: StackHandle) -> StdioServerParameters:
    return StdioServerParameters(command=ATHENA, args=["mcp"], env=stack.environ())


def _payload(result: Any) -> Any:
    """The JSON a tool returned (its structured content), or the error text when it failed."""
    if result.is_error:
        return " ".join(part.text for part in result.content)
    content = result.structured_content
    return content["result"] if isinstance(content, dict) and set(content) == {"result"} else content


def _inbox_lines(stack: StackHandle, session: str) -> list[dict[str, Any]]:
    rows = []
    for path in (stack.settings.home / "inbox").glob("remembered-*.jsonl"):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row.get("session_id") == session]


def test_stdio_tools_remember_then_recall_before_and_after_a_backfill(stack: StackHandle) -> None:
    session = f"mcp-{uuid.uuid4().hex[:8]}"
    fact = f"the staging redis of project {session} listens on port 6391"

    async def scenario() -> dict[str, Any]:
        async with Client(_stdio(stack), read_timeout_seconds=120) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            remembered = _payload(
                await client.call_tool(
                    "remember",
                    {
                        "content": fact,
                        "event_type": "fact",
                        "session_id": session,
                        "metadata": {"repo": session},
                    },
                )
            )
            noise = [
                _payload(await client.call_tool("remember", {"content": text, "session_id": session}))
                for text in ("lunch was late today", "renamed a variable in the sensor tests")
            ]
            question = "Which port does the staging cache listen on?"
            scoped = _payload(
                await client.call_tool("recall", {"query": question, "k": 3, "session_id": session})
            )
            by_repo = _payload(
                await client.call_tool("recall", {"query": question, "where": {"repo": session}})
            )
            unscoped = _payload(await client.call_tool("recall", {"query": f"redis {session} port", "k": 5}))
            return {"tools": tools, "remembered": remembered, "noise": noise, "scoped": scoped,
                    "by_repo": by_repo, "unscoped": unscoped}  # fmt: skip

    got = asyncio.run(scenario())
    assert set(got["tools"]) == TOOLS
    for name, tool in got["tools"].items():
        assert tool.description and len(tool.description) > 40, name
        assert tool.input_schema["type"] == "object"
    assert {"query", "k", "mode", "session_id", "since", "where"} <= set(
        got["tools"]["recall"].input_schema["properties"]
    )
    event_id = got["remembered"]["id"]
    assert got["remembered"]["recallable"] is True
    # Scoped to the session, the fact is first among its three events, before any backfill.
    assert got["scoped"][0]["event_id"] == event_id
    assert {hit["session_id"] for hit in got["scoped"]} == {session}
    assert [hit["event_id"] for hit in got["by_repo"]] == [event_id]
    assert event_id in [hit["event_id"] for hit in got["unscoped"]]
    assert _inbox_lines(stack, session)[0]["content"] == fact

    day = got["remembered"]["day"]
    backfilled = run_athena(stack, "backfill", "--from", day, "--to", day)
    assert backfilled.returncode == 0, backfilled.stdout + backfilled.stderr

    async def again() -> Any:
        async with Client(_stdio(stack), read_timeout_seconds=120) as client:
            return _payload(
                await client.call_tool("recall", {"query": "staging redis port", "session_id": session})
            )

    after = asyncio.run(again())
    assert [hit["event_id"] for hit in after].count(event_id) == 1
    assert after[0]["event_id"] == event_id


def test_bad_input_is_a_clear_tool_error_and_stores_nothing(stack: StackHandle) -> None:
    session = f"bad-{uuid.uuid4().hex[:8]}"
    cases = {
        "empty content": (
            "remember",
            {"content": "   ", "session_id": session},
            "content is missing or empty",
        ),
        "zone-less time": (
            "remember",
            {"content": "x", "session_id": session, "occurred_at": "2026-11-20T10:00:00"},
            "time zone",
        ),
        "2 MB content": ("remember", {"content": "a" * 2_000_000, "session_id": session}, "byte limit"),
        "k of the wrong type": (
            "recall",
            {"query": "x", "k": "five"},
            "k\n  Input should be a valid integer",
        ),
        "unknown filter": (
            "recall",
            {"query": "x", "project": "athena"},
            "project\n  Extra inputs are not permitted",
        ),
        "zone-less since": ("recall", {"query": "x", "since": "2026-11-20T10:00:00"}, "no time zone"),
        "bad mode": (
            "recall",
            {"query": "x", "mode": "fuzzy"},
            "Input should be 'hybrid', 'vector' or 'text'",
        ),
    }

    async def scenario() -> dict[str, Any]:
        async with Client(_stdio(stack), read_timeout_seconds=120) as client:
            return {
                name: await client.call_tool(tool, arguments) for name, (tool, arguments, _) in cases.items()
            }

    results = asyncio.run(scenario())
    for name, result in results.items():
        assert result.is_error, name
        assert cases[name][2] in _payload(result), (name, _payload(result))
    assert _inbox_lines(stack, session) == []


@contextmanager
def _http_server(stack: StackHandle, token: str | None) -> Iterator[str]:
    port = free_port()
    env = {key: value for key, value in stack.environ().items() if key != "ATHENA_MCP_TOKEN"}
    if token:
        env["ATHENA_MCP_TOKEN"] = token
    process = subprocess.Popen(
        [ATHENA, "mcp", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(f"{base}/tools/recall/execute", json={}, timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"athena mcp --http did not start: {output}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_http_transport_the_seed_tools_and_the_token(stack: StackHandle) -> None:
    token = uuid.uuid4().hex
    session = f"http-{uuid.uuid4().hex[:8]}"
    with _http_server(stack, token) as base:
        refused = httpx.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401
        assert httpx.post(f"{base}/tools/recall/execute", json={"query": "x"}).status_code == 401
        headers = {"Authorization": f"Bearer {token}"}

        async def scenario() -> tuple[set[str], Any]:
            async with (
                httpx2.AsyncClient(headers=headers, timeout=120) as http,
                Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
            ):
                names = {tool.name for tool in (await client.list_tools()).tools}
                fact = f"decided that {session} deploys only on Tuesdays"
                await client.call_tool("remember", {"content": fact, "session_id": session})
                hits = await client.call_tool("recall", {"query": "when do we deploy", "session_id": session})
                return names, _payload(hits)

        names, hits = asyncio.run(scenario())
        assert names == TOOLS
        assert "Tuesdays" in hits[0]["content"]

        # The seed's JSON tools, with its field names.
        seed = httpx.post(
            f"{base}/tools/remember/execute",
            headers=headers,
            json={
                "content": f"{session}: prefer small commits",
                "memory_type": "preference",
                "session_id": session,
            },
        )
        assert seed.status_code == 200 and seed.json()["success"] is True
        seed_id = seed.json()["data"]["id"]
        recalled = httpx.post(
            f"{base}/tools/recall/execute",
            headers=headers,
            json={"query": "small commits", "k": 5, "session_id": session},
        ).json()
        assert recalled["success"] is True and recalled["data"][0]["event_id"] == seed_id
        assert recalled["data"][0]["event_type"] == "preference"
        bad = httpx.post(f"{base}/tools/recall/execute", headers=headers, json={"query": "x", "top": 3})
        assert bad.status_code == 400 and "unknown argument(s) top" in bad.json()["error"]


def test_http_off_loopback_without_a_token_is_refused(stack: StackHandle) -> None:
    env = {key: value for key, value in stack.environ().items() if key != "ATHENA_MCP_TOKEN"}
    result = subprocess.run(
        [ATHENA, "mcp", "--http", "--host", "0.0.0.0", "--port", str(free_port())],  # noqa: S104 - refused
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "ATHENA_MCP_TOKEN" in result.stderr


def test_two_clients_remembering_at_once_lose_and_duplicate_nothing(stack: StackHandle) -> None:
    session = f"busy-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC).replace(microsecond=0)

    async def client_run(name: str) -> list[str]:
        async with Client(_stdio(stack), read_timeout_seconds=120) as client:
            ids = []
            for number in range(10):
                arguments = {
                    "content": f"{name} note {number}", "session_id": session,
                    "occurred_at": at.isoformat(),
                }  # fmt: skip
                ids.append(_payload(await client.call_tool("remember", arguments))["id"])
            # The same event again: idempotent on its id.
            again = _payload(await client.call_tool("remember", arguments))["id"]
            assert again == ids[-1]
            return ids

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(client_run("alpha"), client_run("beta")))

    first, second = asyncio.run(both())
    assert len(set(first) | set(second)) == 20
    lines = _inbox_lines(stack, session)
    assert sorted(row["content"] for row in lines) == sorted(
        [f"alpha note {n}" for n in range(10)] + [f"beta note {n}" for n in range(10)]
    )
    assert (stack.settings.home / "inbox" / f"remembered-{at.date().isoformat()}.jsonl").exists()
