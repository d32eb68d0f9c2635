"""TEST DOUBLE: a NEAR JSON-RPC endpoint over the wasm host emulator, for py-near.

A real HTTP JSON-RPC server on a free loopback port (``http.server`` in a thread) that
answers what py-near 1.2.22 asks a NEAR node, with the shapes of NEAR's RPC documentation
(docs.near.org "RPC API": Network ``status``; Block ``block``; Accounts / Contracts and
Access Keys ``query``; Transactions ``broadcast_tx_commit`` / ``send_tx`` / ``tx``;
"RPC Errors"), so that the real py-near client signs real transactions against it and the
real contract wasm runs them in ``tests/near_emulator.py``.

What it models:

* **Accounts and access keys.** Accounts with a balance and ed25519 access keys, full access
  or function call (``receiver_id``, ``method_names``, ``allowance``), each with its nonce.
  A key added by ``AddKey`` starts at nonce ``(block_height - 1) * 10**6``, as NEAR does.
* **Transactions** (``broadcast_tx_commit``, ``send_tx`` with any ``wait_until``): the
  base64 borsh ``SignedTransaction`` is decoded here (``decode_signed_transaction``:
  ``Transaction`` V0 ``{signer_id, public_key, nonce, receiver_id, block_hash, actions}``,
  the actions CreateAccount, DeployContract, FunctionCall, Transfer, Stake, AddKey,
  DeleteKey, DeleteAccount, then the ``Signature``); then, in nearcore's order, refused
  with NEAR's ``INVALID_TRANSACTION`` error (``data: {"TxExecutionError":
  {"InvalidTxError": ...}}``, which py-near raises as its matching exception) when: the
  ed25519 signature over ``sha256(borsh(transaction))`` does not verify (PyNaCl);
  ``block_hash`` is not a block of this chain (``Expired``); more than 300 Tgas is attached
  (``ActionsValidation``); the signer does not exist; the key is not the signer's
  (``AccessKeyNotFound``); the nonce is not greater than the key's (``InvalidNonce``) or is
  beyond ``(height + 1) * 10**6`` (``NonceTooLarge``); the deposits exceed the balance; a
  function-call key is used for anything but one FunctionCall without deposit to its
  receiver and one of its methods (``RequiresFullAccess``, ``DepositWithFunctionCall``,
  ``ReceiverMismatch``, ``MethodNameMismatch``).
* **Execution.** A valid transaction gets the next block (one transaction per block, the
  height +1, the time +1 s), sets the key's nonce, and its actions run as *one receipt*
  with predecessor = signer = the transaction's ``signer_id``: DeployContract and
  FunctionCall go to the emulator, the rest is bookkeeping here; DeployContract, AddKey and
  DeleteKey need signer == receiver (``ActorNoPermission``). The receipt is all or nothing
  for the state kept here (keys, balances, code): an action that fails undoes the earlier
  ones and refunds the deposit, and the result's ``status`` (and the receipt's) is
  ``{"Failure": {"ActionError": {"index": i, "kind": ...}}}``, e.g. ``{"FunctionCallError":
  {"ExecutionError": "Smart contract panicked: ..."}}``; otherwise ``{"SuccessValue":
  base64}``. The answer is a FinalExecutionOutcome (``status``, ``transaction`` with its
  hash = base58 of ``sha256(borsh(transaction))``, ``transaction_outcome``,
  ``receipts_outcome`` with the contract's logs, ``final_execution_status: FINAL``).
  Sending an already applied transaction again returns its recorded outcome without
  applying it twice (nearcore's ``send_tx`` is idempotent); ``tx`` returns it too.
* **Views**: ``query`` ``call_function`` (the result as a list of byte values, a contract
  failure as nearcore's backward-compatible ``result: {"error": "wasm execution failed with
  error: ...", "logs", "block_height", "block_hash"}``), ``view_access_key`` (an unknown key
  the same way, as nearcore does), ``view_access_key_list``, ``view_account``; unknown
  accounts and missing code are ``UNKNOWN_ACCOUNT`` / ``NO_CONTRACT_CODE`` handler errors.
* **Reading the chain** (the chain source, chain/source.py): ``block`` by height, hash or
  ``finality`` (``final`` is ``final_lag`` blocks behind the head; a height that has no
  block is ``UNKNOWN_BLOCK``, as for a height NEAR skipped), with its chunk headers;
  ``chunk`` by ``chunk_id`` (``UNKNOWN_CHUNK`` otherwise); ``EXPERIMENTAL_tx_status``
  (docs.near.org "Transactions: Transaction Status with Receipts": the
  FinalExecutionOutcome plus ``receipts``, each with its ``predecessor_id``). Blocks made
  by :meth:`NearRpcDouble.script_block` carry scripted transactions in ``shards`` chunks:
  each :class:`ScriptedTx` has receipts (:class:`ScriptedReceipt`) that run ``delay``
  blocks after the transaction's block, by a chosen executor, with chosen logs, failed or
  not; a shard listed in ``missing`` produces no chunk and its header repeats the previous
  one (``height_included`` below the block's height), as NEAR's block does. The status of
  a transaction whose receipts ran in blocks that are not final yet (or not produced yet)
  is nearcore's ``TIMEOUT_ERROR`` for ``wait_until: FINAL``. ``block_requests`` records
  each block height asked for beside the final height at that moment.
* **Fault injection and inspection**: ``faults[method]`` is a queue of failures the next
  requests for ``method`` meet: ``"429"`` (HTTP 429 with ``Retry-After: 0``), ``"500"``
  (HTTP 500), ``"timeout"`` (JSON-RPC ``TIMEOUT_ERROR``); ``lagging[height]``: the next n
  requests for that block by height answer ``UNKNOWN_BLOCK``; ``drop_after`` drops the HTTP
  connection, without an answer, right after a chosen transaction was applied (the client
  sees the node vanish mid-call, like a publisher killed after its transaction landed);
  ``applied`` lists every applied transaction, ``refused`` every refused one.

What it does not model: gas and fees (nothing is charged, ``gas_burnt`` is 0, allowances
are never spent; the only link to gas is the emulator's: a call's attached gas, 300 Tgas for
a view, caps the wasm instructions it may run, and the count is kept in ``applied``);
storage staking (no balance is locked for state); cross-contract calls, promises
and refund receipts (one receipt per transaction, executed in the transaction's block);
sharding, validators, forks, and finality (every block is final at once: ``finality`` and
``wait_until`` are accepted and ignored); queries at a past block (``block_id`` other than
the latest is ``UNKNOWN_BLOCK``, like a node that garbage-collected it); transaction V1,
delegate actions and global contracts (a ``PARSE_ERROR``); Stake and DeleteAccount
(decoded, but running them fails the receipt as not modelled); the account-id rules beyond
CreateAccount of a direct sub-account. When a receipt fails, the emulator's contract
storage written by an earlier FunctionCall of that receipt is not rolled back (the state
here is, and a DeployContract undone here is no longer called, though the emulator keeps
its code until the next deploy); this contract's tests send no such receipt.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import base58
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "Action",
    "Applied",
    "KeyPair",
    "NearRpcDouble",
    "ScriptedReceipt",
    "ScriptedTx",
    "SignedTx",
    "decode_signed_transaction",
]

CHAIN_ID = "localnet"
NONCE_MULTIPLIER = 1_000_000  # nearcore ACCESS_KEY_NONCE_RANGE_MULTIPLIER
TX_VALIDITY_PERIOD = 86_400  # blocks (mainnet genesis transaction_validity_period)
MAX_PREPAID_GAS = 300 * 10**12  # max_total_prepaid_gas
GENESIS_HEIGHT = 1_000
GENESIS_TIME_NS = 1_700_000_000 * 10**9
EMPTY_CODE_HASH = "11111111111111111111111111111111"  # base58 of 32 zero bytes
NEAR = 10**24


# ----------------------------------------------------------------------------- emulator


class _Outcome(Protocol):
    ok: bool
    return_value: bytes | None
    logs: list[str]
    error: str | None
    instructions: int


class Emulator(Protocol):
    """tests/near_emulator.NearEmulator, as used here."""

    prepaid_gas: int

    def deploy(self, account_id: str, wasm: bytes) -> None: ...

    def call(
        self,
        account_id: str,
        method: str,
        args: bytes,
        *,
        predecessor: str,
        signer: str,
        block_height: int,
        block_timestamp_ns: int,
        view: bool = False,
        attached_deposit: int = 0,
    ) -> _Outcome: ...


# ----------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class KeyPair:
    """An ed25519 key pair in NEAR's text forms (``ed25519:<base58>``)."""

    secret: str  # base58 of seed + public key: what py-near and near-cli take
    public: str
    public_bytes: bytes

    @classmethod
    def generate(cls, seed: bytes | None = None) -> KeyPair:
        sk = SigningKey(seed) if seed is not None else SigningKey.generate()
        pub = bytes(sk.verify_key)
        return cls(
            "ed25519:" + base58.b58encode(bytes(sk) + pub).decode(),
            "ed25519:" + base58.b58encode(pub).decode(),
            pub,
        )


