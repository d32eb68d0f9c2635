"""TEST DOUBLE: a NEAR host-function emulator that runs a contract's wasm in wasmtime.

No NEAR node can run on this machine, so the contract's wasm (contract/build/) is run here,
in wasmtime, against host functions written after nearcore's
``runtime/near-vm-runner/src/logic/logic.rs`` (and ``vmstate.rs``, ``errors.rs``, the
protocol's ``parameters.yaml``). It is a test double, not NEAR: what a test proves with it
is that the wasm behaves as intended *under these host semantics*.

What it models:

* accounts holding code and storage (a ``dict[bytes, bytes]``); ``deploy`` replaces the
  code and keeps the storage, as a DeployContract action does;
* one function call = one fresh wasm instance (NEAR runs each call in a fresh VM): the
  method export must exist and have type ``() -> ()`` (else ``MethodResolveError``);
  memory is the module's exported ``memory`` (nearc/emscripten builds export theirs) or
  an imported ``env.memory`` of NEAR's size (1,024 pages, at most 2,048);
* registers: ``read_register`` (``InvalidRegisterId`` when unset), ``register_len``
  (``u64::MAX`` when unset), ``write_register``, NEAR's register limits (100 registers,
  100 MiB each, 1 GiB in total, "MemoryAccessViolation" beyond, as in vmstate.rs);
* ``input``, ``value_return`` (4 MiB limit); every "memory or register" argument
  (``len == u64::MAX`` reads register ``ptr``), as ``get_memory_or_register`` does;
* storage: ``storage_write`` (returns 1 and puts the evicted value in the register, else
  0 and leaves the register alone), ``storage_read``, ``storage_remove``,
  ``storage_has_key``, with the 2,048-byte key and 4 MiB value limits, and
  ``storage_usage`` kept up to date (100 bytes of account + code length + 40 + key + value
  per record; access keys are not counted, there are none here);
* logs: ``log_utf8`` / ``log_utf16`` (explicit length or NUL-terminated), at most 100 logs
  and 16,384 bytes in total; ``panic`` ("explicit guest panic"), ``panic_utf8``, and
  AssemblyScript's ``abort`` (message, filename, line, col; logged as ``ABORT: ...``);
* a failed call (panic, trap, host error, instruction budget exhausted) leaves storage as
  it was before the call: every write of the call is rolled back; its logs are kept in
  the outcome, as NEAR keeps the logs of a failed receipt;
* context: ``current_account_id``, ``predecessor_account_id``, ``signer_account_id``,
  ``block_index`` (the block height; nearc uses this old name), ``block_timestamp``,
  ``epoch_height`` (``block_height // epoch_length``), ``attached_deposit`` (u128 written
  little-endian to memory), ``prepaid_gas``, ``used_gas`` (the wasm-instruction part only,
  see below), ``random_seed`` (sha256 of block height, timestamp and account: fixed
  per block, not NEAR's VRF output);
* view calls (``view=True``): ``storage_write``, ``storage_remove``,
  ``predecessor_account_id``, ``signer_account_id``, ``signer_account_pk``,
  ``prepaid_gas``, ``used_gas`` and every ``promise_*`` function fail with NEAR's
  ``ProhibitedInView`` ("<name> is not allowed in view calls");
* hashing and signatures: ``sha256``, ``keccak256``, ``keccak512`` (pure-Python Keccak),
  ``ripemd160`` (when hashlib's OpenSSL has it), ``ed25519_verify`` (PyNaCl);
  ``promise_results_count`` is 0 and ``promise_result`` an ``InvalidPromiseResultIndex``
  (a call made by a transaction has no promise results);
* error texts as NEAR's ``Display`` prints them (``Smart contract panicked: <msg>``,
  ``WebAssembly trap: ...``, ``Accessed invalid register id: 3``, ...), with the RPC
  category in ``ExecutionOutcome.error_kind``: ``ExecutionError`` (host errors and traps),
  ``MethodResolveError`` (``MethodNotFound`` ...), ``CompilationError`` (no code, or
  code that does not compile) or ``LinkError`` (an import other than ``env``'s);
* calls run one at a time (a lock), so an RPC server thread may share the emulator.

What it does NOT model:

* **gas and fees.** It counts wasm instructions with wasmtime's fuel (about one unit per
  instruction) and reports them (``ExecutionOutcome.instructions``), but charges nothing:
  no host-function costs, no storage-access or trie-node costs, no contract-loading cost,
  no fees. The only link to gas is a cap: a call may execute at most
  ``prepaid_gas // 822,756`` instructions (NEAR's ``regular_op_cost``), else it fails
  with "Exceeded the prepaid gas."; ``used_gas`` returns instructions x 822,756;
* **storage staking**: storage is never refused for lack of balance;
* **account balances**: ``account_balance``, ``account_locked_balance``,
  ``validator_stake`` and ``validator_total_stake`` trap as not modelled;
  ``attached_deposit`` is reported to the contract but moves no tokens;
* **promises and cross-contract calls**: ``promise_create``, ``promise_then``,
  ``promise_batch_*``, ``promise_return``, yields and every other imported function not
  listed above trap with "host function <name> is not modelled by the emulator";
* **reorgs, forks, finality, sharding, receipts**: a call applies at once, and the
  block height and timestamp are whatever the caller passes;
* NEAR's wasm preparation (its feature set, stack-height and gas instrumentation, memory
  rewriting): the module runs as wasmtime compiles it.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

import wasmtime

__all__ = ["REGULAR_OP_COST", "ExecutionOutcome", "NearEmulator", "keccak256", "keccak512"]

U64_MAX = 2**64 - 1
_I64_MASK = U64_MAX

# NEAR protocol parameters (core/parameters/res/runtime_configs/parameters.snap).
REGULAR_OP_COST = 822_756  # gas per wasm instruction
DEFAULT_PREPAID_GAS = 300 * 10**12  # what renown's publisher attaches; the usual maximum
MAX_NUMBER_LOGS = 100
MAX_TOTAL_LOG_LENGTH = 16_384
MAX_NUMBER_REGISTERS = 100
MAX_REGISTER_SIZE = 104_857_600
REGISTERS_MEMORY_LIMIT = 1_073_741_824
MAX_LENGTH_RETURNED_DATA = 4_194_304
MAX_LENGTH_STORAGE_KEY = 2_048
MAX_LENGTH_STORAGE_VALUE = 4_194_304
STORAGE_NUM_BYTES_ACCOUNT = 100
STORAGE_NUM_EXTRA_BYTES_RECORD = 40
INITIAL_MEMORY_PAGES = 1_024
MAX_MEMORY_PAGES = 2_048
EPOCH_LENGTH = 43_200  # mainnet blocks per epoch

# Functions NEAR refuses in a view call (logic.rs: `if self.context.is_view()`), besides
# every promise_* function.
_PROHIBITED_IN_VIEW = frozenset(
    {
        "storage_write",
        "storage_remove",
        "predecessor_account_id",
        "signer_account_id",
        "signer_account_pk",
        "refund_to_account_id",
        "prepaid_gas",
        "used_gas",
    }
)


@dataclass
class ExecutionOutcome:
    """The result of one function call, as NEAR's VMOutcome reports it (minus gas)."""

    ok: bool  # False on a panic / trap / abort / host error / method or code not found
    return_value: bytes | None  # what value_return set (None if never called or failed)
    logs: list[str]
    error: str | None  # NEAR's Display text, e.g. "Smart contract panicked: <msg>"
    instructions: int  # wasm instructions executed (wasmtime fuel consumed)
    # The RPC's FunctionCallError category: "ExecutionError" (host errors, traps, gas),
    # "MethodResolveError" (error is then "MethodNotFound", ...) or "CompilationError".
    error_kind: str | None = None
    host_calls: dict[str, int] = field(default_factory=dict)  # host function -> calls


