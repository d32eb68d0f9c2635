"""The one seam between Renown and a NEAR node: view calls and function calls.

Everything that talks to NEAR (the publisher, `renown verify`, later the chain source and
the API's NEP-413 key check) goes through :class:`ChainClient`, so tests put a test double
behind it and production puts py-near (:class:`NearRpcClient`) behind it.

Why an explicit :class:`CallOutcome`: py-near does not raise when a contract panics; it
returns a transaction whose status is ``{"Failure": ...}``. A publisher that took "no
exception" for success would record a failed publication as done, so every call result
is turned into ``ok`` / ``error`` here, from the transaction status and every receipt's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

__all__ = [
    "DEFAULT_GAS",
    "CallOutcome",
    "ChainClient",
    "ChainUnavailable",
    "NearRpcClient",
    "ViewError",
    "outcome_of",
]

T = TypeVar("T")
DEFAULT_GAS = 100 * 10**12  # 100 TGas per call, of NEAR's 300 TGas per transaction


class ChainUnavailable(RuntimeError):
    """The RPC endpoint did not answer (network, timeout, HTTP error). Retrying later is
    safe: every publisher step is idempotent and reconciled with the contract's state."""


class ViewError(RuntimeError):
    """A view call reached the contract and failed (a panic, a missing method)."""


@dataclass(frozen=True)
class CallOutcome:
    """What became of one function-call transaction."""

    ok: bool
    tx_hash: str | None
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    value: Any = None


class ChainClient(Protocol):
    """A contract on NEAR, as the publisher and the verifier see it."""

    contract_id: str

    def view(self, method: str, args: dict[str, Any]) -> Any:
        """Call a view method; its JSON result. ChainUnavailable or ViewError on failure."""
        ...

    def call(self, method: str, args: dict[str, Any], *, gas: int = DEFAULT_GAS) -> CallOutcome:
        """Sign and send a function call and wait for its final outcome."""
        ...


def _failure_text(failure: Any) -> str:
    """A readable reason from NEAR's Failure structure, the contract's panic first."""
    try:
        kind = failure["ActionError"]["kind"]
        call = kind.get("FunctionCallError", {})
        if isinstance(call, dict) and "ExecutionError" in call:
            return str(call["ExecutionError"])
        return json.dumps(kind)
    except (KeyError, TypeError, AttributeError):
        return failure if isinstance(failure, str) else json.dumps(failure)


def outcome_of(result: Any) -> CallOutcome:
    """A py-near ``TransactionResult`` as a :class:`CallOutcome`.

    Failed when the transaction status or any receipt's status is a ``Failure``.
    """
    tx_hash = getattr(getattr(result, "transaction", None), "hash", None)
    status = getattr(result, "status", None) or {}
    logs = list(getattr(result, "logs", None) or [])
    if "Failure" in status:
        return CallOutcome(False, tx_hash, _failure_text(status["Failure"]), logs)
    for receipt in getattr(result, "receipt_outcome", None) or []:
        st = getattr(receipt, "status", None) or {}
        if "Failure" in st:
            return CallOutcome(False, tx_hash, _failure_text(st["Failure"]), logs)
    value: Any = None
    raw = status.get("SuccessValue")
    if raw:
        try:
            value = json.loads(base64.b64decode(raw))
        except (ValueError, binascii.Error):
            value = raw
    return CallOutcome(True, tx_hash, None, logs, value)


class NearRpcClient:
    """py-near behind the :class:`ChainClient` seam, for one contract and one signer.

    py-near is asynchronous and Renown's commands are not, so the client owns a private
    event loop. In production the signer's key is a *function-call access key* limited to
    the contract's publishing methods (docs/contract.md): a leaked key can publish but
    cannot move funds or deploy code.
    """

    def __init__(
        self,
        rpc_url: str,
        contract_id: str,
        account_id: str | None = None,
        private_key: str | None = None,
    ) -> None:
        from py_near.account import Account  # only chain commands need py-near

        self.contract_id = contract_id
        self.rpc_url = rpc_url
        self._loop = asyncio.new_event_loop()
        self._account = Account(account_id, private_key, rpc_addr=rpc_url)
        self._started = False

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            if not self._started:
                self._started = True  # its HTTP session exists from here: close() ends it
                self._loop.run_until_complete(self._account.startup())
            return self._loop.run_until_complete(coro)
        except (OSError, TimeoutError) as exc:
            raise ChainUnavailable(f"NEAR RPC {self.rpc_url} unreachable: {exc}") from exc
        except Exception as exc:  # py-near raises aiohttp's and its own types
            name = type(exc).__name__
            # RpcNotAvailableError: py-near's start-up `status` request found no node.
            down = ("Client", "Connection", "Timeout", "RpcEmpty", "RpcNotAvailable")
            if any(k in name for k in down):
                raise ChainUnavailable(f"NEAR RPC {self.rpc_url}: {name}: {exc}") from exc
            raise
        finally:
            coro.close()  # a no-op once it ran; else no "never awaited" warning

    def view(self, method: str, args: dict[str, Any]) -> Any:
        from py_near.account import ViewFunctionError

        try:
            return self._run(self._account.view_function(self.contract_id, method, args)).result
        except ViewFunctionError as exc:
            raise ViewError(f"{self.contract_id}.{method}: {exc}") from exc

    def call(self, method: str, args: dict[str, Any], *, gas: int = DEFAULT_GAS) -> CallOutcome:
        from py_near.exceptions.provider import InvalidTransactionError

        try:
            result = self._run(self._account.function_call(self.contract_id, method, args, gas=gas))
        except InvalidTransactionError as exc:
            # The node refused the transaction before it applied (signature, nonce, a key
            # not allowed this method...): nothing changed on chain, a failed outcome.
            return CallOutcome(False, getattr(exc, "trx_hash", None), _refusal_text(exc))
        except ValueError as exc:
            if "does not exist while viewing" not in str(exc):
                raise
            # py-near's nonce look-up: the signer's key is not a key of the account.
            return CallOutcome(False, None, f"the signing key is not the signer's: {exc}")
        return outcome_of(result)

    def close(self) -> None:
        if self._started:
            self._loop.run_until_complete(self._account.shutdown())
        self._loop.close()


def _refusal_text(exc: Exception) -> str:
    """NEAR's ``INVALID_TRANSACTION`` error as text, e.g. ``InvalidTxError: InvalidNonce
    {"ak_nonce": 7, "tx_nonce": 7}``, from the structured error py-near keeps."""
    error_json = getattr(exc, "error_json", None)
    data = error_json.get("data") if isinstance(error_json, dict) else None
    parts: list[str] = []
    while isinstance(data, dict) and len(data) == 1 and next(iter(data))[:1].isupper():
        key, data = next(iter(data.items()))  # the nested error names, then their fields
        if key != "TxExecutionError":
            parts.append(key)
    if isinstance(data, str):
        parts.append(data)
    elif data:
        parts.append(json.dumps(data, sort_keys=True))
    return "transaction refused by the node: " + (": ".join(parts) or type(exc).__name__)
