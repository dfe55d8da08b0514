"""The HTTP layer under the llama.cpp resources: one keep-alive client, replica round-robin, bounded
retries with exponential backoff and jitter, and typed errors that say what to do.

Retried: connection failures and "still loading / overloaded" answers (HTTP 502, 503, 504, 429), each
retry on the next replica, until `max_retries` or the `retry_budget_s` total time runs out; then
`LlamaCppUnavailableError` names the URLs. Resending is safe: every llama-server call made here is
idempotent (embeddings, tokenization, generation). Never retried: 401/403 (`LlamaCppAuthError`),
rejected input (`LlamaCppInputError`) and read timeouts (a slow answer is load; resending adds load).
The API key is sent as a bearer header and appears in no message, log line or repr.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
AUTH_STATUS = frozenset({401, 403})


class LlamaCppError(RuntimeError):
    """Base class of every error the llama.cpp resources raise."""


class LlamaCppUnavailableError(LlamaCppError):
    """No replica answered (unreachable, still loading, or timed out) within the retry budget."""


class LlamaCppAuthError(LlamaCppError):
    """The server refused the API key (HTTP 401/403)."""


class LlamaCppInputError(LlamaCppError, ValueError):
    """An input cannot be processed (empty, or rejected by the server); the message names which one."""


class LlamaCppResponseError(LlamaCppError):
    """The server answered with something the client cannot use (unexpected status, shape or output)."""


class LlamaCppOutputError(LlamaCppResponseError):
    """Generated text that should be JSON matching a schema is not (truncated, unparsable or invalid)."""


class LlamaCppConfigError(LlamaCppError, ValueError):
    """The configuration and the server disagree (e.g. the embedding width)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before declaring the servers unavailable."""

    max_retries: int = 5
    budget_s: float = 30.0
    backoff_base_s: float = 0.25
    backoff_max_s: float = 4.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): exponential, with jitter.

        Half the delay is fixed and half random ("equal jitter"), so clients that failed together do
        not retry together, yet each still backs off.
        """
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True)
class HttpResult:
    """A successful JSON answer and where it came from."""

    url: str
    body: Any
    latency_ms: float


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", body["error"]))
    return str(body)[:300]


class LlamaCppHttp:
    """A pool of llama-server replicas behind one keep-alive `httpx.Client`.

    Thread-safe: `httpx.Client` is, and the round-robin cursor and request counters take a lock.
    """

    def __init__(
        self,
        urls: list[str] | tuple[str, ...],
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
    ) -> None:
        if not urls:
            raise LlamaCppConfigError(
                "no llama.cpp URL configured; set LLAMACPP_EMBEDDINGS_URL / _REASONING_URL"
            )
        self.urls = tuple(url.rstrip("/") for url in urls)
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._cursor = itertools.cycle(range(len(self.urls)))
        self._lock = threading.Lock()
        self.requests_per_url: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"LlamaCppHttp(urls={list(self.urls)!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def _next_url(self) -> str:
        with self._lock:
            return self.urls[next(self._cursor)]

    def _count(self, url: str) -> None:
        with self._lock:
            self.requests_per_url[url] += 1

    def request(self, method: str, path: str, payload: Any = None, *, url: str | None = None) -> HttpResult:
        """Send one JSON request to the next replica (or to `url`), retrying as the module describes.

        Raises `LlamaCppInputError` for 400/413/422 and for a 500 that blames the input, with the server's
        message; the caller adds which input it was.
        """
        started = time.monotonic()
        failures: list[str] = []
        attempt = 0
        while True:
            target = url or self._next_url()
            self._count(target)
            sent = time.monotonic()
            # A connection attempt never outlives the retry budget, so the bound holds for dead hosts too.
            remaining = self.retry.budget_s - (sent - started)
            timeout = httpx.Timeout(self.timeout_s, connect=max(0.05, min(self.connect_timeout_s, remaining)))
            try:
                response = self._client.request(method, f"{target}{path}", json=payload, timeout=timeout)
            except (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.RemoteProtocolError,
                httpx.ReadError,
            ) as err:
                failures.append(f"{target}: unreachable ({type(err).__name__})")
            except httpx.TimeoutException as err:
                raise LlamaCppUnavailableError(
                    f"{target}{path} did not answer within the timeout ({type(err).__name__}); the server is "
                    "overloaded or the request is too large: raise timeout_s or lower batch_size"
                ) from None
            else:
                latency_ms = (time.monotonic() - sent) * 1000
                status = response.status_code
                if status < 300:
                    try:
                        return HttpResult(target, response.json(), latency_ms)
                    except ValueError:
                        raise LlamaCppResponseError(
                            f"{target}{path} answered HTTP {status} without JSON"
                        ) from None
                if status in AUTH_STATUS:
                    raise LlamaCppAuthError(
                        f"{target} refused the API key (HTTP {status}); set LLAMACPP_API_KEY to the key the "
                        "server was started with (--api-key / --api-key-file)"
                    )
                message = _error_message(response)
                if status in RETRYABLE_STATUS:
                    state = "still loading its model" if status == 503 else f"busy (HTTP {status})"
                    failures.append(f"{target}: {state}")
                elif status in {400, 413, 422} or (status == 500 and "too large" in message):
                    raise LlamaCppInputError(message)
                else:
                    raise LlamaCppResponseError(f"{target}{path} answered HTTP {status}: {message}")
            attempt += 1
            elapsed = time.monotonic() - started
            pause = self.retry.delay(attempt)
            if attempt > self.retry.max_retries or elapsed + pause > self.retry.budget_s:
                raise LlamaCppUnavailableError(
                    f"llama.cpp server(s) {', '.join(self.urls)} unavailable after {attempt} attempt(s) in "
                    f"{elapsed:.1f} s (last: {failures[-1]}); start them with `athena stack up` or check "
                    "LLAMACPP_EMBEDDINGS_URL / LLAMACPP_REASONING_URL"
                )
            time.sleep(pause)

    def post(self, path: str, payload: Any, *, url: str | None = None) -> HttpResult:
        """POST `payload` as JSON (see `request`)."""
        return self.request("POST", path, payload, url=url)

    def get(self, path: str, *, url: str | None = None) -> HttpResult:
        """GET `path` (see `request`)."""
        return self.request("GET", path, url=url)

    def healthy(self, url: str, timeout_s: float = 3.0) -> bool:
        """Whether `url`/health answers 200 now (one attempt, no retries: a probe, not a call)."""
        return server_health(self._client, url, timeout_s)[0]


def server_health(client: httpx.Client, url: str, timeout_s: float) -> tuple[bool, str]:
    """(ready, status) from one GET of `url`/health: "ok", "loading model" (503), "HTTP <code>",
    "no answer within <timeout> s" or "unreachable (<error>)". Every health check of the project is this."""
    try:
        status_code = client.get(f"{url}/health", timeout=timeout_s).status_code
    except httpx.TimeoutException:
        return False, f"no answer within {timeout_s:g} s"
    except httpx.HTTPError as err:
        return False, f"unreachable ({type(err).__name__})"
    if status_code == 200:
        return True, "ok"
    return False, "loading model" if status_code == 503 else f"HTTP {status_code}"


def token_ids(body: Any) -> list[int]:
    """The token ids of a `/tokenize` answer (plain ids or {"id", "piece"} objects)."""
    try:
        tokens = body["tokens"]
        return [token if isinstance(token, int) else int(token["id"]) for token in tokens]
    except (KeyError, TypeError, ValueError):
        raise LlamaCppResponseError("/tokenize answered without a tokens list") from None