class _Abort(Exception):
    """Stops the wasm from a host function with a NEAR error (the call fails)."""

    def __init__(self, message: str, kind: str = "ExecutionError") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


def _panic(msg: str) -> _Abort:
    return _Abort(f"Smart contract panicked: {msg}")


_MEMORY_VIOLATION = "Accessed memory outside the bounds."


# ----------------------------------------------------------------------------- Keccak
# Keccak-f[1600] as in the original submission (padding 0x01, not SHA-3's 0x06): NEAR's
# keccak256/keccak512 are Ethereum's, which hashlib's sha3_* are not.

_KECCAK_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip
_KECCAK_ROT = (
    (0, 36, 3, 41, 18),
    (1, 44, 10, 45, 2),
    (62, 6, 43, 15, 61),
    (28, 55, 25, 21, 56),
    (27, 20, 39, 8, 14),
)  # _KECCAK_ROT[x][y]
_M64 = U64_MAX


def _rol(v: int, n: int) -> int:
    return ((v << n) | (v >> (64 - n))) & _M64 if n else v


def _keccak_f(a: list[int]) -> list[int]:
    for rc in _KECCAK_RC:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a = [a[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for x in range(5):
            for y in range(5):
                b[y + 5 * ((2 * x + 3 * y) % 5)] = _rol(a[x + 5 * y], _KECCAK_ROT[x][y])
        a = [
            b[x + 5 * y] ^ ((~b[(x + 1) % 5 + 5 * y]) & b[(x + 2) % 5 + 5 * y])
            for y in range(5)
            for x in range(5)
        ]
        a[0] ^= rc
    return a


def _keccak(data: bytes, rate: int, out_len: int) -> bytes:
    padded = bytearray(data)
    padded.append(0x01)
    while len(padded) % rate:
        padded.append(0)
    padded[-1] |= 0x80
    state = [0] * 25
    for off in range(0, len(padded), rate):
        for i in range(rate // 8):
            state[i] ^= int.from_bytes(padded[off + 8 * i : off + 8 * i + 8], "little")
        state = _keccak_f(state)
    return b"".join(lane.to_bytes(8, "little") for lane in state)[:out_len]


def keccak256(data: bytes) -> bytes:
    return _keccak(data, 136, 32)


def keccak512(data: bytes) -> bytes:
    return _keccak(data, 72, 64)


# ----------------------------------------------------------------------------- engine

# wasmtime-py hands a host function's exception back through a module-global slot, so
# calls (from a test thread and an RPC server thread, say) run one at a time.
_RUN_LOCK = threading.RLock()
_ENGINE: wasmtime.Engine | None = None
_MODULES: dict[bytes, wasmtime.Module | str] = {}  # sha256(code) -> module or error text


def _engine() -> wasmtime.Engine:
    global _ENGINE
    if _ENGINE is None:
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        _ENGINE = wasmtime.Engine(cfg)
    return _ENGINE


def _compile(code: bytes) -> wasmtime.Module | str:
    """The compiled module (cached by code hash across emulators), or the error text."""
    digest = hashlib.sha256(code).digest()
    if digest not in _MODULES:
        try:
            _MODULES[digest] = wasmtime.Module(_engine(), code)
        except wasmtime.WasmtimeError as exc:
            _MODULES[digest] = f"Wasmtime compilation error: {exc}"
    return _MODULES[digest]


def _u64(v: int) -> int:
    return v & _I64_MASK


def _i64(v: int) -> int:
    """A u64 result as the signed value wasmtime passes back for an i64."""
    v &= _I64_MASK
    return v - 2**64 if v >= 2**63 else v


_TRAP_TEXT = {
    "UNREACHABLE": "An `unreachable` opcode was executed.",
    "MEMORY_OUT_OF_BOUNDS": "Memory out of bounds trap.",
    "HEAP_MISALIGNED": "Misaligned atomic access trap.",
    "TABLE_OUT_OF_BOUNDS": "Call indirect out of bounds trap.",
    "INDIRECT_CALL_TO_NULL": "Indirect call to null.",
    "BAD_SIGNATURE": "Call indirect incorrect signature trap.",
    "INTEGER_OVERFLOW": "An arithmetic exception, e.g. divided by zero.",
    "INTEGER_DIVISION_BY_ZERO": "An arithmetic exception, e.g. divided by zero.",
    "BAD_CONVERSION_TO_INTEGER": "An arithmetic exception, e.g. divided by zero.",
    "STACK_OVERFLOW": "Stack overflow.",
}


def _trap_error(trap: wasmtime.Trap) -> str:
    code = getattr(trap, "trap_code", None)
    name = getattr(code, "name", None)
    if name == "OUT_OF_FUEL":
        return "Exceeded the prepaid gas."
    text = _TRAP_TEXT.get(name or "")
    if text is None:
        return f"WebAssembly trap: Generic trap. ({trap.message.splitlines()[0]})"
    return f"WebAssembly trap: {text}"


# ----------------------------------------------------------------------------- accounts


@dataclass
class _Account:
    code: bytes | None = None
    storage: dict[bytes, bytes] = field(default_factory=dict)

    def storage_usage(self) -> int:
        data = sum(
            STORAGE_NUM_EXTRA_BYTES_RECORD + len(k) + len(v) for k, v in self.storage.items()
        )
        return STORAGE_NUM_BYTES_ACCOUNT + len(self.code or b"") + data


class NearEmulator:
    """A fresh "chain": accounts with code and storage, and function calls on them."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self.prepaid_gas = DEFAULT_PREPAID_GAS  # caps the instructions of a call
        self.epoch_length = EPOCH_LENGTH

    # -------------------------------------------------------------- accounts and code

    def create_account(self, account_id: str) -> None:
        """Create an account without code (no-op if it exists)."""
        self._accounts.setdefault(account_id, _Account())

    def has_account(self, account_id: str) -> bool:
        return account_id in self._accounts

    def deploy(self, account_id: str, wasm: bytes) -> None:
        """(Re)deploy code on the account, creating it if needed; its storage is kept.

        As on NEAR, deploying never fails for bad code: a module that does not compile
        fails every call with a ``CompilationError``.
        """
        account = self._accounts.setdefault(account_id, _Account())
        account.code = bytes(wasm)
        with _RUN_LOCK:
            _compile(account.code)

    def code_hash(self, account_id: str) -> bytes | None:
        """sha256 of the deployed code (NEAR's code_hash), None without code or account."""
        account = self._accounts.get(account_id)
        if account is None or account.code is None:
            return None
        return hashlib.sha256(account.code).digest()

    def state(self, account_id: str) -> dict[bytes, bytes]:
        """The contract's storage (a copy; empty for an unknown account)."""
        account = self._accounts.get(account_id)
        return dict(account.storage) if account is not None else {}

    def storage_usage(self, account_id: str) -> int:
        account = self._accounts.get(account_id)
        return account.storage_usage() if account is not None else 0

    # -------------------------------------------------------------- calls

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
    ) -> ExecutionOutcome:
        """Run ``method`` of the account's code with ``args`` as input, in a fresh instance.

        Storage changes are kept only if the call succeeds (and never for a view).
        """
        if not 0 <= attached_deposit < 2**128:
            raise ValueError(f"attached_deposit out of u128 range: {attached_deposit}")
        account = self._accounts.get(account_id)
        if account is None or account.code is None:
            return _failed(
                f"cannot find contract code for account {account_id}", "CompilationError"
            )
        if not method:
            return _failed("MethodEmptyName", "MethodResolveError")
        with _RUN_LOCK:
            return self._run(
                account_id,
                account,
                method,
                args,
                predecessor,
                signer,
                block_height,
                block_timestamp_ns,
                view,
                attached_deposit,
            )

    def _run(
        self,
        account_id: str,
        account: _Account,
        method: str,
        args: bytes,
        predecessor: str,
        signer: str,
        block_height: int,
        block_timestamp_ns: int,
        view: bool,
        attached_deposit: int,
    ) -> ExecutionOutcome:
        assert account.code is not None
        module = _compile(account.code)
        if isinstance(module, str):
            return _failed(module, "CompilationError")
        run = _Call(
            emulator=self,
            account_id=account_id,
            account=account,
            args=bytes(args),
            predecessor=predecessor,
            signer=signer,
            block_height=block_height,
            block_timestamp_ns=block_timestamp_ns,
            view=view,
            attached_deposit=attached_deposit,
        )
        outcome = run.execute(module, method)
        if outcome.ok and not view:
            account.storage = run.storage
        return outcome


def _failed(error: str, kind: str) -> ExecutionOutcome:
    return ExecutionOutcome(False, None, [], error, 0, kind)


class _Call:
    """One function call: its registers, logs, working copy of storage, host functions."""

    def __init__(
        self,
        *,
        emulator: NearEmulator,
        account_id: str,
        account: _Account,
        args: bytes,
        predecessor: str,
        signer: str,
        block_height: int,
        block_timestamp_ns: int,
        view: bool,
        attached_deposit: int,
    ) -> None:
        self.account_id = account_id
        self.input = args
        self.predecessor = predecessor
        self.signer = signer
        self.block_height = block_height
        self.block_timestamp = block_timestamp_ns
        self.epoch_height = block_height // emulator.epoch_length
        self.view = view
        self.attached_deposit = attached_deposit
        self.prepaid_gas = emulator.prepaid_gas
        self.fuel = emulator.prepaid_gas // REGULAR_OP_COST
        self.storage = dict(account.storage)  # committed by the caller on success
        self.storage_usage = account.storage_usage()
        self.registers: dict[int, bytes] = {}
        self.register_usage = 0
        self.logs: list[str] = []
        self.total_log_length = 0
        self.return_value: bytes | None = None
        self.host_calls: dict[str, int] = {}
        self.store: wasmtime.Store | None = None
        self.memory: wasmtime.Memory | None = None

    # -------------------------------------------------------------- running

    def execute(self, module: wasmtime.Module, method: str) -> ExecutionOutcome:
        store = wasmtime.Store(_engine())
        store.set_fuel(self.fuel)
        self.store = store
        imports: list[Any] = []
        imported_memory = None
        for imp in module.imports:
            ty, where = imp.type, (imp.module, imp.name or "")
            if isinstance(ty, wasmtime.FuncType):
                imports.append(wasmtime.Func(store, ty, self._host(*where), access_caller=True))
            elif isinstance(ty, wasmtime.MemoryType) and where == ("env", "memory"):
                lo = max(INITIAL_MEMORY_PAGES, ty.limits.min)
                imported_memory = wasmtime.Memory(
                    store, wasmtime.MemoryType(wasmtime.Limits(lo, MAX_MEMORY_PAGES))
                )
                imports.append(imported_memory)
            else:
                return self._outcome(f"{imp.module}.{imp.name}: import not provided", "LinkError")
        func = None
        for exp in module.exports:
            if exp.name == method:
                if not isinstance(exp.type, wasmtime.FuncType):
                    break
                if exp.type.params or exp.type.results:
                    return self._outcome("MethodInvalidSignature", "MethodResolveError")
                func = exp
        if func is None:
            return self._outcome("MethodNotFound", "MethodResolveError")
        try:
            instance = wasmtime.Instance(store, module, imports)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            return self._outcome(
                f"PrepareError: Error happened during instantiation. ({exc})", "CompilationError"
            )
        exports = instance.exports(store)
        mem = exports.get("memory") if imported_memory is None else imported_memory
        self.memory = mem if isinstance(mem, wasmtime.Memory) else None
        entry = exports[method]
        assert isinstance(entry, wasmtime.Func)
        try:
            entry(store)
        except _Abort as exc:
            return self._outcome(exc.message, exc.kind)
        except wasmtime.Trap as exc:
            return self._outcome(_trap_error(exc), "ExecutionError")
        except wasmtime.WasmtimeError as exc:
            return self._outcome(f"WebAssembly trap: Generic trap. ({exc})", "ExecutionError")
        return self._outcome(None, None)

    def _outcome(self, error: str | None, kind: str | None) -> ExecutionOutcome:
        used = 0
        if self.store is not None:
            used = self.fuel - self.store.get_fuel()
        ok = error is None
        return ExecutionOutcome(
            ok=ok,
            return_value=self.return_value if ok else None,
            logs=list(self.logs),
            error=error,
            instructions=used,
            error_kind=kind,
            host_calls=dict(self.host_calls),
        )

    def _host(self, module: str, name: str) -> Any:
        handler = getattr(self, "h_" + name, None) if module == "env" else None
        prohibited = name in _PROHIBITED_IN_VIEW or name.startswith("promise_")

        def host(caller: wasmtime.Caller, *params: int) -> int | None:
            self.host_calls[name] = self.host_calls.get(name, 0) + 1
            if self.view and prohibited:
                raise _Abort(f"{name} is not allowed in view calls")
            if handler is None:
                raise _Abort(
                    f"host function {module}.{name} is not modelled by the emulator "
                    "(tests/near_emulator.py)"
                )
            result = handler(caller, *params)
            return None if result is None else _i64(result)

        return host

    # -------------------------------------------------------------- memory and registers

    def _mem(self) -> wasmtime.Memory:
        if self.memory is None:
            raise _Abort(_MEMORY_VIOLATION)
        return self.memory

    def read(self, caller: wasmtime.Caller, ptr: int, length: int) -> bytes:
        mem = self._mem()
        ptr, length = _u64(ptr), _u64(length)
        if ptr + length > mem.data_len(caller):
            raise _Abort(_MEMORY_VIOLATION)
        return bytes(mem.read(caller, ptr, ptr + length)) if length else b""

    def write(self, caller: wasmtime.Caller, ptr: int, data: bytes) -> None:
        mem = self._mem()
        ptr = _u64(ptr)
        if ptr + len(data) > mem.data_len(caller):
            raise _Abort(_MEMORY_VIOLATION)
        if data:
            mem.write(caller, data, ptr)

    def set_register(self, register_id: int, data: bytes) -> None:
        register_id = _u64(register_id)
        if len(data) > MAX_REGISTER_SIZE or len(self.registers) >= MAX_NUMBER_REGISTERS:
            # vmstate.rs: at the register-count limit even replacing one fails.
            raise _Abort(_MEMORY_VIOLATION)
        old = self.registers.get(register_id)
        usage = self.register_usage - (len(old) + 8 if old is not None else 0) + len(data) + 8
        if usage > REGISTERS_MEMORY_LIMIT:
            raise _Abort(_MEMORY_VIOLATION)
        self.register_usage = usage
        self.registers[register_id] = bytes(data)

    def get_register(self, register_id: int) -> bytes:
        register_id = _u64(register_id)
        if register_id not in self.registers:
            raise _Abort(f"Accessed invalid register id: {register_id}")
        return self.registers[register_id]

    def memory_or_register(self, caller: wasmtime.Caller, ptr: int, length: int) -> bytes:
        if _u64(length) == U64_MAX:
            return self.get_register(ptr)
        return self.read(caller, ptr, length)

    def utf8(self, caller: wasmtime.Caller, length: int, ptr: int) -> str:
        """logic.rs get_utf8_string: explicit length, or NUL-terminated if u64::MAX."""
        length = _u64(length)
        max_len = max(0, MAX_TOTAL_LOG_LENGTH - self.total_log_length)
        if length != U64_MAX:
            if length > max_len:
                raise self._log_too_long(length)
            raw = self.read(caller, ptr, length)
        else:
            mem = self._mem()
            start = _u64(ptr)
            size = mem.data_len(caller)
            window = bytes(mem.read(caller, start, min(size, start + max_len + 1)))
            end = window.find(b"\0")
            if end < 0:
                if len(window) <= max_len:
                    raise _Abort(_MEMORY_VIOLATION)  # ran off the end of memory
                raise self._log_too_long(max_len + 1)
            raw = window[:end]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Abort("String encoding is bad UTF-8 sequence.") from None

    def utf16(self, caller: wasmtime.Caller, length: int, ptr: int) -> str:
        """logic.rs get_utf16_string: explicit byte length, or ended by 0x0000."""
        length = _u64(length)
        max_len = max(0, MAX_TOTAL_LOG_LENGTH - self.total_log_length)
        if length == U64_MAX:
            length = 0
            while self.read(caller, _u64(ptr) + length, 2) != b"\0\0":
                length += 2
                if length > max_len:
                    raise self._log_too_long(length)
        raw = self.read(caller, ptr, length)
        if len(raw) % 2:
            raise _Abort("String encoding is bad UTF-16 sequence.")
        if length > max_len:
            raise self._log_too_long(length)
        try:
            return raw.decode("utf-16-le")
        except UnicodeDecodeError:
            raise _Abort("String encoding is bad UTF-16 sequence.") from None

    def _log_too_long(self, add: int) -> _Abort:
        return _Abort(
            f"The length of a log message {self.total_log_length + add} exceeds the limit "
            f"{MAX_TOTAL_LOG_LENGTH}"
        )

    def push_log(self, message: str) -> None:
        total = self.total_log_length + len(message.encode("utf-8"))
        if total > MAX_TOTAL_LOG_LENGTH:
            raise self._log_too_long(len(message.encode("utf-8")))
        self.total_log_length = total
        self.logs.append(message)

    def check_log_count(self) -> None:
        if len(self.logs) >= MAX_NUMBER_LOGS:
            raise _Abort(f"The number of logs will exceed the limit {MAX_NUMBER_LOGS}")

    # -------------------------------------------------------------- host functions
    # Named h_<NEAR import name>; params arrive as signed i64 (i32 for abort).

    def h_read_register(self, c: wasmtime.Caller, register_id: int, ptr: int) -> None:
        self.write(c, ptr, self.get_register(register_id))

    def h_register_len(self, c: wasmtime.Caller, register_id: int) -> int:
        data = self.registers.get(_u64(register_id))
        return U64_MAX if data is None else len(data)

    def h_write_register(self, c: wasmtime.Caller, register_id: int, length: int, ptr: int) -> None:
        self.set_register(register_id, self.read(c, ptr, length))

    def h_input(self, c: wasmtime.Caller, register_id: int) -> None:
        self.set_register(register_id, self.input)

    def h_value_return(self, c: wasmtime.Caller, length: int, ptr: int) -> None:
        value = self.memory_or_register(c, ptr, length)
        if len(value) > MAX_LENGTH_RETURNED_DATA:
            raise _Abort(
                f"The length of a returned value {len(value)} exceeds the limit "
                f"{MAX_LENGTH_RETURNED_DATA}"
            )
        self.return_value = value

    def h_panic(self, c: wasmtime.Caller) -> None:
        raise _panic("explicit guest panic")

    def h_panic_utf8(self, c: wasmtime.Caller, length: int, ptr: int) -> None:
        raise _panic(self.utf8(c, length, ptr))

    def h_log_utf8(self, c: wasmtime.Caller, length: int, ptr: int) -> None:
        self.check_log_count()
        self.push_log(self.utf8(c, length, ptr))

    def h_log_utf16(self, c: wasmtime.Caller, length: int, ptr: int) -> None:
        self.check_log_count()
        self.push_log(self.utf16(c, length, ptr))

    def h_abort(
        self, c: wasmtime.Caller, msg_ptr: int, filename_ptr: int, line: int, col: int
    ) -> None:
        msg_ptr, filename_ptr = msg_ptr & 0xFFFFFFFF, filename_ptr & 0xFFFFFFFF
        if msg_ptr < 4 or filename_ptr < 4:
            raise _Abort("String encoding is bad UTF-16 sequence.")
        self.check_log_count()
        msg_len = int.from_bytes(self.read(c, msg_ptr - 4, 4), "little")
        filename_len = int.from_bytes(self.read(c, filename_ptr - 4, 4), "little")
        msg = self.utf16(c, msg_len, msg_ptr)
        filename = self.utf16(c, filename_len, filename_ptr)
        message = f'{msg}, filename: "{filename}" line: {line & 0xFFFFFFFF} col: {col & 0xFFFFFFFF}'
        self.push_log(f"ABORT: {message}")
        raise _panic(message)

    # context

    def h_current_account_id(self, c: wasmtime.Caller, register_id: int) -> None:
        self.set_register(register_id, self.account_id.encode())

    def h_predecessor_account_id(self, c: wasmtime.Caller, register_id: int) -> None:
        self.set_register(register_id, self.predecessor.encode())

    def h_signer_account_id(self, c: wasmtime.Caller, register_id: int) -> None:
        self.set_register(register_id, self.signer.encode())

    def h_block_index(self, c: wasmtime.Caller) -> int:
        return self.block_height

    def h_block_timestamp(self, c: wasmtime.Caller) -> int:
        return self.block_timestamp

    def h_epoch_height(self, c: wasmtime.Caller) -> int:
        return self.epoch_height

    def h_storage_usage(self, c: wasmtime.Caller) -> int:
        return self.storage_usage

    def h_attached_deposit(self, c: wasmtime.Caller, ptr: int) -> None:
        self.write(c, ptr, self.attached_deposit.to_bytes(16, "little"))

    def h_prepaid_gas(self, c: wasmtime.Caller) -> int:
        return self.prepaid_gas

    def h_used_gas(self, c: wasmtime.Caller) -> int:
        assert self.store is not None
        return (self.fuel - self.store.get_fuel()) * REGULAR_OP_COST

    def h_random_seed(self, c: wasmtime.Caller, register_id: int) -> None:
        seed = (
            struct.pack(">QQ", self.block_height, self.block_timestamp) + self.account_id.encode()
        )
        self.set_register(register_id, hashlib.sha256(b"near-emulator-seed" + seed).digest())

    def h_promise_results_count(self, c: wasmtime.Caller) -> int:
        return 0

    def h_promise_result(self, c: wasmtime.Caller, result_idx: int, register_id: int) -> int:
        raise _Abort(f"Accessed invalid promise result index: {_u64(result_idx)}")

    # hashing and signatures

    def h_sha256(self, c: wasmtime.Caller, length: int, ptr: int, register_id: int) -> None:
        self.set_register(
            register_id, hashlib.sha256(self.memory_or_register(c, ptr, length)).digest()
        )

    def h_keccak256(self, c: wasmtime.Caller, length: int, ptr: int, register_id: int) -> None:
        self.set_register(register_id, keccak256(self.memory_or_register(c, ptr, length)))

    def h_keccak512(self, c: wasmtime.Caller, length: int, ptr: int, register_id: int) -> None:
        self.set_register(register_id, keccak512(self.memory_or_register(c, ptr, length)))

    def h_ripemd160(self, c: wasmtime.Caller, length: int, ptr: int, register_id: int) -> None:
        data = self.memory_or_register(c, ptr, length)
        try:
            digest = hashlib.new("ripemd160", data).digest()
        except ValueError:
            raise _Abort(
                "host function env.ripemd160 is not modelled by the emulator "
                "(hashlib has no ripemd160 here)"
            ) from None
        self.set_register(register_id, digest)

    def h_ed25519_verify(
        self,
        c: wasmtime.Caller,
        sig_len: int,
        sig_ptr: int,
        msg_len: int,
        msg_ptr: int,
        pk_len: int,
        pk_ptr: int,
    ) -> int:
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        sig = self.memory_or_register(c, sig_ptr, sig_len)
        if len(sig) != 64:
            raise _Abort("ED25519 signature verification error: invalid signature length")
        if sig[63] & 0b1110_0000:
            return 0
        msg = self.memory_or_register(c, msg_ptr, msg_len)
        pk = self.memory_or_register(c, pk_ptr, pk_len)
        if len(pk) != 32:
            raise _Abort("ED25519 signature verification error: invalid public key length")
        try:
            VerifyKey(pk).verify(msg, sig)
        except (BadSignatureError, ValueError, TypeError):
            return 0  # a malformed point is a failed verification, as in logic.rs
        return 1

    # storage

    def _key(self, c: wasmtime.Caller, length: int, ptr: int) -> bytes:
        key = self.memory_or_register(c, ptr, length)
        if len(key) > MAX_LENGTH_STORAGE_KEY:
            raise _Abort(
                f"The length of a storage key {len(key)} exceeds the limit {MAX_LENGTH_STORAGE_KEY}"
            )
        return key

    def h_storage_write(
        self,
        c: wasmtime.Caller,
        key_len: int,
        key_ptr: int,
        value_len: int,
        value_ptr: int,
        register_id: int,
    ) -> int:
        key = self._key(c, key_len, key_ptr)
        value = self.memory_or_register(c, value_ptr, value_len)
        if len(value) > MAX_LENGTH_STORAGE_VALUE:
            raise _Abort(
                f"The length of a storage value {len(value)} exceeds the limit "
                f"{MAX_LENGTH_STORAGE_VALUE}"
            )
        old = self.storage.get(key)
        self.storage[key] = value
        if old is None:
            self.storage_usage += len(key) + len(value) + STORAGE_NUM_EXTRA_BYTES_RECORD
            return 0
        self.storage_usage += len(value) - len(old)
        self.set_register(register_id, old)
        return 1

    def h_storage_read(
        self, c: wasmtime.Caller, key_len: int, key_ptr: int, register_id: int
    ) -> int:
        value = self.storage.get(self._key(c, key_len, key_ptr))
        if value is None:
            return 0
        self.set_register(register_id, value)
        return 1

    def h_storage_remove(
        self, c: wasmtime.Caller, key_len: int, key_ptr: int, register_id: int
    ) -> int:
        key = self._key(c, key_len, key_ptr)
        value = self.storage.pop(key, None)
        if value is None:
            return 0
        self.storage_usage -= len(key) + len(value) + STORAGE_NUM_EXTRA_BYTES_RECORD
        self.set_register(register_id, value)
        return 1

    def h_storage_has_key(self, c: wasmtime.Caller, key_len: int, key_ptr: int) -> int:
        return int(self._key(c, key_len, key_ptr) in self.storage)
