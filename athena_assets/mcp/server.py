"""`athena mcp`: the memory served over the Model Context Protocol (the official `mcp` SDK).

stdio for an assistant on this machine; `--http` for the streamable HTTP transport at `/mcp`, bound to
127.0.0.1 unless another address is asked for, and then only with a bearer token (`ATHENA_MCP_TOKEN`).
The HTTP server also answers the seed system's JSON tools (`POST /tools/remember/execute`,
`POST /tools/recall/execute`, see `seed_http_tools.py`) behind the same token.

The tools are thin: validation and work live in `tools.py`; blocking work runs in a worker thread so
one slow call does not hold the others up.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field
from starlette.types import ASGIApp, Receive, Scope, Send

from athena_assets.api.recall import DEFAULT_MODE, MAX_K, MODES, RECALL_MODES
from athena_assets.mcp.seed_http_tools import seed_routes
from athena_assets.mcp.tools import MemoryTools

INSTRUCTIONS = (
    "Long-term memory of this assistant. Call `remember` when the user states a preference, a decision, "
    "an error and its fix, or anything worth knowing in a later session; call `recall` before answering "
    "a question that earlier sessions may have answered, scoped to the project (`where`) or session "
    "when you know it. `patterns` lists what was learnt across many events; `context` gives the "
    "compressed summary of a day."
)
Source = Annotated[str | None, Field(description="Where the event came from, e.g. claude-code.")]
Session = Annotated[str | None, Field(description="The conversation or session id.")]
EventType = Annotated[
    str | None, Field(description="The kind of event: error, fix, decision, preference, command, note...")
]
Where = Annotated[
    dict[str, str | int | float | bool] | None,
    Field(description='Metadata the events must contain, e.g. {"repo": "athena"}.'),
]
Mode = Annotated[
    Literal[MODES],  # type: ignore[valid-type]  # the modes table, not a literal list: one place to add one
    Field(description="; ".join(f"{mode.name}: {mode.description}" for mode in RECALL_MODES)),
]
T = TypeVar("T")


async def _run(call: Callable[[], T]) -> T:
    """Run a blocking tool body in a worker thread; a bad input becomes the tool error the model reads."""
    try:
        return await anyio.to_thread.run_sync(call)
    except ValueError as err:
        raise ToolError(str(err)) from None


def build_server(tools: MemoryTools) -> MCPServer:
    """The MCP server with the memory tools registered."""
    server = MCPServer(name="athena-memory", instructions=INSTRUCTIONS)

    @server.tool()
    async def remember(
        content: Annotated[str, Field(description="What happened or was learnt, in plain words.")],
        event_type: EventType = None,
        source: Source = None,
        session_id: Session = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description='Extra fields, e.g. {"repo": "athena"}.')
        ] = None,
        occurred_at: Annotated[
            str | None, Field(description="When it happened, ISO 8601 with a zone; default: now.")
        ] = None,
    ) -> dict[str, Any]:
        """Store one event in long-term memory (durably, before returning) and return its id.
        Recall finds it at once; nightly consolidation turns recurring events into patterns."""
        call = partial(tools.remember, content, event_type, source, session_id, metadata, occurred_at)
        return await _run(call)

    @server.tool()
    async def recall(
        query: Annotated[str, Field(description="What to look for: a question or keywords.")],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many events to return.")] = 5,
        mode: Mode = DEFAULT_MODE,
        source: Source = None,
        session_id: Session = None,
        event_type: EventType = None,
        since: Annotated[str | None, Field(description="Only events at or after this day or time.")] = None,
        until: Annotated[str | None, Field(description="Only events up to this day or time.")] = None,
        where: Where = None,
    ) -> list[dict[str, Any]]:
        """The stored events most relevant to `query`, best first, optionally scoped by source, session,
        type, time range and metadata. Includes events remembered moments ago."""
        call = partial(tools.recall, query, k, mode, source, session_id, event_type, since, until, where)
        return await _run(call)

    @server.tool()
    async def patterns(
        since: Annotated[str | None, Field(description="Only patterns seen on or after this day.")] = None,
        kind: Annotated[
            str | None, Field(description="procedure, fact, preference, problem-solution, pitfall, ...")
        ] = None,
        source: Source = None,
        session_id: Session = None,
        event_type: EventType = None,
        where: Where = None,
        as_of: Annotated[
            str | None,
            Field(description="What was current at the end of this day, e.g. 2026-11-20; default: now."),
        ] = None,
        include_superseded: Annotated[
            bool, Field(description="Also list patterns a later one replaced (see valid_to, superseded_by).")
        ] = False,
    ) -> list[dict[str, Any]]:
        """Knowledge consolidated from many events (title, kind, description, support), each with the
        events that are its evidence; scoped patterns have evidence in the scope. Only current knowledge
        unless asked: a replaced pattern carries valid_from, valid_to and superseded_by."""
        call = partial(
            tools.patterns, since, kind, source, session_id, event_type, where, as_of, include_superseded
        )
        return await _run(call)

    @server.tool()
    async def context(
        day: Annotated[
            str | None, Field(description="The day, e.g. 2026-11-20; default: the latest.")
        ] = None,
    ) -> dict[str, Any]:
        """The compressed summary of what the memory knew at the end of a day, ready to put in a prompt,
        with its token counts and savings."""
        return await _run(partial(tools.context, day))

    _forbid_unknown_arguments(server)
    return server


def _forbid_unknown_arguments(server: MCPServer) -> None:
    """Make every tool refuse arguments it does not know (a misspelt filter must not silently widen a
    recall to everything)."""
    for tool in server._tool_manager.list_tools():  # the SDK has no public hook for this
        model = tool.fn_metadata.arg_model
        model.model_config["extra"] = "forbid"
        model.model_rebuild(force=True)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerToken:
    """ASGI middleware: every request must carry `Authorization: Bearer <token>` (compared in constant
    time); others get 401 without reaching the app."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                body = b'{"error": "missing or wrong bearer token (see ATHENA_MCP_TOKEN)"}'
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(tools: MemoryTools, token: str | None, host: str) -> ASGIApp:
    """The streamable HTTP app (`/mcp`) plus the seed's JSON tools, behind the token when one is set."""
    server = build_server(tools)
    for path, handler in seed_routes(tools):
        server.custom_route(path, methods=["POST"])(handler)
    app: ASGIApp = server.streamable_http_app(host=host, stateless_http=True, json_response=True)
    return BearerToken(app, token) if token else app


def serve_stdio(tools: MemoryTools) -> None:
    """Serve the tools over stdio until the client closes the pipe."""
    build_server(tools).run("stdio")


def serve_http(tools: MemoryTools, host: str, port: int, token: str | None) -> None:
    """Serve over streamable HTTP; an address other than loopback needs a token."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"--host {host} exposes the memory beyond this machine; set ATHENA_MCP_TOKEN to a long random "
            "secret first (clients then send Authorization: Bearer <token>)"
        )
    uvicorn.run(http_app(tools, token, host), host=host, port=port, log_level="warning")