def _pk_text(pk: bytes) -> str:
    return "ed25519:" + base58.b58encode(pk).decode()


def _pk_bytes(text: str) -> bytes:
    return base58.b58decode(text.removeprefix("ed25519:"))


# ----------------------------------------------------------------------------- borsh


class BorshError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BorshError(f"unexpected end of data at byte {self.pos} (wanted {n})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def u128(self) -> int:
        return int.from_bytes(self.take(16), "little")

    def blob(self) -> bytes:
        return self.take(self.u32())

    def string(self) -> str:
        try:
            return self.blob().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BorshError(f"invalid utf-8 string: {exc}") from exc

    def public_key(self) -> tuple[int, bytes]:
        kind = self.u8()
        if kind == 0:
            return 0, self.take(32)
        if kind == 1:  # secp256k1
            return 1, self.take(64)
        raise BorshError(f"unknown public key type {kind}")


@dataclass(frozen=True)
class Action:
    """One decoded action: ``kind`` is NEAR's action name, ``fields`` its content."""

    kind: str
    fields: dict[str, Any]


_ACTIONS = (
    "CreateAccount",
    "DeployContract",
    "FunctionCall",
    "Transfer",
    "Stake",
    "AddKey",
    "DeleteKey",
    "DeleteAccount",
    "Delegate",
    "DeployGlobalContract",
    "UseGlobalContract",
)


def _read_action(r: _Reader) -> Action:
    tag = r.u8()
    if tag == 0:
        return Action("CreateAccount", {})
    if tag == 1:
        return Action("DeployContract", {"code": r.blob()})
    if tag == 2:
        name = r.string()
        args = r.blob()
        return Action(
            "FunctionCall", {"method_name": name, "args": args, "gas": r.u64(), "deposit": r.u128()}
        )
    if tag == 3:
        return Action("Transfer", {"deposit": r.u128()})
    if tag == 4:
        stake = r.u128()
        return Action("Stake", {"stake": stake, "public_key": r.public_key()[1]})
    if tag == 5:
        kind, pk = r.public_key()
        nonce = r.u64()
        perm = r.u8()
        permission: Any
        if perm == 0:
            allowance = r.u128() if r.u8() else None
            receiver = r.string()
            methods = [r.string() for _ in range(r.u32())]
            permission = {
                "FunctionCall": {
                    "allowance": None if allowance is None else str(allowance),
                    "receiver_id": receiver,
                    "method_names": methods,
                }
            }
        elif perm == 1:
            permission = "FullAccess"
        else:
            raise BorshError(f"unknown access key permission {perm}")
        return Action(
            "AddKey", {"key_type": kind, "public_key": pk, "nonce": nonce, "permission": permission}
        )
    if tag == 6:
        kind, pk = r.public_key()
        return Action("DeleteKey", {"key_type": kind, "public_key": pk})
    if tag == 7:
        return Action("DeleteAccount", {"beneficiary_id": r.string()})
    name = _ACTIONS[tag] if tag < len(_ACTIONS) else f"#{tag}"
    raise BorshError(f"action {name} is not decoded by the test double")


@dataclass(frozen=True)
class SignedTx:
    signer_id: str
    key_type: int
    public_key: bytes
    nonce: int
    receiver_id: str
    block_hash: bytes
    actions: list[Action]
    signature_type: int
    signature: bytes
    tx_bytes: bytes  # borsh(Transaction), what is hashed and signed

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.tx_bytes).digest()

    @property
    def hash_b58(self) -> str:
        return base58.b58encode(self.hash).decode()


