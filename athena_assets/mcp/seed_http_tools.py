"""The seed system's HTTP tools, so its users' scripts keep working against `athena mcp --http`:

    POST /tools/remember/execute  {"content": "...", "memory_type": "fact"}
        -> {"success": true, "data": {"id": ...}}
    POST /tools/recall/execute    {"query": "...", "k": 5}
        -> {"success": true, "data": [hits]}

The bodies take the same fields as the MCP tools (`memory_type` is the seed's name for `event_type`); a
bad body gets 400 with `{"success": false, "error": "..."}` naming the field and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from athena_assets.api.recall import SCOPE_FIELDS
from athena_assets.mcp.tools import MemoryTools

Handler = Callable[[Request], Awaitable[Response]]
_REMEMBER_FIELDS = ("content", "event_type", "source", "session_id", "metadata", "occurred_at")
_RECALL_FIELDS = ("query", "k", "mode", *SCOPE_FIELDS)


async def _arguments(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"the body is not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object of the tool's arguments")
    if "memory_type" in body:
        body.setdefault("event_type", body.pop("memory_type"))
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(unknown)}; this tool takes {', '.join(allowed)}")
    return body


def _endpoint(call: Callable[..., Any], allowed: tuple[str, ...]) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            arguments = await _arguments(request, allowed)
            data = await anyio.to_thread.run_sync(lambda: call(**arguments))
        except (ValueError, TypeError) as err:
            return JSONResponse({"success": False, "error": str(err)}, status_code=400)
        return JSONResponse({"success": True, "data": data})

    return handle


def seed_routes(tools: MemoryTools) -> list[tuple[str, Handler]]:
    """(path, handler) of each seed tool."""
    return [
        ("/tools/remember/execute", _endpoint(tools.remember, _REMEMBER_FIELDS)),
        ("/tools/recall/execute", _endpoint(tools.recall, _RECALL_FIELDS)),
    ]
