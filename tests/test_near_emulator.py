"""The snapshot contract's committed wasm, run in the NEAR host-function emulator.

``tests/near_emulator.py`` is a TEST DOUBLE (wasmtime + NEAR's host functions, no gas, no
promises: see its docstring). The first part checks the emulator itself on a small
hand-written module (registers, storage, logs, panics, views); the rest runs
``contract/build/renown_snapshots.wasm`` as built and committed (never rebuilt here):
init, publish, the views, store_scores, verify against ``scoring.merkle``, the NEP-297
events, rollback on a panic, strings outside the BMP as py-near escapes them (surrogate
pairs), and the wasm instructions of verify and store_scores.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from scoring.merkle import Leaf, MerkleTree, empty_root, leaf_hash, root_from_proof
from tests.near_emulator import (
    REGULAR_OP_COST,
    ExecutionOutcome,
    NearEmulator,
    keccak256,
    keccak512,
)

WASM_PATH = Path(__file__).resolve().parents[1] / "contract" / "build" / "renown_snapshots.wasm"
U64_MAX = 2**64 - 1

CONTRACT = "snapshots.renown.near"
OWNER = "owner.renown.near"
PUBLISHER = "publisher.renown.near"
STRANGER = "mallory.near"
HEIGHT = 120_000_000
TS = 1_760_000_000_000_000_000


# ============================================================================ the emulator
# A small module written by hand, importing NEAR's memory like a Rust contract does.

WAT = r"""
(module
  (import "env" "memory" (memory 1))
  (import "env" "input" (func $input (param i64)))
  (import "env" "register_len" (func $register_len (param i64) (result i64)))
  (import "env" "read_register" (func $read_register (param i64 i64)))
  (import "env" "write_register" (func $write_register (param i64 i64 i64)))
  (import "env" "value_return" (func $value_return (param i64 i64)))
  (import "env" "storage_write" (func $storage_write (param i64 i64 i64 i64 i64) (result i64)))
  (import "env" "storage_read" (func $storage_read (param i64 i64 i64) (result i64)))
  (import "env" "storage_remove" (func $storage_remove (param i64 i64 i64) (result i64)))
  (import "env" "storage_has_key" (func $storage_has_key (param i64 i64) (result i64)))
  (import "env" "storage_usage" (func $storage_usage (result i64)))
  (import "env" "log_utf8" (func $log_utf8 (param i64 i64)))
  (import "env" "log_utf16" (func $log_utf16 (param i64 i64)))
  (import "env" "panic" (func $panic))
  (import "env" "panic_utf8" (func $panic_utf8 (param i64 i64)))
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (import "env" "sha256" (func $sha256 (param i64 i64 i64)))
  (import "env" "keccak256" (func $keccak256 (param i64 i64 i64)))
  (import "env" "keccak512" (func $keccak512 (param i64 i64 i64)))
  (import "env" "current_account_id" (func $current_account_id (param i64)))
  (import "env" "predecessor_account_id" (func $predecessor_account_id (param i64)))
  (import "env" "signer_account_id" (func $signer_account_id (param i64)))
  (import "env" "block_index" (func $block_index (result i64)))
  (import "env" "block_timestamp" (func $block_timestamp (result i64)))
  (import "env" "epoch_height" (func $epoch_height (result i64)))
  (import "env" "attached_deposit" (func $attached_deposit (param i64)))
  (import "env" "prepaid_gas" (func $prepaid_gas (result i64)))
  (import "env" "used_gas" (func $used_gas (result i64)))
  (import "env" "random_seed" (func $random_seed (param i64)))
  (import "env" "promise_batch_create" (func $promise_batch_create (param i64 i64) (result i64)))

  (data (i32.const 0) "k")
  (data (i32.const 8) "abc")
  (data (i32.const 16) "hello")
  (data (i32.const 24) "nul-ended\00")
  (data (i32.const 40) "h\00i\00")
  (data (i32.const 48) "o\00k\00\00\00")
  (data (i32.const 64) "boom")
  (data (i32.const 80) "other.near")
  ;; AssemblyScript strings: u32 byte length, then UTF-16LE
  (data (i32.const 96) "\08\00\00\00o\00o\00p\00s\00")
  (data (i32.const 112) "\08\00\00\00a\00.\00t\00s\00")

  ;; [register_len(5) before, register_len(5) after writing "abc", the bytes read back]
  (func (export "registers")
    (i64.store (i32.const 256) (call $register_len (i64.const 5)))
    (call $write_register (i64.const 5) (i64.const 3) (i64.const 8))
    (i64.store (i32.const 264) (call $register_len (i64.const 5)))
    (call $read_register (i64.const 5) (i64.const 272))
    (call $value_return (i64.const 19) (i64.const 256)))

  (func (export "read_unset_register")
    (call $read_register (i64.const 7) (i64.const 256)))

  ;; Return [u64 code] + the register's content when the code is 1.
  (func $answer (param $code i64) (param $reg i64)
    (i64.store (i32.const 256) (local.get $code))
    (if (i64.eq (local.get $code) (i64.const 1))
      (then
        (call $read_register (local.get $reg) (i64.const 264))
        (call $value_return
          (i64.add (i64.const 8) (call $register_len (local.get $reg))) (i64.const 256)))
      (else (call $value_return (i64.const 8) (i64.const 256)))))

  ;; storage_write(b"k", input) with the value passed by register (len = u64::MAX)
  (func (export "write")
    (call $input (i64.const 0))
    (call $answer
      (call $storage_write
        (i64.const 1) (i64.const 0) (i64.const -1) (i64.const 0) (i64.const 1))
      (i64.const 1)))
  (func (export "read")
    (call $answer (call $storage_read (i64.const 1) (i64.const 0) (i64.const 2)) (i64.const 2)))
  (func (export "remove")
    (call $answer (call $storage_remove (i64.const 1) (i64.const 0) (i64.const 3)) (i64.const 3)))
  (func (export "has")
    (i64.store (i32.const 256) (call $storage_has_key (i64.const 1) (i64.const 0)))
    (call $value_return (i64.const 8) (i64.const 256)))
  ;; key passed by register too: storage_read(register 0 = input)
  (func (export "read_key_in_register")
    (call $input (i64.const 0))
    (call $answer (call $storage_read (i64.const -1) (i64.const 0) (i64.const 2)) (i64.const 2)))
  (func (export "usage")
    (i64.store (i32.const 256) (call $storage_usage))
    (call $value_return (i64.const 8) (i64.const 256)))

  ;; storage_write(b"k", input), return code dropped
  (func $put
    (call $input (i64.const 0))
    (drop (call $storage_write
      (i64.const 1) (i64.const 0) (i64.const -1) (i64.const 0) (i64.const 1))))
  (func (export "write_then_panic_utf8")
    (call $put)
    (call $panic_utf8 (i64.const 4) (i64.const 64)))
  (func (export "write_then_panic")
    (call $put)
    (call $panic))
  (func (export "write_then_trap")
    (call $put)
    unreachable)
  (func (export "write_then_abort")
    (call $put)
    (call $abort (i32.const 100) (i32.const 116) (i32.const 7) (i32.const 3)))

  (func (export "logs")
    (call $log_utf8 (i64.const 5) (i64.const 16))
    (call $log_utf8 (i64.const -1) (i64.const 24))
    (call $log_utf16 (i64.const 4) (i64.const 40))
    (call $log_utf16 (i64.const -1) (i64.const 48)))
  (func (export "log_then_panic")
    (call $log_utf8 (i64.const 5) (i64.const 16))
    (call $panic_utf8 (i64.const 4) (i64.const 64)))
  (func (export "too_many_logs")
    (local $i i32)
    (loop $again
      (call $log_utf8 (i64.const 5) (i64.const 16))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 101)))))
  (func (export "log_out_of_bounds")
    (call $log_utf8 (i64.const 16) (i64.const 4294967280)))
  (func (export "log_bad_utf8")
    (i32.store8 (i32.const 300) (i32.const 255))
    (call $log_utf8 (i64.const 1) (i64.const 300)))

  ;; [sha256(input), keccak256(input), keccak512(input)], input read through register 0
  (func (export "hashes")
    (call $input (i64.const 0))
    (call $sha256 (i64.const -1) (i64.const 0) (i64.const 1))
    (call $keccak256 (i64.const -1) (i64.const 0) (i64.const 2))
    (call $keccak512 (i64.const -1) (i64.const 0) (i64.const 3))
    (call $read_register (i64.const 1) (i64.const 256))
    (call $read_register (i64.const 2) (i64.const 288))
    (call $read_register (i64.const 3) (i64.const 320))
    (call $value_return (i64.const 128) (i64.const 256)))

  (func (export "current")
    (call $current_account_id (i64.const 1))
    (call $value_return (i64.const -1) (i64.const 1)))
  (func (export "predecessor")
    (call $predecessor_account_id (i64.const 1))
    (call $value_return (i64.const -1) (i64.const 1)))
  (func (export "signer")
    (call $signer_account_id (i64.const 1))
    (call $value_return (i64.const -1) (i64.const 1)))
  ;; [block_index, block_timestamp, epoch_height, u128 attached_deposit]
  (func (export "numbers")
    (i64.store (i32.const 256) (call $block_index))
    (i64.store (i32.const 264) (call $block_timestamp))
    (i64.store (i32.const 272) (call $epoch_height))
    (call $attached_deposit (i64.const 280))
    (call $value_return (i64.const 40) (i64.const 256)))
  ;; [prepaid_gas, used_gas]
  (func (export "gas")
    (i64.store (i32.const 256) (call $prepaid_gas))
    (i64.store (i32.const 264) (call $used_gas))
    (call $value_return (i64.const 16) (i64.const 256)))
  (func (export "seed")
    (call $random_seed (i64.const 1))
    (call $value_return (i64.const -1) (i64.const 1)))
  (func (export "promise")
    (drop (call $promise_batch_create (i64.const 10) (i64.const 80))))
  (func (export "spin")
    (loop $forever (br $forever)))
  (func (export "takes_a_param") (param i32))
)
"""


@pytest.fixture(scope="module")
def tiny_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(WAT))


@pytest.fixture
def tiny(tiny_wasm: bytes) -> NearEmulator:
    emu = NearEmulator()
    emu.deploy("tiny.near", tiny_wasm)
    return emu


def run(
    emu: NearEmulator,
    method: str,
    args: bytes = b"",
    *,
    account: str = "tiny.near",
    predecessor: str = "alice.near",
    signer: str = "alice.near",
    view: bool = False,
    deposit: int = 0,
    height: int = HEIGHT,
    ts: int = TS,
) -> ExecutionOutcome:
    return emu.call(
        account,
        method,
        args,
        predecessor=predecessor,
        signer=signer,
        block_height=height,
        block_timestamp_ns=ts,
        view=view,
        attached_deposit=deposit,
    )


def code_and_value(out: ExecutionOutcome) -> tuple[int, bytes]:
    assert out.ok, out.error
    assert out.return_value is not None
    return struct.unpack("<Q", out.return_value[:8])[0], out.return_value[8:]


def test_registers(tiny: NearEmulator) -> None:
    out = run(tiny, "registers")
    assert out.ok, out.error
    before, after = struct.unpack("<QQ", out.return_value[:16])  # type: ignore[index]
    assert before == U64_MAX  # register_len of an unset register
    assert after == 3
    assert out.return_value[16:] == b"abc"  # type: ignore[index]
    bad = run(tiny, "read_unset_register")
    assert not bad.ok
    assert bad.error == "Accessed invalid register id: 7"
    assert bad.error_kind == "ExecutionError"


def test_storage_write_read_remove_and_return_codes(tiny: NearEmulator) -> None:
    assert code_and_value(run(tiny, "read")) == (0, b"")
    assert code_and_value(run(tiny, "has")) == (0, b"")
    # first write: nothing evicted -> 0; second: 1 and the old value in the register
    assert code_and_value(run(tiny, "write", b"one")) == (0, b"")
    assert code_and_value(run(tiny, "write", b"two")) == (1, b"one")
    assert tiny.state("tiny.near") == {b"k": b"two"}
    assert code_and_value(run(tiny, "read")) == (1, b"two")
    assert code_and_value(run(tiny, "read_key_in_register", b"k")) == (1, b"two")
    assert code_and_value(run(tiny, "read_key_in_register", b"x")) == (0, b"")
    assert code_and_value(run(tiny, "has")) == (1, b"")
    # an empty value is a value: found, zero bytes
    assert code_and_value(run(tiny, "write", b"")) == (1, b"two")
    assert code_and_value(run(tiny, "read")) == (1, b"")
    assert code_and_value(run(tiny, "remove")) == (1, b"")
    assert code_and_value(run(tiny, "remove")) == (0, b"")
    assert tiny.state("tiny.near") == {}


def test_storage_usage_counts_code_and_records(tiny: NearEmulator, tiny_wasm: bytes) -> None:
    base = 100 + len(tiny_wasm)
    assert code_and_value(run(tiny, "usage"))[0] == base
    run(tiny, "write", b"12345")
    assert code_and_value(run(tiny, "usage"))[0] == base + 40 + 1 + 5
    assert tiny.storage_usage("tiny.near") == base + 46


def test_state_is_a_copy_and_redeploy_keeps_state(tiny: NearEmulator, tiny_wasm: bytes) -> None:
    run(tiny, "write", b"v")
    snapshot = tiny.state("tiny.near")
    snapshot[b"k"] = b"tampered"
    assert tiny.state("tiny.near") == {b"k": b"v"}
    tiny.deploy("tiny.near", tiny_wasm)
    assert tiny.state("tiny.near") == {b"k": b"v"}
    assert tiny.code_hash("tiny.near") == hashlib.sha256(tiny_wasm).digest()


@pytest.mark.parametrize(
    ("method", "error", "logs"),
    [
        ("write_then_panic_utf8", "Smart contract panicked: boom", []),
        ("write_then_panic", "Smart contract panicked: explicit guest panic", []),
        ("write_then_trap", "WebAssembly trap: An `unreachable` opcode was executed.", []),
        (
            "write_then_abort",
            'Smart contract panicked: oops, filename: "a.ts" line: 7 col: 3',
            ['ABORT: oops, filename: "a.ts" line: 7 col: 3'],
        ),
    ],
)
def test_a_failed_call_rolls_back_its_writes(
    tiny: NearEmulator, method: str, error: str, logs: list[str]
) -> None:
    run(tiny, "write", b"kept")
    out = run(tiny, method, b"lost")
    assert not out.ok
    assert out.error == error
    assert out.error_kind == "ExecutionError"
    assert out.return_value is None
    assert out.logs == logs
    assert out.host_calls.get("storage_write") == 1  # the write did happen, then rolled back
    assert tiny.state("tiny.near") == {b"k": b"kept"}


def test_logs(tiny: NearEmulator) -> None:
    out = run(tiny, "logs")
    assert out.ok, out.error
    assert out.logs == ["hello", "nul-ended", "hi", "ok"]
    failed = run(tiny, "log_then_panic")
    assert failed.logs == ["hello"]  # NEAR keeps the logs of a failed call
    assert failed.error == "Smart contract panicked: boom"
    many = run(tiny, "too_many_logs")
    assert not many.ok
    assert many.error == "The number of logs will exceed the limit 100"
    assert len(many.logs) == 100
    oob = run(tiny, "log_out_of_bounds")
    assert oob.error == "Accessed memory outside the bounds."
    assert run(tiny, "log_bad_utf8").error == "String encoding is bad UTF-8 sequence."


def test_hashes(tiny: NearEmulator) -> None:
    # known answers first: the emulator's Keccak is Ethereum's, not hashlib's SHA-3
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert keccak256(b"abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    )
    assert keccak512(b"").hex().startswith("0eab42de4c3ceb9235fc91acffe746b29c29a8c366b7c60e")
    data = b"x" * 200  # longer than one Keccak block
    out = run(tiny, "hashes", data)
    assert out.ok, out.error
    assert out.return_value == hashlib.sha256(data).digest() + keccak256(data) + keccak512(data)


def test_context(tiny: NearEmulator) -> None:
    assert run(tiny, "current").return_value == b"tiny.near"
    assert run(tiny, "predecessor", predecessor="bob.near").return_value == b"bob.near"
    assert run(tiny, "signer", signer="carol.near").return_value == b"carol.near"
    out = run(tiny, "numbers", deposit=10**24 + 5, height=86_400, ts=42)
    height, ts, epoch = struct.unpack("<QQQ", out.return_value[:24])  # type: ignore[index]
    assert (height, ts, epoch) == (86_400, 42, 2)
    assert int.from_bytes(out.return_value[24:40], "little") == 10**24 + 5  # type: ignore[index]
    prepaid, used = struct.unpack("<QQ", run(tiny, "gas").return_value)  # type: ignore[arg-type]
    assert prepaid == 300 * 10**12
    assert 0 < used < 100 * REGULAR_OP_COST
    seeds = {run(tiny, "seed", height=h).return_value for h in (1, 1, 2)}
    assert len(seeds) == 2 and all(len(s or b"") == 32 for s in seeds)


@pytest.mark.parametrize(
    ("method", "host_function"),
    [
        ("write", "storage_write"),
        ("remove", "storage_remove"),
        ("predecessor", "predecessor_account_id"),
        ("signer", "signer_account_id"),
        ("gas", "prepaid_gas"),
        ("promise", "promise_batch_create"),
    ],
)
def test_a_view_cannot_change_state(tiny: NearEmulator, method: str, host_function: str) -> None:
    run(tiny, "write", b"v")
    out = run(tiny, method, b"new", view=True)
    assert not out.ok
    assert out.error == f"{host_function} is not allowed in view calls"
    assert tiny.state("tiny.near") == {b"k": b"v"}
    # reads and the context a view may use still work
    assert code_and_value(run(tiny, "read", view=True)) == (1, b"v")
    assert run(tiny, "numbers", view=True).ok


def test_unmodelled_host_function_traps_clearly(tiny: NearEmulator) -> None:
    out = run(tiny, "promise")
    assert not out.ok
    assert (
        out.error is not None
        and "promise_batch_create is not modelled by the emulator" in out.error
    )


def test_method_resolution_and_missing_code(tiny: NearEmulator) -> None:
    assert (run(tiny, "no_such_method").error_kind, run(tiny, "no_such_method").error) == (
        "MethodResolveError",
        "MethodNotFound",
    )
    assert run(tiny, "takes_a_param").error == "MethodInvalidSignature"
    assert run(tiny, "").error == "MethodEmptyName"
    missing = run(tiny, "read", account="nobody.near")
    assert (missing.error_kind, missing.error) == (
        "CompilationError",
        "cannot find contract code for account nobody.near",
    )
    tiny.deploy("broken.near", b"\x00asm not wasm")
    assert run(tiny, "read", account="broken.near").error_kind == "CompilationError"


def test_instruction_budget_and_determinism(tiny: NearEmulator) -> None:
    tiny.prepaid_gas = 1_000_000 * REGULAR_OP_COST
    out = run(tiny, "spin")
    assert not out.ok
    assert out.error == "Exceeded the prepaid gas."
    assert out.instructions == 1_000_000
    first, second = run(tiny, "hashes", b"abc"), run(tiny, "hashes", b"abc")
    assert first.instructions == second.instructions > 0
    assert first.return_value == second.return_value


# ============================================================================ the contract


class Chain:
    """The emulator with the contract deployed, a block clock, and JSON helpers."""

    def __init__(self, wasm: bytes) -> None:
        self.emu = NearEmulator()
        self.emu.deploy(CONTRACT, wasm)
        self.height = HEIGHT
        self.ts = TS

    def call(self, method: str, args: Any = None, *, by: str = PUBLISHER) -> ExecutionOutcome:
        self.height += 1
        self.ts += 1_100_000_000
        raw = b"" if args is None else json.dumps(args).encode()
        return self.emu.call(
            CONTRACT,
            method,
            raw,
            predecessor=by,
            signer=by,
            block_height=self.height,
            block_timestamp_ns=self.ts,
        )

    def ok(self, method: str, args: Any = None, *, by: str = PUBLISHER) -> Any:
        out = self.call(method, args, by=by)
        assert out.ok, out.error
        assert out.return_value is not None
        return json.loads(out.return_value)

    def refused(self, method: str, args: Any = None, *, by: str = PUBLISHER) -> str:
        before = self.emu.state(CONTRACT)
        out = self.call(method, args, by=by)
        assert not out.ok, f"{method} should have been refused"
        assert self.emu.state(CONTRACT) == before
        assert out.error is not None and out.error.startswith("Smart contract panicked: ")
        return out.error.removeprefix("Smart contract panicked: ")

    def view_outcome(self, method: str, args: Any = None) -> ExecutionOutcome:
        raw = b"" if args is None else json.dumps(args).encode()
        before = self.emu.state(CONTRACT)
        out = self.emu.call(
            CONTRACT,
            method,
            raw,
            predecessor="",
            signer="",
            block_height=self.height,
            block_timestamp_ns=self.ts,
            view=True,
        )
        assert self.emu.state(CONTRACT) == before
        return out

    def view(self, method: str, args: Any = None) -> Any:
        out = self.view_outcome(method, args)
        assert out.ok, out.error
        assert out.return_value is not None
        return json.loads(out.return_value)

    def init(self) -> None:
        assert self.ok("init", {"owner": OWNER, "publisher": PUBLISHER}, by=CONTRACT) is True

    def publish(self, epoch: int, root: bytes, count: int, uri: str = "") -> Any:
        return self.ok("publish", {"epoch": epoch, "root": root.hex(), "count": count, "uri": uri})


@pytest.fixture(scope="module")
def contract_wasm() -> bytes:
    return WASM_PATH.read_bytes()


@pytest.fixture
def chain(contract_wasm: bytes) -> Chain:
    return Chain(contract_wasm)


def events(out: ExecutionOutcome) -> list[dict[str, Any]]:
    """The NEP-297 events of an outcome's logs, checked for the standard's shape."""
    found = []
    for line in out.logs:
        assert line.startswith("EVENT_JSON:"), line
        body = line.removeprefix("EVENT_JSON:")
        event = json.loads(body)
        assert list(event) == ["standard", "version", "event", "data"]
        assert (event["standard"], event["version"]) == ("renown_snapshots", "1.0.0")
        assert isinstance(event["data"], list) and len(event["data"]) == 1
        # compact, in key order, non-ASCII as raw UTF-8 (as MicroPython's json.dumps writes it)
        assert body == json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        found.append(event)
    return found


def leaves_for(epoch: int, n: int, seed: int = 7) -> list[Leaf]:
    rng = random.Random(seed)
    domains = ("images", "text", "audio")
    return [
        Leaf(f"user{i:04d}.near", domains[i % 3], rng.randrange(0, 100_000_001), epoch)
        for i in range(n)
    ]


def proof_args(tree: MerkleTree, index: int) -> dict[str, Any]:
    p = tree.proof(index)
    return {
        "epoch": p.leaf.epoch,
        "account": p.leaf.account,
        "domain": p.leaf.domain,
        "score_micro": p.leaf.score_micro,
        "index": p.index,
        "siblings": [s.hex() for s in p.siblings],
    }


def verify(chain: Chain, args: dict[str, Any]) -> bool:
    result = chain.view("verify", args)
    assert isinstance(result, bool)
    return result


def test_init_only_by_the_contract_account_and_once(chain: Chain) -> None:
    assert chain.refused("get_config") == (
        "the contract is not initialized: call init(owner, publisher) first"
    )
    args = {"owner": OWNER, "publisher": PUBLISHER}
    for who in (STRANGER, OWNER, PUBLISHER):
        assert chain.refused("init", args, by=who) == (
            f"init: only the contract account ({CONTRACT}) may call this; the caller is {who}"
        )
    assert chain.emu.state(CONTRACT) == {}
    chain.init()
    assert chain.view("get_config") == {"owner": OWNER, "publisher": PUBLISHER, "last_epoch": None}
    assert chain.refused("init", args, by=CONTRACT) == "init: the contract is already initialized"
    assert chain.view("get_latest_snapshot") is None


def test_publish_by_the_publisher_only_with_rising_epochs(chain: Chain) -> None:
    chain.init()
    tree = MerkleTree(leaves_for(7, 26))
    args = {"epoch": 7, "root": tree.root.hex(), "count": tree.count, "uri": "ipfs://seven"}
    for who in (STRANGER, OWNER, CONTRACT):
        assert chain.refused("publish", args, by=who) == (
            f"publish: only the publisher ({PUBLISHER}) may call this; the caller is {who}"
        )
    out = chain.call("publish", args)
    assert out.ok, out.error
    snap = json.loads(out.return_value or b"")
    assert snap == {**args, "block_timestamp": chain.ts, "block_height": chain.height}
    (event,) = events(out)
    assert event["event"] == "snapshot_published"
    assert event["data"] == [args]
    # the same epoch again, and an older one, are stale
    assert chain.refused("publish", args) == (
        "publish: epoch 7 is not newer than the last published epoch 7"
    )
    assert chain.refused("publish", {**args, "epoch": 6}) == (
        "publish: epoch 6 is not newer than the last published epoch 7"
    )
    assert chain.refused("publish", {**args, "epoch": 8, "root": tree.root.hex().upper()}) == (
        "publish: 'root' must be 64 lowercase hex characters (a sha256 digest)"
    )
    assert chain.refused("publish", {**args, "epoch": 8, "count": 0}) == (
        "publish: an epoch of 0 leaves must have the empty root sha256(b'')"
    )
    # the views
    assert chain.view("get_latest_snapshot") == snap
    assert chain.view("get_snapshot", {"epoch": 7}) == snap
    assert chain.view("get_snapshot", {"epoch": 8}) is None
    assert chain.view("get_config")["last_epoch"] == 7
    empty = chain.publish(9, empty_root(), 0)
    assert chain.view("get_latest_snapshot") == empty
    assert chain.view("get_snapshot", {"epoch": 7}) == snap


def test_set_publisher_by_the_owner_only(chain: Chain) -> None:
    chain.init()
    for who in (PUBLISHER, STRANGER):
        assert chain.refused("set_publisher", {"publisher": "new.near"}, by=who) == (
            f"set_publisher: only the owner ({OWNER}) may call this; the caller is {who}"
        )
    out = chain.call("set_publisher", {"publisher": "new.near"}, by=OWNER)
    assert out.ok, out.error
    (event,) = events(out)
    assert event["event"] == "publisher_changed"
    assert event["data"] == [{"old_publisher": PUBLISHER, "new_publisher": "new.near"}]
    stale_publisher = chain.refused(
        "publish", {"epoch": 1, "root": empty_root().hex(), "count": 0, "uri": ""}, by=PUBLISHER
    )
    assert stale_publisher.startswith("publish: only the publisher (new.near) may call this")


def test_store_scores_get_score_idempotent_and_never_older_over_newer(chain: Chain) -> None:
    chain.init()
    leaves = leaves_for(7, 40)
    batch: list[dict[str, Any]] = [
        {"account": x.account, "domain": x.domain, "score_micro": x.score_micro} for x in leaves
    ]
    assert chain.refused("store_scores", {"epoch": 7, "scores": batch}) == (
        "store_scores: epoch 7 has not been published"
    )
    chain.publish(7, MerkleTree(leaves).root, len(leaves))
    assert chain.refused("store_scores", {"epoch": 7, "scores": batch}, by=STRANGER).startswith(
        "store_scores: only the publisher"
    )
    out = chain.call("store_scores", {"epoch": 7, "scores": batch})
    assert out.ok, out.error
    assert json.loads(out.return_value or b"") == {"epoch": 7, "count": 40, "updated": 40}
    (event,) = events(out)
    assert event["event"] == "scores_stored"
    assert event["data"] == [{"epoch": 7, "count": 40, "updated": 40}]
    for leaf in leaves[:5]:
        assert chain.view("get_score", {"account": leaf.account, "domain": leaf.domain}) == {
            "score_micro": leaf.score_micro,
            "epoch": 7,
        }
    assert chain.view("get_score", {"account": "nobody.near", "domain": "images"}) is None
    # storage layout (contract/README.md "Storage")
    first = leaves[0]
    key = b"s" + bytes([len(first.account)]) + first.account.encode() + first.domain.encode()
    assert chain.emu.state(CONTRACT)[key] == struct.pack(">IQ", first.score_micro, 7)

    # the same batch again changes nothing
    before = chain.emu.state(CONTRACT)
    again = chain.ok("store_scores", {"epoch": 7, "scores": batch})
    assert again == {"epoch": 7, "count": 40, "updated": 0}
    assert chain.emu.state(CONTRACT) == before

    # epoch 9 stores a new score for one pair; epoch 7's batch replayed late keeps it
    chain.publish(9, leaf_hash(Leaf(first.account, first.domain, 5, 9)), 1)
    newer = [{"account": first.account, "domain": first.domain, "score_micro": 5}]
    assert chain.ok("store_scores", {"epoch": 9, "scores": newer})["updated"] == 1
    assert chain.ok("store_scores", {"epoch": 7, "scores": batch})["updated"] == 0
    assert chain.view("get_score", {"account": first.account, "domain": first.domain}) == {
        "score_micro": 5,
        "epoch": 9,
    }
    # a changed score of the same epoch replaces the stored one
    changed = [{**batch[1], "score_micro": (batch[1]["score_micro"] + 1) % 100_000_001}]
    assert chain.ok("store_scores", {"epoch": 7, "scores": changed})["updated"] == 1


def test_a_panic_halfway_rolls_back_the_whole_batch(chain: Chain) -> None:
    chain.init()
    chain.publish(3, empty_root(), 0)
    good = {"account": "good.near", "domain": "images", "score_micro": 1}
    bad = {"account": "Bad!", "domain": "images", "score_micro": 2}
    before = chain.emu.state(CONTRACT)
    out = chain.call("store_scores", {"epoch": 3, "scores": [good, bad]})
    assert not out.ok
    assert out.host_calls.get("storage_write") == 1  # entry 0 was written before the panic
    assert out.error == (
        "Smart contract panicked: store_scores: scores[1]: 'account' is not a valid NEAR "
        'account id: "Bad!"'
    )
    assert chain.emu.state(CONTRACT) == before
    assert chain.view("get_score", {"account": "good.near", "domain": "images"}) is None
    assert (
        chain.refused(
            "store_scores", {"epoch": 3, "scores": [{**good, "score_micro": 100_000_001}]}
        )
        == "store_scores: scores[0]: 'score_micro' must be an integer in [0, 100000000]"
    )
    assert chain.refused("store_scores", {"epoch": 3, "scores": [good] * 101}) == (
        "store_scores: at most 100 scores per call (gas), got 101"
    )


def test_a_view_cannot_call_a_change_method(chain: Chain) -> None:
    chain.init()
    for method, args in (
        ("publish", {"epoch": 1, "root": empty_root().hex(), "count": 0, "uri": ""}),
        ("store_scores", {"epoch": 1, "scores": []}),
        ("set_publisher", {"publisher": "x.near"}),
    ):
        out = chain.view_outcome(method, args)
        assert not out.ok
        assert out.error == "predecessor_account_id is not allowed in view calls"
    assert chain.view("get_config")["last_epoch"] is None


def test_verify_every_proof_and_reject_forgeries(chain: Chain) -> None:
    chain.init()
    leaves = leaves_for(7, 301)  # odd: promoted nodes on several levels
    tree = MerkleTree(leaves)
    chain.publish(7, tree.root, tree.count)
    other = MerkleTree(leaves_for(8, 301, seed=8))
    chain.publish(8, other.root, other.count)

    for i in range(tree.count):
        assert verify(chain, proof_args(tree, i)), f"genuine proof {i} refused"

    rng = random.Random(1)
    for i in rng.sample(range(tree.count), 25):
        args = proof_args(tree, i)
        sib = bytearray(bytes.fromhex(args["siblings"][0]))
        sib[rng.randrange(32)] ^= 1 << rng.randrange(8)
        flipped = [sib.hex(), *args["siblings"][1:]]
        forged = [
            {**args, "siblings": flipped},
            {**args, "score_micro": (args["score_micro"] + 1) % 100_000_001},
            {**args, "index": (i + 1) % tree.count},
            {**args, "epoch": 8},  # another published epoch
            {**args, "account": args["account"] + "x"},
            {**args, "siblings": args["siblings"][:-1]},  # too short
            {**args, "siblings": [*args["siblings"], args["siblings"][0]]},  # too long
            {**args, "index": tree.count},  # out of range
        ]
        for f in forged:
            assert verify(chain, f) is False, f"forged proof accepted: {f}"

    never = chain.view_outcome("verify", {**proof_args(tree, 0), "epoch": 99})
    assert never.error == "Smart contract panicked: verify: epoch 99 has not been published"
    bad_hex = chain.view_outcome("verify", {**proof_args(tree, 0), "siblings": ["zz"]})
    assert bad_hex.error == (
        "Smart contract panicked: verify: 'siblings[]' must be 64 lowercase hex characters "
        "(a sha256 digest)"
    )


def test_verify_single_leaf_and_metadata(chain: Chain) -> None:
    chain.init()
    leaf = Leaf("solo.near", "images", 42, 1)
    chain.publish(1, leaf_hash(leaf), 1)
    args = {
        "epoch": 1,
        "account": "solo.near",
        "domain": "images",
        "score_micro": 42,
        "index": 0,
        "siblings": [],
    }
    assert verify(chain, args) is True
    assert verify(chain, {**args, "score_micro": 43}) is False
    meta = chain.view("contract_source_metadata")
    assert meta["version"] == "1.0.0"
    assert {s["standard"] for s in meta["standards"]} == {"nep330", "nep297", "renown_snapshots"}


def call_raw(
    chain: Chain, method: str, raw: bytes, *, view: bool = False, by: str = PUBLISHER
) -> ExecutionOutcome:
    """``method`` with these argument bytes, by ``by`` (or as a view)."""
    if not view:
        chain.height += 1
        chain.ts += 1_100_000_000
    return chain.emu.call(
        CONTRACT,
        method,
        raw,
        predecessor="" if view else by,
        signer="" if view else by,
        block_height=chain.height,
        block_timestamp_ns=chain.ts,
        view=view,
    )


def call_as_py_near(
    chain: Chain, method: str, args: dict[str, Any], *, view: bool = False
) -> ExecutionOutcome:
    """``method`` with ``args`` serialised as py-near does: ``json.dumps``, ensure_ascii.

    A character outside the BMP is then a surrogate pair of ``\\uXXXX`` escapes, which
    MicroPython's ``json.loads`` decodes half by half (CESU-8); the contract re-joins them.
    """
    raw = json.dumps(args).encode()
    assert raw.isascii()
    return call_raw(chain, method, raw, view=view)


EMOJI_DOMAIN = "art \U0001f3a8"  # U+1F3A8: 4 UTF-8 bytes, a surrogate pair in JSON escapes


def test_strings_outside_the_bmp_as_py_near_sends_them(chain: Chain) -> None:
    chain.init()
    tree = MerkleTree([Leaf("a.near", EMOJI_DOMAIN, 5, 1), Leaf("b.near", "images", 6, 1)])
    uri = "ipfs://snap-\U0001f600-\U0010ffff-\u00e9\ud7ff"  # + 2- and 3-byte characters
    args = {"epoch": 1, "root": tree.root.hex(), "count": tree.count, "uri": uri}
    out = call_as_py_near(chain, "publish", args)
    assert out.ok, out.error
    snap = json.loads(out.return_value or b"")
    assert snap["uri"] == uri
    assert uri.encode() in (out.return_value or b"")  # stored and returned as UTF-8
    (event,) = events(out)
    assert event["data"] == [args]
    assert chain.view("get_snapshot", {"epoch": 1}) == snap

    # a genuine proof of the emoji leaf verifies; the ASCII one still does
    for i in (0, 1):
        out = call_as_py_near(chain, "verify", proof_args(tree, i), view=True)
        assert out.ok and out.return_value == b"true", (i, out.error)
    forged = {**proof_args(tree, 0), "domain": "art \U0001f3a9"}
    assert call_as_py_near(chain, "verify", forged, view=True).return_value == b"false"

    # store_scores keys the score by the domain's UTF-8; get_score finds it
    batch = [{"account": "a.near", "domain": EMOJI_DOMAIN, "score_micro": 5}]
    out = call_as_py_near(chain, "store_scores", {"epoch": 1, "scores": batch})
    assert out.ok, out.error
    key = b"s" + bytes([6]) + b"a.near" + EMOJI_DOMAIN.encode()
    assert chain.emu.state(CONTRACT)[key] == struct.pack(">IQ", 5, 1)
    got = call_as_py_near(
        chain, "get_score", {"account": "a.near", "domain": EMOJI_DOMAIN}, view=True
    )
    assert json.loads(got.return_value or b"") == {"score_micro": 5, "epoch": 1}

    # the byte limits count UTF-8 bytes: 16 emoji are 64 bytes (as escapes, 192 bytes)
    at_limit = [{"account": "a.near", "domain": "\U0001f3a8" * 16, "score_micro": 1}]
    out = call_as_py_near(chain, "store_scores", {"epoch": 1, "scores": at_limit})
    assert out.ok, out.error
    over = [{"account": "a.near", "domain": "\U0001f3a8" * 16 + "x", "score_micro": 1}]
    out = call_as_py_near(chain, "store_scores", {"epoch": 1, "scores": over})
    assert out.error == (
        "Smart contract panicked: store_scores: scores[0]: 'domain' must be 1 to 64 UTF-8 "
        "bytes, got 65"
    )
    # a refusal quoting an emoji argument is still a readable UTF-8 message
    bad_account = [{"account": "\U0001f3a8.near", "domain": "images", "score_micro": 1}]
    out = call_as_py_near(chain, "store_scores", {"epoch": 1, "scores": bad_account})
    assert out.error == (
        "Smart contract panicked: store_scores: scores[0]: 'account' is not a valid NEAR "
        'account id: "\U0001f3a8.near"'
    )


@pytest.mark.parametrize(
    "lone",
    ["\\ud83c", "\\udfa8", "\\udfa8\\ud83c", "\\ud83c\\ud83c", "\\ud83cx"],
)
def test_a_lone_surrogate_is_refused(chain: Chain, lone: str) -> None:
    chain.init()
    chain.publish(1, empty_root(), 0)
    before = chain.emu.state(CONTRACT)
    # raw JSON, as a client escaping a lone surrogate would send it
    domain = '"art ' + lone + '"'
    calls = [
        (
            "store_scores",
            '{"epoch":1,"scores":[{"account":"a.near","domain":' + domain + ',"score_micro":1}]}',
            "store_scores: scores[0]: 'domain'",
        ),
        (
            "verify",
            '{"epoch":1,"account":"a.near","domain":' + domain + ","
            '"score_micro":1,"index":0,"siblings":[]}',
            "verify: 'domain'",
        ),
        ("get_score", '{"account":"a.near","domain":' + domain + "}", "get_score: 'domain'"),
        (
            "publish",
            '{"epoch":2,"root":"' + empty_root().hex() + '","count":0,"uri":"x' + lone + '"}',
            "publish: 'uri'",
        ),
        ("set_publisher", '{"publisher":"p' + lone + '.near"}', "set_publisher: 'publisher'"),
    ]
    for method, raw, where in calls:
        view = method in ("verify", "get_score")
        by = OWNER if method == "set_publisher" else PUBLISHER
        out = call_raw(chain, method, raw.encode(), view=view, by=by)
        assert out.error == (
            f"Smart contract panicked: {where} contains an unpaired UTF-16 surrogate"
        ), method
    assert chain.emu.state(CONTRACT) == before


def test_a_string_that_is_not_utf8_is_not_json(chain: Chain) -> None:
    # what the surrogate re-joining relies on: MicroPython's json.loads refuses a string whose
    # bytes are not UTF-8 in form, so only surrogates (CESU-8) need repairing
    chain.init()
    chain.publish(1, empty_root(), 0)
    raw = b'{"epoch":1,"scores":[{"account":"a.near","domain":"a\xffb","score_micro":1}]}'
    out = call_raw(chain, "store_scores", raw)
    assert out.error == "Smart contract panicked: store_scores: arguments are not valid JSON"


def test_calls_are_deterministic(contract_wasm: bytes) -> None:
    def session() -> list[tuple[bool, bytes | None, int]]:
        chain = Chain(contract_wasm)
        chain.init()
        tree = MerkleTree(leaves_for(5, 10))
        results = [
            chain.call("publish", {"epoch": 5, "root": tree.root.hex(), "count": 10, "uri": "u"})
        ]
        results.append(chain.view_outcome("verify", proof_args(tree, 3)))
        return [(o.ok, o.return_value, o.instructions) for o in results]

    assert session() == session()


# ============================================================================ instructions


def synthetic_proof(count: int, epoch: int) -> tuple[dict[str, Any], bytes]:
    """A proof for leaf 0 of a ``count``-leaf tree, and the root it implies.

    The contract walks a proof with the count stored for the epoch, so the number of
    siblings (10, 17, 20 for 1k, 100k, 1M leaves) is what costs; the sibling values do
    not matter, and ``root_from_proof`` (which refuses a wrong shape) gives the root.
    """
    leaf = Leaf("user0001.near", "images", 87_654_321, epoch)
    size, n = count, 0
    while size > 1:
        n += 1  # leaf 0 is never the promoted last node of an odd level
        size = (size + 1) // 2
    siblings = [hashlib.sha256(f"sibling {epoch} {i}".encode()).digest() for i in range(n)]
    root = root_from_proof(leaf_hash(leaf), 0, count, siblings)
    args = {
        "epoch": epoch,
        "account": leaf.account,
        "domain": leaf.domain,
        "score_micro": leaf.score_micro,
        "index": 0,
        "siblings": [s.hex() for s in siblings],
    }
    return args, root


def test_instructions_of_verify_and_store_scores(chain: Chain) -> None:
    chain.init()
    report: dict[str, int] = {}
    verify_counts = []
    for epoch, (count, expected_len) in enumerate(
        ((1_000, 10), (100_000, 17), (1_000_000, 20)), start=1
    ):
        args, root = synthetic_proof(count, epoch)
        assert len(args["siblings"]) == expected_len
        chain.publish(epoch, root, count)
        out = chain.view_outcome("verify", args)
        assert out.ok and out.return_value == b"true", out.error
        assert out.host_calls["sha256"] == expected_len + 1
        report[f"verify, {count:,} leaves ({expected_len} siblings)"] = out.instructions
        verify_counts.append(out.instructions)
    assert verify_counts == sorted(verify_counts)

    for start, n in ((0, 50), (5_000, 100)):
        batch = [
            {
                "account": f"contributor{i:04d}.near",
                "domain": "images",
                "score_micro": 1_234_567 + i,
            }
            for i in range(start, start + n)
        ]
        assert len(json.dumps({"epoch": 3, "scores": batch})) <= 8192
        out = chain.call("store_scores", {"epoch": 3, "scores": batch})
        assert out.ok, out.error
        assert json.loads(out.return_value or b"")["updated"] == n
        report[f"store_scores, {n} new scores (20-byte accounts)"] = out.instructions

    print("\nwasm instructions per call (wasmtime fuel; gas NOT measured):")
    for what, instructions in report.items():
        print(f"  {what:<48} {instructions:>12,}")
        # far below the ~365 M instructions that 300 Tgas would pay for at regular_op_cost
        assert 0 < instructions < 40_000_000