def decode_signed_transaction(raw: bytes) -> SignedTx:
    """NEAR's borsh ``SignedTransaction`` (``Transaction`` V0, then ``Signature``)."""
    r = _Reader(raw)
    signer = r.string()
    key_type, pk = r.public_key()
    nonce = r.u64()
    receiver = r.string()
    block_hash = r.take(32)
    actions = [_read_action(r) for _ in range(r.u32())]
    tx_end = r.pos
    sig_type = r.u8()
    if sig_type not in (0, 1):
        raise BorshError(f"unknown signature type {sig_type}")
    sig = r.take(64 if sig_type == 0 else 65)
    if r.pos != len(raw):
        raise BorshError(f"{len(raw) - r.pos} bytes left after the signed transaction")
    return SignedTx(
        signer, key_type, pk, nonce, receiver, block_hash, actions, sig_type, sig, raw[:tx_end]
    )


# ----------------------------------------------------------------------------- state


@dataclass
class _Key:
    nonce: int
    permission: Any  # "FullAccess" | {"FunctionCall": {allowance, receiver_id, method_names}}


@dataclass
class _Account:
    balance: int
    keys: dict[bytes, _Key] = field(default_factory=dict)
    code: bytes | None = None

    @property
    def code_hash(self) -> str:
        if self.code is None:
            return EMPTY_CODE_HASH
        return base58.b58encode(hashlib.sha256(self.code).digest()).decode()


@dataclass(frozen=True)
class _Block:
    height: int
    hash: str
    prev_hash: str
    timestamp_ns: int
    chunks: tuple[dict[str, Any], ...] = ()  # ChunkHeaderView per shard (scripted blocks)


@dataclass(frozen=True)
class ScriptedReceipt:
    """One receipt of a scripted transaction: run by ``executor_id`` for
    ``predecessor_id``, ``delay`` blocks after the transaction's block."""

    executor_id: str
    predecessor_id: str
    logs: tuple[str, ...] = ()
    ok: bool = True
    delay: int = 1


@dataclass(frozen=True)
class ScriptedTx:
    signer_id: str
    receiver_id: str
    receipts: tuple[ScriptedReceipt, ...] = ()
    shard: int = 0
    method: str = "act"
    invalid: bool = False  # included in its chunk, then invalid when applied


@dataclass
class _ScriptedRecord:
    tx: ScriptedTx
    hash: str
    block_index: int  # index in NearRpcDouble.blocks of the block that included it


@dataclass(frozen=True)
class Applied:
    """One applied transaction, as the double recorded it."""

    hash: str
    signer_id: str
    receiver_id: str
    actions: tuple[str, ...]  # "FunctionCall:store_scores", "DeployContract", ...
    ok: bool
    error: str | None
    block_height: int
    instructions: int

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(a.split(":", 1)[1] for a in self.actions if a.startswith("FunctionCall:"))


