"""What the llama.cpp embedding and reasoning resources share: configuration (URLs, API key, timeouts,
retries, concurrency), the lifecycle of their HTTP client, health probes, token counting and metrics.

Inside a Dagster run the client is made in `setup_for_execution` and closed in
`teardown_after_execution`. From plain Python the first call opens it and `close()` (or a `with` block)
closes it, so the same object serves scripts, notebooks and the CLI.
"""

from __future__ import annotations

import threading
from typing import Any, Self

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.call_metrics import MetricsCollector, model_metrics
from resources.llamacpp.http import LlamaCppHttp, LlamaCppResponseError, RetryPolicy, token_ids


class LlamaCppResourceBase(dg.ConfigurableResource):
    """Shared configuration and client lifecycle of a llama-server role (one or more replicas)."""

    urls: list[str] = Field(
        description="Base URLs of the llama-server replicas of this role; requests are spread round-robin."
    )
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="Bearer key of the servers (wire it as dg.EnvVar('LLAMACPP_API_KEY')); never logged.",
    )
    timeout_s: float = Field(default=120.0, description="Seconds to wait for one answer before giving up.")
    connect_timeout_s: float = Field(default=5.0, description="Seconds to wait for a TCP connection.")
    max_retries: int = Field(default=5, description="Retries of an unreachable or loading server.")
    retry_budget_s: float = Field(
        default=30.0, description="Upper bound on the total time spent retrying one request."
    )
    concurrency: int = Field(default=4, description="Requests in flight at once (batched calls).")

    _http: LlamaCppHttp | None = PrivateAttr(default=None)
    _checked: bool = PrivateAttr(default=False)
    _open_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _check_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _metrics: MetricsCollector = PrivateAttr(default_factory=lambda: model_metrics)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Open the client and check the servers at the start of a run."""
        self.open()
        if context.log is not None:
            context.log.info(f"{type(self).__name__}: {self.describe()}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the client at the end of a run."""
        self.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _client(self) -> LlamaCppHttp:
        """The HTTP client, made on first use, without the start-up checks (probes use this)."""
        with self._open_lock:
            if self._http is None:
                self._http = LlamaCppHttp(
                    self.urls,
                    api_key=self.api_key,
                    timeout_s=self.timeout_s,
                    connect_timeout_s=self.connect_timeout_s,
                    retry=RetryPolicy(max_retries=self.max_retries, budget_s=self.retry_budget_s),
                    max_connections=max(4, self.concurrency * 2),
                )
            return self._http

    def open(self) -> Self:
        """Make the HTTP client and run the role's start-up checks once (idempotent, thread-safe)."""
        http = self._client()
        with self._check_lock:
            if not self._checked:
                self._on_open(http)
                self._checked = True
        return self

    def close(self) -> None:
        """Close the HTTP client; a later call opens a new one (and checks the servers again)."""
        with self._open_lock:
            if self._http is not None:
                self._http.close()
                self._http = None
            self._checked = False

    def _on_open(self, http: LlamaCppHttp) -> None:
        """Role-specific start-up checks, run once per opened client before the first model call."""

    def describe(self) -> str:
        """One line for the run log: the replicas (never the key)."""
        return f"{len(self.urls)} replica(s): {', '.join(self.urls)}"

    @property
    def http(self) -> LlamaCppHttp:
        """The HTTP client for model calls: opened and checked on first use outside Dagster."""
        self.open()
        return self._client()

    @property
    def metrics(self) -> MetricsCollector:
        """The collector this resource records every call into."""
        return self._metrics

    def use_metrics(self, collector: MetricsCollector) -> Self:
        """Record into `collector` instead of the process-wide `model_metrics`; returns self."""
        self._metrics = collector
        return self

    @property
    def requests_per_url(self) -> dict[str, int]:
        """How many HTTP requests (retries included) went to each replica since the client was opened."""
        return dict(self._http.requests_per_url) if self._http is not None else {}

    def replica_health(self) -> dict[str, bool]:
        """{url: answers /health with 200 right now} for every replica."""
        http = self._client()
        return {url: http.healthy(url) for url in self.urls}

    def check_health(self) -> bool:
        """Whether every replica of this role is up and has its model loaded."""
        return all(self.replica_health().values())

    def count_tokens(self, text: str, *, add_special: bool = True) -> int:
        """Tokens of `text` as the server's tokenizer counts them (`/tokenize`).

        With `add_special` the BOS/CLS/SEP tokens the server adds to a whole input are counted too, which
        is what an embedding's `tokens` reports.
        """
        body = self._client().post("/tokenize", {"content": text, "add_special": add_special}).body
        return len(token_ids(body))

    def server_meta(self, url: str | None = None) -> dict[str, Any]:
        """The model metadata of `/v1/models` (n_embd, n_ctx, n_ctx_train, ...) of one replica."""
        body = self._client().get("/v1/models", url=url).body
        try:
            meta = body["data"][0].get("meta") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise LlamaCppResponseError(f"/v1/models of {url or self.urls[0]} has no model entry") from None
        return dict(meta)
