"""An account's full-access keys, read from a NEAR node (the API's NEP-413 key check).

One ``query`` of type ``view_access_key_list`` through py-near's :class:`JsonProvider`:
the client library the publisher's :class:`chain.client.NearRpcClient` sits on, so the
key check reaches the node the way the publisher does (the same ``near_rpc_url``, with
py-near's handling of an API key written into the URL, ``https://KEY@host``), and the
tests' JSON-RPC double (tests/near_rpc_double.py) answers both. A plain JSON-RPC POST
would be a few lines shorter, but a second HTTP client to the node with its own idea of
the URL and of the node's errors is what this module avoids. The look-up is not a
:class:`chain.client.ChainClient` method: that seam is one contract's views and calls,
and reading any account's keys needs neither a contract nor a signer.

Why every call asks the node (no cache): a key the owner deletes must stop working at
once; a NEP-413 sign-in is rare (an appeal, a look at one's own flags), so a request to
the node each time costs little.

Errors: an account the node does not know has no keys (an empty set, not an error); a
node that does not answer in ``timeout`` seconds, refuses the connection, answers HTTP
errors or reports that it cannot serve the query now (not synced, shard unavailable, an
internal error) raises :class:`chain.client.ChainUnavailable`; retrying later is safe.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chain.client import ChainUnavailable

__all__ = ["DEFAULT_TIMEOUT_S", "fetch_full_access_keys", "full_access_keys"]

#: How long one look-up may take: an HTTP request waits on it (py-near's own default is
#: 600 s, made for waiting on transactions).
DEFAULT_TIMEOUT_S = 5.0
FULL_ACCESS = "FullAccess"


async def fetch_full_access_keys(
    rpc_url: str, account_id: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> set[str]:
    """The account's full-access public keys as NEAR writes them (``ed25519:<base58>``),
    at the node's latest final block; for code already running an event loop."""
    from py_near.exceptions.exceptions import RpcEmptyResponse, RpcNotAvailableError
    from py_near.exceptions.provider import InvalidAccount, JsonProviderError, UnknownAccount
    from py_near.providers import JsonProvider

    provider = JsonProvider(rpc_url, allow_broadcast=False, timeout=timeout)
    try:
        result = await provider.get_access_key_list(account_id, finality="final")
    except (UnknownAccount, InvalidAccount):
        return set()  # no such account: it has no keys
    except (RpcEmptyResponse, RpcNotAvailableError) as exc:
        # py-near logs the cause (refused, timed out, not JSON) and raises "empty response".
        raise ChainUnavailable(
            f"NEAR RPC {rpc_url} did not answer within {timeout:g} s (refused, timed out "
            f"or unreadable: {exc})"
        ) from exc
    except JsonProviderError as exc:
        # Not synced, shard unavailable, an internal error, an HTTP error status...
        name = type(exc).__name__
        raise ChainUnavailable(f"NEAR RPC {rpc_url}: {name}: {_error_text(exc)}") from exc
    except (OSError, TimeoutError) as exc:
        raise ChainUnavailable(f"NEAR RPC {rpc_url} unreachable: {exc}") from exc
    finally:
        if provider._client is not None:  # created by its first request
            await provider.shutdown()
    return _full_access(result)


def full_access_keys(
    rpc_url: str, account_id: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> set[str]:
    """:func:`fetch_full_access_keys` for synchronous code (a private event loop per call;
    not to be called from a running event loop)."""
    return asyncio.run(fetch_full_access_keys(rpc_url, account_id, timeout=timeout))


def _full_access(result: Any) -> set[str]:
    """The public keys with ``permission: "FullAccess"`` in a ``view_access_key_list``
    answer (function-call keys carry ``{"FunctionCall": {...}}``)."""
    if not isinstance(result, dict) or not isinstance(result.get("keys"), list):
        raise ChainUnavailable(f"unexpected view_access_key_list answer: {result!r:.200}")
    keys: set[str] = set()
    for entry in result["keys"]:
        if not isinstance(entry, dict):
            continue
        access = entry.get("access_key")
        if isinstance(access, dict) and access.get("permission") == FULL_ACCESS:
            keys.add(str(entry.get("public_key")))
    return keys


def _error_text(exc: Exception) -> str:
    error_json = getattr(exc, "error_json", None)
    if isinstance(error_json, dict):
        cause = error_json.get("cause")
        name = cause.get("name") if isinstance(cause, dict) else None
        return f"{name or 'error'}: {str(error_json.get('data'))[:200]}"
    return str(exc)[:200]