class RpcError(Exception):
    """A JSON-RPC ``error`` object, in NEAR's verror-style structure."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(json.dumps(error))
        self.error = error


def _handler_error(cause: str, info: dict[str, Any], data: Any) -> RpcError:
    return RpcError(
        {
            "name": "HANDLER_ERROR",
            "cause": {"name": cause, "info": info},
            "code": -32000,
            "message": "Server error",
            "data": data,
        }
    )


def _invalid_tx(error: Any) -> RpcError:
    # nearcore: RpcTransactionError::InvalidTransaction; its context is not serialized
    # into `info` and the legacy `data` carries the structured error.
    return _handler_error(
        "INVALID_TRANSACTION", {}, {"TxExecutionError": {"InvalidTxError": error}}
    )


def _parse_error(message: str) -> RpcError:
    return RpcError(
        {
            "name": "REQUEST_VALIDATION_ERROR",
            "cause": {"name": "PARSE_ERROR", "info": {"error_message": message}},
            "code": -32700,
            "message": "Parse error",
            "data": message,
        }
    )


class _ActionFailed(Exception):
    def __init__(self, kind: dict[str, Any], text: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text
        self.logs: list[str] = []
        self.instructions = 0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _action_view(a: Action) -> Any:
    f = a.fields
    if a.kind == "CreateAccount":
        return "CreateAccount"
    if a.kind == "DeployContract":  # nearcore shows the code's hash, not the code
        return {"DeployContract": {"code": _b64(hashlib.sha256(f["code"]).digest())}}
    if a.kind == "FunctionCall":
        return {
            "FunctionCall": {
                "method_name": f["method_name"],
                "args": _b64(f["args"]),
                "gas": f["gas"],
                "deposit": str(f["deposit"]),
            }
        }
    if a.kind == "Transfer":
        return {"Transfer": {"deposit": str(f["deposit"])}}
    if a.kind == "AddKey":
        return {
            "AddKey": {
                "public_key": _pk_text(f["public_key"]),
                "access_key": {"nonce": f["nonce"], "permission": f["permission"]},
            }
        }
    if a.kind == "DeleteKey":
        return {"DeleteKey": {"public_key": _pk_text(f["public_key"])}}
    if a.kind == "Stake":
        return {"Stake": {"stake": str(f["stake"]), "public_key": _pk_text(f["public_key"])}}
    return {a.kind: {k: v for k, v in f.items()}}


# ----------------------------------------------------------------------------- the node


class NearRpcDouble:
    """The chain state, the JSON-RPC methods, and the HTTP server that serves them."""

    def __init__(self, emulator: Emulator, *, chain_id: str = CHAIN_ID) -> None:
        self.emulator = emulator
        self.chain_id = chain_id
        self.accounts: dict[str, _Account] = {}
        self.blocks: list[_Block] = []
        self._blocks_by_hash: dict[str, _Block] = {}
        self._outcomes: dict[str, dict[str, Any]] = {}
        self.applied: list[Applied] = []
        self.refused: list[tuple[str, Any]] = []  # (tx hash or "", the error's data)
        # Fault injection: called with each applied transaction; True drops the connection.
        self.drop_after: Callable[[Applied], bool] | None = None
        self.dropped: list[Applied] = []
        # Reading the chain: blocks behind the head that are not final yet, scripted
        # transactions and chunks, failures to inject, and the heights asked for.
        self.final_lag = 0
        self.faults: dict[str, list[str]] = {}
        self.block_requests: list[tuple[int, int]] = []  # (height asked, final height)
        # height -> how many more times `block` by that height answers UNKNOWN_BLOCK, as a
        # node lagging behind a load balancer does for blocks it has not got yet
        self.lagging: dict[int, int] = {}
        self.requests: dict[str, int] = {}
        self._scripted: dict[str, _ScriptedRecord] = {}
        self._chunks: dict[str, dict[str, Any]] = {}
        self._last_chunk: dict[int, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._new_block(GENESIS_HEIGHT, GENESIS_TIME_NS, "11111111111111111111111111111111")

    # ------------------------------------------------------------------ set-up

    def create_account(
        self, account_id: str, key: KeyPair | None = None, *, balance: int = 100 * NEAR
    ) -> None:
        """A genesis-style account, with a full-access key when one is given."""
        with self._lock:
            acc = _Account(balance)
            if key is not None:
                acc.keys[key.public_bytes] = _Key(0, "FullAccess")
            self.accounts[account_id] = acc

    @property
    def latest(self) -> _Block:
        return self.blocks[-1]

    @property
    def final(self) -> _Block:
        return self.blocks[max(0, len(self.blocks) - 1 - self.final_lag)]

    def _new_block(
        self, height: int, ts: int, prev: str, chunks: tuple[dict[str, Any], ...] = ()
    ) -> _Block:
        digest = hashlib.sha256(f"{self.chain_id}:{height}:{prev}".encode()).digest()
        block = _Block(height, base58.b58encode(digest).decode(), prev, ts, chunks)
        self.blocks.append(block)
        self._blocks_by_hash[block.hash] = block
        return block

    def script_block(
        self,
        txs: list[ScriptedTx] | tuple[ScriptedTx, ...] = (),
        *,
        skip: int = 0,
        shards: int = 1,
        missing: tuple[int, ...] = (),
    ) -> _Block:
        """A new block ``skip + 1`` heights above the head, one chunk per shard holding the
        transactions of that shard (a shard in ``missing`` repeats its last chunk header)."""
        with self._lock:
            prev = self.latest
            height = prev.height + 1 + skip
            headers: list[dict[str, Any]] = []
            for shard in range(shards):
                old = self._last_chunk.get(shard)
                if shard in missing:
                    if old is None:
                        raise ValueError(f"shard {shard} has no earlier chunk to repeat")
                    if any(t.shard == shard for t in txs):
                        raise ValueError(f"shard {shard} is missing: it includes no transaction")
                    headers.append(old)
                    continue
                chunk_hash = _b58(f"chunk:{self.chain_id}:{height}:{shard}")
                views = []
                for i, t in enumerate(x for x in txs if x.shard == shard):
                    tx_hash = _b58(f"tx:{self.chain_id}:{height}:{shard}:{i}:{t.signer_id}")
                    self._scripted[tx_hash] = _ScriptedRecord(t, tx_hash, len(self.blocks))
                    views.append(_scripted_tx_view(t, tx_hash))
                header = _chunk_header(chunk_hash, prev.hash, height, shard, len(views))
                self._chunks[chunk_hash] = {
                    "author": "test.near",
                    "header": header,
                    "transactions": views,
                    "receipts": [],
                }
                self._last_chunk[shard] = header
                headers.append(header)
            return self._new_block(height, prev.timestamp_ns + 10**9, prev.hash, tuple(headers))

    def take_fault(self, method: str) -> str | None:
        """The next injected failure for ``method``, if any (consumed)."""
        with self._lock:
            queue = self.faults.get(method)
            return queue.pop(0) if queue else None

    # ------------------------------------------------------------------ JSON-RPC

    def handle(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """One JSON-RPC request; None means: drop the connection without answering."""
        rid = request.get("id")
        method = request.get("method")
        params = request.get("params")
        handlers: dict[str, Callable[[Any], Any]] = {
            "status": self._status,
            "block": self._block,
            "query": self._query,
            "broadcast_tx_commit": lambda p: self._send(p, "broadcast_tx_commit"),
            "send_tx": lambda p: self._send(p, "send_tx"),
            "broadcast_tx_async": lambda p: self._send(p, "broadcast_tx_async"),
            "tx": self._tx,
            "chunk": self._chunk,
            "EXPERIMENTAL_tx_status": self._tx_status,
        }
        self.requests[str(method)] = self.requests.get(str(method), 0) + 1
        try:
            if self.take_fault(str(method)) == "timeout":
                raise _handler_error(
                    "TIMEOUT_ERROR", {}, "Timeout"
                )  # nearcore's RpcTransactionError::TimeoutError and the like
            if method not in handlers:
                raise RpcError(
                    {
                        "name": "REQUEST_VALIDATION_ERROR",
                        "cause": {"name": "METHOD_NOT_FOUND", "info": {"method_name": method}},
                        "code": -32601,
                        "message": "Method not found",
                        "data": method,
                    }
                )
            with self._lock:
                result = handlers[str(method)](params)
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": exc.error}
        except _Drop:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # ------------------------------------------------------------------ status, block

    def _status(self, _params: Any) -> dict[str, Any]:
        first, last = self.blocks[0], self.latest
        return {
            "chain_id": self.chain_id,
            "genesis_hash": first.hash,
            "latest_protocol_version": 73,
            "protocol_version": 73,
            "node_key": None,
            "node_public_key": _pk_text(b"\x00" * 32),
            "rpc_addr": self.url,
            "sync_info": {
                "earliest_block_hash": first.hash,
                "earliest_block_height": first.height,
                "earliest_block_time": _iso(first.timestamp_ns),
                "epoch_id": EMPTY_CODE_HASH,
                "epoch_start_height": first.height,
                "latest_block_hash": last.hash,
                "latest_block_height": last.height,
                "latest_block_time": _iso(last.timestamp_ns),
                "latest_state_root": EMPTY_CODE_HASH,
                "syncing": False,
            },
            "uptime_sec": 0,
            "validator_account_id": None,
            "validator_public_key": None,
            "validators": [],
            "version": {"build": "test-double", "rustc_version": "", "version": "test-double"},
        }

    def _block_ref(self, params: Any) -> _Block:
        """The block a request names (``finality``, ``block_id`` height or hash)."""
        if isinstance(params, list):
            block_id = params[0] if params else None
        elif isinstance(params, dict):
            block_id = params.get("block_id")
            if block_id is None and params.get("finality") == "final":
                return self.final
        else:
            block_id = None
        if block_id is None:
            return self.latest
        if isinstance(block_id, int):
            self.block_requests.append((block_id, self.final.height))
            if self.lagging.get(block_id, 0) > 0:  # a lagging node: not there yet
                self.lagging[block_id] -= 1
                block_id = f"{block_id} (lagging)"
        block = None
        if isinstance(block_id, int):
            block = next((b for b in self.blocks if b.height == block_id), None)
        else:
            block = self._blocks_by_hash.get(str(block_id))
        if block is None:
            raise _handler_error(
                "UNKNOWN_BLOCK",
                {"block_reference": {"block_id": block_id}},
                f"DB Not Found Error: BLOCK HEADER: {block_id}",
            )
        return block

    def _block(self, params: Any) -> dict[str, Any]:
        b = self._block_ref(params)
        index = self.blocks.index(b)
        prev_height = self.blocks[index - 1].height if index else None
        return {
            "author": "test.near",
            "header": {
                "height": b.height,
                "prev_height": prev_height,
                "hash": b.hash,
                "prev_hash": b.prev_hash,
                "timestamp": b.timestamp_ns,
                "timestamp_nanosec": str(b.timestamp_ns),
                "epoch_id": EMPTY_CODE_HASH,
                "chunks_included": sum(c["height_included"] == b.height for c in b.chunks),
                "chunk_mask": [c["height_included"] == b.height for c in b.chunks],
                "last_final_block": self.final.hash,
            },
            "chunks": [dict(c) for c in b.chunks],
        }

    def _chunk(self, params: Any) -> dict[str, Any]:
        chunk_id = params.get("chunk_id") if isinstance(params, dict) else None
        if chunk_id is None and isinstance(params, list) and params:
            chunk_id = params[0]
        chunk = self._chunks.get(str(chunk_id))
        if chunk is None:
            raise _handler_error(
                "UNKNOWN_CHUNK", {"chunk_hash": chunk_id}, f"Chunk Missing: {chunk_id}"
            )
        return copy.deepcopy(chunk)

    def _tx_status(self, params: Any) -> Any:
        """``EXPERIMENTAL_tx_status``: a scripted transaction once every block its receipts
        ran in is final (``TIMEOUT_ERROR`` before, as ``wait_until: FINAL`` times out);
        a transaction the emulator applied as ``tx`` answers, with its receipt."""
        tx_hash = params.get("tx_hash") if isinstance(params, dict) else None
        if tx_hash is None and isinstance(params, list) and params:
            tx_hash = params[0]
        record = self._scripted.get(str(tx_hash))
        if record is None:
            known = copy.deepcopy(self._tx(params if isinstance(params, list) else [tx_hash]))
            known["receipts"] = []
            return known
        if record.tx.invalid:  # nearcore: RpcTransactionError::InvalidTransaction
            raise _invalid_tx({"InvalidNonce": {"tx_nonce": 1, "ak_nonce": 1}})
        final_index = self.blocks.index(self.final)
        last = record.block_index + max([r.delay for r in record.tx.receipts] or [0])
        if last > final_index:
            raise _handler_error("TIMEOUT_ERROR", {}, "Timeout")
        return _scripted_status(record, self.blocks)

    # ------------------------------------------------------------------ query

    def _query(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise _parse_error("query takes an object of parameters")
        block = self._block_ref(params)
        if block is not self.latest:
            raise _handler_error(
                "UNKNOWN_BLOCK",
                {"block_reference": {"block_id": params.get("block_id")}},
                "the test double keeps the latest state only",
            )
        at = {"block_height": block.height, "block_hash": block.hash}
        kind = params.get("request_type")
        account_id = str(params.get("account_id"))
        if kind not in ("view_account", "view_access_key", "view_access_key_list", "call_function"):
            raise _parse_error(f"unknown variant `{kind}`")
        acc = self.accounts.get(account_id)
        if acc is None:
            raise _handler_error(
                "UNKNOWN_ACCOUNT",
                {"requested_account_id": account_id, **at},
                f"account {account_id} does not exist while viewing",
            )
        if kind == "view_account":
            return {
                "amount": str(acc.balance),
                "locked": "0",
                "code_hash": acc.code_hash,
                "storage_usage": 0,
                "storage_paid_at": 0,
                **at,
            }
        if kind == "view_access_key":
            pk_text = str(params.get("public_key"))
            key = acc.keys.get(_pk_bytes(pk_text))
            if key is None:  # nearcore's backward-compatible answer, not an error
                return {
                    "error": f"access key {pk_text} does not exist while viewing",
                    "logs": [],
                    **at,
                }
            return {"nonce": key.nonce, "permission": key.permission, **at}
        if kind == "view_access_key_list":
            return {
                "keys": [
                    {
                        "public_key": _pk_text(pk),
                        "access_key": {"nonce": k.nonce, "permission": k.permission},
                    }
                    for pk, k in acc.keys.items()
                ],
                **at,
            }
        # call_function
        if acc.code is None:
            raise _handler_error(
                "NO_CONTRACT_CODE",
                {"contract_account_id": account_id, **at},
                f"Contract code for contract ID #{account_id} has never been observed on the node",
            )
        try:
            args = base64.b64decode(str(params.get("args_base64", "")), validate=True)
        except ValueError as exc:
            raise _parse_error(f"args_base64: {exc}") from exc
        self.emulator.prepaid_gas = MAX_PREPAID_GAS  # nearcore's max_gas_burnt_view
        out = self.emulator.call(
            account_id,
            str(params.get("method_name")),
            args,
            predecessor="",
            signer="",
            block_height=block.height,
            block_timestamp_ns=block.timestamp_ns,
            view=True,
        )
        if not out.ok:
            text = _vm_error_text(out.error, getattr(out, "error_kind", None))
            return {"error": text, "logs": list(out.logs), **at}
        return {"result": list(out.return_value or b""), "logs": list(out.logs), **at}

    # ------------------------------------------------------------------ transactions

    def _signed_tx_param(self, params: Any) -> str:
        if isinstance(params, list) and params:
            return str(params[0])
        if isinstance(params, dict) and "signed_tx_base64" in params:
            return str(params["signed_tx_base64"])
        raise _parse_error("missing signed_tx_base64")

    def _send(self, params: Any, method: str) -> Any:
        try:
            raw = base64.b64decode(self._signed_tx_param(params), validate=True)
            tx = decode_signed_transaction(raw)
        except ValueError as exc:  # binascii.Error and BorshError are ValueErrors
            raise _parse_error(f"Failed to decode transaction: {exc}") from exc
        known = self._outcomes.get(tx.hash_b58)
        if known is None:
            try:
                self._validate(tx)
            except RpcError as exc:
                self.refused.append((tx.hash_b58, exc.error.get("data")))
                raise
            known, applied = self._apply(tx)
            if self.drop_after is not None and self.drop_after(applied):
                self.dropped.append(applied)
                raise _Drop
        if method == "broadcast_tx_async":
            return tx.hash_b58
        if method == "send_tx" and isinstance(params, dict) and params.get("wait_until") == "NONE":
            return {"final_execution_status": "NONE"}
        return known

    def _tx(self, params: Any) -> Any:
        if isinstance(params, list) and params:
            tx_hash = str(params[0])
        elif isinstance(params, dict):
            tx_hash = str(params.get("tx_hash"))
        else:
            raise _parse_error("tx takes [tx_hash, sender_account_id]")
        known = self._outcomes.get(tx_hash)
        if known is None:
            raise _handler_error(
                "UNKNOWN_TRANSACTION",
                {"requested_transaction_hash": tx_hash},
                f"Transaction {tx_hash} doesn't exist",
            )
        return known

    def _validate(self, tx: SignedTx) -> None:
        """nearcore's checks before a transaction becomes a receipt, in its order."""
        if tx.key_type != 0 or tx.signature_type != 0:
            raise _invalid_tx("InvalidSignature")  # only ed25519 is modelled
        try:
            VerifyKey(tx.public_key).verify(tx.hash, tx.signature)
        except BadSignatureError:
            raise _invalid_tx("InvalidSignature") from None
        base = self._blocks_by_hash.get(base58.b58encode(tx.block_hash).decode())
        if base is None or self.latest.height - base.height > TX_VALIDITY_PERIOD:
            raise _invalid_tx("Expired")
        gas = sum(a.fields["gas"] for a in tx.actions if a.kind == "FunctionCall")
        if gas > MAX_PREPAID_GAS:
            raise _invalid_tx(
                {
                    "ActionsValidation": {
                        "TotalPrepaidGasExceeded": {
                            "total_prepaid_gas": gas,
                            "limit": MAX_PREPAID_GAS,
                        }
                    }
                }
            )
        signer = self.accounts.get(tx.signer_id)
        if signer is None:
            raise _invalid_tx({"SignerDoesNotExist": {"signer_id": tx.signer_id}})
        key = signer.keys.get(tx.public_key)
        if key is None:
            raise _invalid_tx(
                {
                    "InvalidAccessKeyError": {
                        "AccessKeyNotFound": {
                            "account_id": tx.signer_id,
                            "public_key": _pk_text(tx.public_key),
                        }
                    }
                }
            )
        if tx.nonce <= key.nonce:
            raise _invalid_tx({"InvalidNonce": {"tx_nonce": tx.nonce, "ak_nonce": key.nonce}})
        upper = (self.latest.height + 1) * NONCE_MULTIPLIER
        if tx.nonce >= upper:
            raise _invalid_tx({"NonceTooLarge": {"tx_nonce": tx.nonce, "upper_bound": upper}})
        cost = _deposits(tx)
        if cost > signer.balance:
            raise _invalid_tx(
                {
                    "NotEnoughBalance": {
                        "signer_id": tx.signer_id,
                        "balance": str(signer.balance),
                        "cost": str(cost),
                    }
                }
            )
        if key.permission != "FullAccess":
            perm = key.permission["FunctionCall"]
            if len(tx.actions) != 1 or tx.actions[0].kind != "FunctionCall":
                raise _invalid_tx({"InvalidAccessKeyError": "RequiresFullAccess"})
            call = tx.actions[0].fields
            if call["deposit"] > 0:
                raise _invalid_tx({"InvalidAccessKeyError": "DepositWithFunctionCall"})
            if tx.receiver_id != perm["receiver_id"]:
                raise _invalid_tx(
                    {
                        "InvalidAccessKeyError": {
                            "ReceiverMismatch": {
                                "tx_receiver": tx.receiver_id,
                                "ak_receiver": perm["receiver_id"],
                            }
                        }
                    }
                )
            if perm["method_names"] and call["method_name"] not in perm["method_names"]:
                raise _invalid_tx(
                    {
                        "InvalidAccessKeyError": {
                            "MethodNameMismatch": {"method_name": call["method_name"]}
                        }
                    }
                )

    def _apply(self, tx: SignedTx) -> tuple[dict[str, Any], Applied]:
        prev = self.latest
        block = self._new_block(prev.height + 1, prev.timestamp_ns + 10**9, prev.hash)
        signer = self.accounts[tx.signer_id]
        signer.keys[tx.public_key].nonce = tx.nonce
        cost = _deposits(tx)
        signer.balance -= cost
        before = copy.deepcopy(self.accounts)
        logs: list[str] = []
        value = b""
        instructions = 0
        status: dict[str, Any]
        error: str | None = None
        try:
            if tx.receiver_id not in self.accounts and (
                not tx.actions or tx.actions[0].kind != "CreateAccount"
            ):
                raise _ActionFailed(
                    {"AccountDoesNotExist": {"account_id": tx.receiver_id}},
                    f"account {tx.receiver_id} does not exist",
                )
            for index, action in enumerate(tx.actions):
                try:
                    out = self._run_action(tx, action, block)
                except _ActionFailed as exc:
                    exc.kind = {"index": index, "kind": exc.kind}
                    raise
                if out is not None:
                    value = out.return_value or b""
                    logs.extend(out.logs)
                    instructions += out.instructions
            status = {"SuccessValue": _b64(value)}
        except _ActionFailed as exc:
            self._roll_back(before)
            self.accounts[tx.signer_id].balance += cost  # deposits are refunded
            status = {"Failure": {"ActionError": exc.kind}}
            error = exc.text
            logs.extend(exc.logs)
            instructions += exc.instructions
        receipt_id = base58.b58encode(hashlib.sha256(b"receipt:" + tx.hash).digest()).decode()
        result = {
            "final_execution_status": "FINAL",
            "status": status,
            "transaction": {
                "signer_id": tx.signer_id,
                "public_key": _pk_text(tx.public_key),
                "nonce": tx.nonce,
                "receiver_id": tx.receiver_id,
                "actions": [_action_view(a) for a in tx.actions],
                "priority_fee": 0,
                "signature": "ed25519:" + base58.b58encode(tx.signature).decode(),
                "hash": tx.hash_b58,
            },
            "transaction_outcome": {
                "proof": [],
                "block_hash": block.hash,
                "id": tx.hash_b58,
                "outcome": {
                    "logs": [],
                    "receipt_ids": [receipt_id],
                    "gas_burnt": 0,
                    "tokens_burnt": "0",
                    "executor_id": tx.signer_id,
                    "status": {"SuccessReceiptId": receipt_id},
                    "metadata": {"version": 1, "gas_profile": None},
                },
            },
            "receipts_outcome": [
                {
                    "proof": [],
                    "block_hash": block.hash,
                    "id": receipt_id,
                    "outcome": {
                        "logs": logs,
                        "receipt_ids": [],
                        "gas_burnt": 0,
                        "tokens_burnt": "0",
                        "executor_id": tx.receiver_id,
                        "status": status,
                        "metadata": {"version": 3, "gas_profile": []},
                    },
                }
            ],
        }
        self._outcomes[tx.hash_b58] = result
        names = tuple(
            f"FunctionCall:{a.fields['method_name']}" if a.kind == "FunctionCall" else a.kind
            for a in tx.actions
        )
        applied = Applied(
            tx.hash_b58,
            tx.signer_id,
            tx.receiver_id,
            names,
            error is None,
            error,
            block.height,
            instructions,
        )
        self.applied.append(applied)
        return result, applied

    def _roll_back(self, before: dict[str, _Account]) -> None:
        for account_id, acc in before.items():
            now = self.accounts.get(account_id)
            if now is not None and now.code != acc.code and acc.code is not None:
                self.emulator.deploy(account_id, acc.code)  # the previous code again
        self.accounts = before

    def _run_action(self, tx: SignedTx, action: Action, block: _Block) -> _Outcome | None:
        f = action.fields
        receiver = tx.receiver_id
        admin = ("DeployContract", "AddKey", "DeleteKey", "Stake", "DeleteAccount")
        if action.kind in admin and tx.signer_id != receiver:
            raise _ActionFailed(
                {"ActorNoPermission": {"account_id": receiver, "actor_id": tx.signer_id}},
                f"{tx.signer_id} may not {action.kind} on {receiver}",
            )
        if action.kind == "CreateAccount":
            if receiver in self.accounts:
                raise _ActionFailed(
                    {"AccountAlreadyExists": {"account_id": receiver}},
                    f"account {receiver} already exists",
                )
            if not receiver.endswith("." + tx.signer_id):
                raise _ActionFailed(
                    {
                        "CreateAccountNotAllowed": {
                            "account_id": receiver,
                            "predecessor_id": tx.signer_id,
                        }
                    },
                    f"{tx.signer_id} may not create {receiver}",
                )
            self.accounts[receiver] = _Account(0)
            return None
        acc = self.accounts[receiver]
        if action.kind == "Transfer":
            acc.balance += f["deposit"]
            return None
        if action.kind == "AddKey":
            if f["public_key"] in acc.keys:
                raise _ActionFailed(
                    {
                        "AddKeyAlreadyExists": {
                            "account_id": receiver,
                            "public_key": _pk_text(f["public_key"]),
                        }
                    },
                    "the key already exists",
                )
            acc.keys[f["public_key"]] = _Key(
                (block.height - 1) * NONCE_MULTIPLIER, copy.deepcopy(f["permission"])
            )
            return None
        if action.kind == "DeleteKey":
            if f["public_key"] not in acc.keys:
                raise _ActionFailed(
                    {
                        "DeleteKeyDoesNotExist": {
                            "account_id": receiver,
                            "public_key": _pk_text(f["public_key"]),
                        }
                    },
                    "no such key",
                )
            del acc.keys[f["public_key"]]
            return None
        if action.kind == "DeployContract":
            self.emulator.deploy(receiver, f["code"])
            acc.code = f["code"]
            return None
        if action.kind == "FunctionCall":
            if acc.code is None:
                raise _ActionFailed(
                    {
                        "FunctionCallError": {
                            "CompilationError": {"CodeDoesNotExist": {"account_id": receiver}}
                        }
                    },
                    f"no contract code on {receiver}",
                )
            acc.balance += f["deposit"]
            # The emulator's one link to gas: the attached gas caps the call's instructions.
            self.emulator.prepaid_gas = f["gas"]
            out = self.emulator.call(
                receiver,
                f["method_name"],
                f["args"],
                predecessor=tx.signer_id,
                signer=tx.signer_id,
                block_height=block.height,
                block_timestamp_ns=block.timestamp_ns,
                view=False,
                attached_deposit=f["deposit"],
            )
            if not out.ok:
                text = out.error or "Smart contract panicked"
                kind = getattr(out, "error_kind", None) or "ExecutionError"
                failed = _ActionFailed({"FunctionCallError": {kind: text}}, text)
                failed.logs = list(out.logs)  # NEAR keeps the logs of a failed receipt
                failed.instructions = out.instructions
                raise failed
            return out
        raise _ActionFailed(
            {"FunctionCallError": {"ExecutionError": f"{action.kind} is not modelled"}},
            f"{action.kind} is not modelled by the test double",
        )

    # ------------------------------------------------------------------ HTTP server

    @property
    def url(self) -> str:
        if self._server is None:
            return ""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    request = json.loads(body)
                    fault = double.take_fault(str(request.get("method")))
                    if fault in ("429", "500"):
                        double.requests["HTTP " + fault] = (
                            double.requests.get("HTTP " + fault, 0) + 1
                        )
                        self.send_response(int(fault))
                        self.send_header("Retry-After", "0")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if fault is not None:  # a JSON-RPC fault: handle() meets it again
                        double.faults.setdefault(str(request.get("method")), []).insert(0, fault)
                except ValueError as exc:
                    answer: dict[str, Any] | None = {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": _parse_error(str(exc)).error,
                    }
                else:
                    answer = double.handle(request)
                if answer is None:  # fault injection: vanish without answering
                    self.close_connection = True
                    return
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="near-rpc-double", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @contextmanager
    def running(self) -> Iterator[str]:
        url = self.start()
        try:
            yield url
        finally:
            self.stop()


