"""Plain JSON-RPC to a NEAR node, for the calls py-near does not make: ``block`` by
height, ``chunk`` and ``EXPERIMENTAL_tx_status`` (the chain source, chain/source.py).

Why not py-near here: py-near 1.2 has no ``chunk`` or ``EXPERIMENTAL_tx_status`` call, and
it retries and rotates endpoints on its own terms; the chain source needs to tell a
transient failure (network, timeout, HTTP 429 or 5xx, the node's ``TIMEOUT_ERROR`` or
``INTERNAL_ERROR``: wait and ask again) from a permanent one (the node lacks the block or
the transaction: waiting will not help, the operator must point it at an archival node),
and to honour a rate limit's ``Retry-After``. One keep-alive HTTP connection (httpx).

Errors follow NEAR's "RPC Errors" page (docs.near.org/api/rpc/errors): ``error.name`` is
the kind (``HANDLER_ERROR``, ``REQUEST_VALIDATION_ERROR``, ``INTERNAL_ERROR``) and
``error.cause.name`` the case (``UNKNOWN_BLOCK``, ``TIMEOUT_ERROR``...).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx

from chain.client import ChainUnavailable

__all__ = ["TRANSIENT_CAUSES", "JsonRpc", "RateLimited", "RpcError"]

# Causes worth asking again: the node is busy, syncing, or the answer is not final yet.
TRANSIENT_CAUSES = frozenset(
    {"TIMEOUT_ERROR", "INTERNAL_ERROR", "NO_SYNCED_BLOCKS", "NOT_SYNCED_YET"}
)


class RpcError(RuntimeError):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.error = error
        self.name = str(error.get("name") or "")
        cause = error.get("cause")
        self.cause = str(cause.get("name")) if isinstance(cause, dict) else ""
        detail = error.get("data") or error.get("message") or ""
        super().__init__(f"{method}: {self.cause or self.name or 'error'}: {detail}")

    @property
    def transient(self) -> bool:
        return self.cause in TRANSIENT_CAUSES or (self.name == "INTERNAL_ERROR" and not self.cause)


class RateLimited(ChainUnavailable):
    """HTTP 429: the provider asks us to slow down, for ``retry_after`` seconds if it
    said."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JsonRpc:
    """``call(method, params)``: the ``result``, or RpcError / ChainUnavailable."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._ids = itertools.count(1)
        self._http = httpx.Client(timeout=timeout, headers={"User-Agent": "renown"})

    def call(self, method: str, params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise ChainUnavailable(f"NEAR RPC {self.url} unreachable: {exc!r}") from exc
        if response.status_code == 429:
            raise RateLimited(
                f"NEAR RPC {self.url}: rate limited (HTTP 429)",
                _seconds(response.headers.get("Retry-After")),
            )
        if response.status_code >= 500 or response.status_code == 408:
            # 5xx: the node or its proxy failed; 408: some nodes and proxies answer a
            # request that timed out (a wait_until that took too long) this way.
            raise ChainUnavailable(f"NEAR RPC {self.url}: HTTP {response.status_code}")
        if response.status_code != 200:
            # 401/403/404...: a wrong URL or a provider that wants a key: not worth retrying.
            raise RpcError(
                method,
                {"name": "HTTP", "message": f"HTTP {response.status_code}: {response.text[:200]}"},
            )
        try:
            answer = response.json()
        except json.JSONDecodeError as exc:
            raise ChainUnavailable(f"NEAR RPC {self.url}: not JSON: {exc}") from exc
        if not isinstance(answer, dict):
            raise ChainUnavailable(f"NEAR RPC {self.url}: unexpected answer {answer!r:.200}")
        if answer.get("error") is not None:
            error = answer["error"]
            raise RpcError(method, error if isinstance(error, dict) else {"message": error})
        return answer.get("result")

    def close(self) -> None:
        self._http.close()


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare from RPC providers; back off as usual
        return None