class _Drop(Exception):
    pass


def _deposits(tx: SignedTx) -> int:
    return sum(
        int(a.fields.get("deposit", 0))
        for a in tx.actions
        if a.kind in ("FunctionCall", "Transfer")
    )


def _vm_error_text(error: str | None, kind: str | None) -> str:
    """A view's failure as nearcore's backward-compatible query answer words it: the
    Debug form of FunctionCallError, e.g. ``MethodResolveError(MethodNotFound)``."""
    text = error or "unknown error"
    kind = kind or "ExecutionError"
    if kind == "ExecutionError":
        text = json.dumps(text)
    return f"wasm execution failed with error: {kind}({text})"


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    seconds, rest = divmod(ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def _b58(text: str) -> str:
    return base58.b58encode(hashlib.sha256(text.encode()).digest()).decode()


def _chunk_header(
    chunk_hash: str, prev_block: str, height: int, shard: int, txs: int
) -> dict[str, Any]:
    """A ChunkHeaderView (docs.near.org "Block / Chunk: Chunk Details", ``header``)."""
    return {
        "chunk_hash": chunk_hash,
        "prev_block_hash": prev_block,
        "outcome_root": EMPTY_CODE_HASH,
        "prev_state_root": EMPTY_CODE_HASH,
        "encoded_merkle_root": EMPTY_CODE_HASH,
        "encoded_length": 8 + 100 * txs,
        "height_created": height,
        "height_included": height,
        "shard_id": shard,
        "gas_used": 0,
        "gas_limit": 1_000_000_000_000_000,
        "rent_paid": "0",
        "validator_reward": "0",
        "balance_burnt": "0",
        "outgoing_receipts_root": EMPTY_CODE_HASH,
        "tx_root": EMPTY_CODE_HASH,
        "validator_proposals": [],
        "signature": "ed25519:" + EMPTY_CODE_HASH,
    }


def _scripted_tx_view(t: ScriptedTx, tx_hash: str) -> dict[str, Any]:
    """A SignedTransactionView, as ``chunk`` and the tx status list it."""
    return {
        "signer_id": t.signer_id,
        "public_key": _pk_text(b"\x01" * 32),
        "nonce": 1,
        "receiver_id": t.receiver_id,
        "actions": [
            {
                "FunctionCall": {
                    "method_name": t.method,
                    "args": _b64(b"{}"),
                    "gas": 30 * 10**12,
                    "deposit": "0",
                }
            }
        ],
        "priority_fee": 0,
        "signature": "ed25519:" + EMPTY_CODE_HASH,
        "hash": tx_hash,
    }


def _scripted_status(record: _ScriptedRecord, blocks: list[_Block]) -> dict[str, Any]:
    """The FinalExecutionOutcomeWithReceiptView of a scripted transaction (docs.near.org
    "Transactions: Transaction Status with Receipts")."""
    t, tx_block = record.tx, blocks[record.block_index]
    ids = [_b58(f"receipt:{record.hash}:{i}") for i in range(len(t.receipts))]
    outcomes, receipts = [], []
    failure = None
    for i, (r, rid) in enumerate(zip(t.receipts, ids, strict=True)):
        status: dict[str, Any] = {"SuccessValue": ""}
        if not r.ok:
            status = {
                "Failure": {
                    "ActionError": {
                        "index": 0,
                        "kind": {
                            "FunctionCallError": {"ExecutionError": "Smart contract panicked: no"}
                        },
                    }
                }
            }
            failure = failure or status
        outcomes.append(
            {
                "proof": [],
                "block_hash": blocks[record.block_index + r.delay].hash,
                "id": rid,
                "outcome": {
                    "logs": list(r.logs),
                    "receipt_ids": ids[i + 1 : i + 2],
                    "gas_burnt": 2_428_000_000_000,
                    "tokens_burnt": "242800000000000000000",
                    "executor_id": r.executor_id,
                    "status": status,
                    "metadata": {"version": 3, "gas_profile": []},
                },
            }
        )
        receipts.append(
            {
                "predecessor_id": r.predecessor_id,
                "receiver_id": r.executor_id,
                "receipt_id": rid,
                "receipt": {
                    "Action": {
                        "signer_id": t.signer_id,
                        "signer_public_key": _pk_text(b"\x01" * 32),
                        "gas_price": "100000000",
                        "output_data_receivers": [],
                        "input_data_ids": [],
                        "actions": _scripted_tx_view(t, record.hash)["actions"],
                        "is_promise_yield": False,
                    }
                },
                "priority": 0,
            }
        )
    return {
        "final_execution_status": "FINAL",
        "status": failure or {"SuccessValue": ""},
        "transaction": _scripted_tx_view(t, record.hash),
        "transaction_outcome": {
            "proof": [],
            "block_hash": tx_block.hash,
            "id": record.hash,
            "outcome": {
                "logs": [],
                "receipt_ids": ids[:1],
                "gas_burnt": 2_428_000_000_000,
                "tokens_burnt": "242800000000000000000",
                "executor_id": t.signer_id,
                "status": {"SuccessReceiptId": ids[0]} if ids else {"SuccessValue": ""},
                "metadata": {"version": 1, "gas_profile": None},
            },
        },
        "receipts_outcome": outcomes,
        "receipts": receipts,
    }
