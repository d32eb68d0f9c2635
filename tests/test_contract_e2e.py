"""The snapshot contract end to end: the committed wasm (contract/build/), run by the wasm
host emulator (tests/near_emulator.py) behind the JSON-RPC double (tests/near_rpc_double.py),
driven by the real py-near client through chain.client.NearRpcClient, the publisher and
the CLI. Both doubles are test doubles, not NEAR: see their docstrings for what they model.

Set-up, as an operator would do it on testnet: deploy with the contract account's
full-access key (py-near ``deploy_contract``), ``init`` called by the contract account,
then a function-call key of the publisher account limited to the contract's ``publish`` and
``store_scores`` (py-near ``add_public_key``), which the publisher signs with.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import base58
import pytest
from py_near import transactions
from py_near.account import Account
from py_near.exceptions.provider import InvalidNonce, InvalidSignature, InvalidTxError
from py_near.providers import JsonProvider
from sqlalchemy import select

from chain.client import ChainUnavailable, NearRpcClient
from chain.publisher import Publisher, PublishFailed, top_rows
from renown import cli
from renown.cli import verify_on_chain
from scoring.merkle import Leaf, Proof
from storage.db import make_engine, make_session_factory
from storage.models import Publication, PublicationTx
from storage.snapshot_repo import latest_snapshot, prove
from storage.uow import UnitOfWork
from tests.near_emulator import NearEmulator
from tests.near_rpc_double import Applied, KeyPair, NearRpcDouble, decode_signed_transaction
from tests.test_publisher import _scored

T = TypeVar("T")

WASM = Path(__file__).resolve().parents[1] / "contract" / "build" / "renown_snapshots.wasm"
CONTRACT = "snapshots.renown.near"
OWNER = "owner.renown.near"
PUBLISHER = "publisher.renown.near"
STRANGER = "mallory.near"


@dataclass
class Localnet:
    rpc: NearRpcDouble
    url: str
    keys: dict[str, KeyPair]  # each account's full-access key
    publisher_key: KeyPair  # the publisher's function-call key (publish, store_scores)

    def client(self, account: str | None = PUBLISHER, key: KeyPair | None = None) -> NearRpcClient:
        if account is None:
            return NearRpcClient(self.url, CONTRACT)
        key = key or (self.publisher_key if account == PUBLISHER else self.keys[account])
        return NearRpcClient(self.url, CONTRACT, account, key.secret)

    def applied_methods(self) -> list[str]:
        """The method of every transaction applied after the set-up (3 transactions)."""
        return [m for a in self.rpc.applied[3:] for m in a.methods]

    def published_epoch(self) -> int | None:
        """The latest epoch the contract holds (its ``get_latest_snapshot`` view)."""
        reader = self.client(None)
        try:
            snap = reader.view("get_latest_snapshot", {})
        finally:
            reader.close()
        return None if snap is None else int(snap["epoch"])


def _py_near(url: str, account: str, key: KeyPair, use: Callable[[Account], Awaitable[T]]) -> T:
    """Run ``use`` with a started py-near Account (its own event loop), then shut it."""

    async def run() -> T:
        acc = Account(account, key.secret, rpc_addr=url)
        await acc.startup()
        try:
            return await use(acc)
        finally:
            await acc.shutdown()

    return asyncio.run(run())


@pytest.fixture
def localnet() -> Iterator[Localnet]:
    rpc = NearRpcDouble(NearEmulator())
    keys = {name: KeyPair.generate() for name in (CONTRACT, OWNER, PUBLISHER, STRANGER)}
    for name, key in keys.items():
        rpc.create_account(name, key)
    publisher_key = KeyPair.generate()
    with rpc.running() as url:
        wasm = WASM.read_bytes()

        async def deploy_and_init(acc: Account) -> list[Any]:
            deployed = await acc.deploy_contract(wasm)
            init = await acc.function_call(
                CONTRACT, "init", {"owner": OWNER, "publisher": PUBLISHER}
            )
            return [deployed, init]

        async def add_key(acc: Account) -> Any:
            return await acc.add_public_key(
                publisher_key.public, CONTRACT, ["publish", "store_scores"]
            )

        results = _py_near(url, CONTRACT, keys[CONTRACT], deploy_and_init)
        results.append(_py_near(url, PUBLISHER, keys[PUBLISHER], add_key))
        assert all("SuccessValue" in r.status for r in results), [r.status for r in results]
        yield Localnet(rpc, url, keys, publisher_key)


def _sqlite(tmp_path: Path) -> str:
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'renown.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _publisher(url: str, client: NearRpcClient, **kw: Any) -> Publisher:
    return Publisher(make_session_factory(make_engine(url), writer=True), client, **kw)


def _expected(url: str, top_n: int) -> tuple[int, str, int, dict[tuple[str, str], int]]:
    engine = make_engine(url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        snap = latest_snapshot(uow.session)
        rows = top_rows(uow.session, snap.epoch, top_n)
        out = snap.epoch, snap.root, snap.leaf_count
    engine.dispose()
    return (*out, {(r.account, r.domain): r.score_micro for r in rows})


def _on_chain_scores(client: NearRpcClient, keys: list[tuple[str, str]]) -> dict[Any, Any]:
    return {(a, d): client.view("get_score", {"account": a, "domain": d}) for a, d in keys}


# ----------------------------------------------------------------------------- set-up


def test_deploy_init_and_a_function_call_key_through_py_near(localnet: Localnet) -> None:
    rpc = localnet.rpc
    assert [a.actions for a in rpc.applied] == [
        ("DeployContract",),
        ("FunctionCall:init",),
        ("AddKey",),
    ]
    assert all(a.ok for a in rpc.applied)
    wasm = WASM.read_bytes()

    async def inspect(acc: Account) -> tuple[Any, Any]:
        return await acc.fetch_state(), await acc.get_access_key_list(PUBLISHER)

    state, keys = _py_near(localnet.url, CONTRACT, localnet.keys[CONTRACT], inspect)
    assert state["code_hash"] == base58.b58encode(hashlib.sha256(wasm).digest()).decode()
    by_key = {k.public_key: k.access_key for k in keys}
    assert by_key[localnet.keys[PUBLISHER].public]["permission"] == "FullAccess"
    fc = by_key[localnet.publisher_key.public]
    assert fc["permission"]["FunctionCall"]["receiver_id"] == CONTRACT
    assert fc["permission"]["FunctionCall"]["method_names"] == ["publish", "store_scores"]
    # NEAR starts a new key's nonce at (block height - 1) * 10**6.
    assert fc["nonce"] == (rpc.applied[-1].block_height - 1) * 10**6

    reader = localnet.client(None)
    try:
        assert reader.view("get_config", {}) == {
            "owner": OWNER,
            "publisher": PUBLISHER,
            "last_epoch": None,
        }
        assert reader.view("get_latest_snapshot", {}) is None
    finally:
        reader.close()
    # init is once only, even for the contract account.
    again = localnet.client(CONTRACT)
    try:
        out = again.call("init", {"owner": STRANGER, "publisher": STRANGER})
    finally:
        again.close()
    assert not out.ok and "already initialized" in (out.error or "")


def test_deploy_and_init_in_one_transaction_is_all_or_nothing(localnet: Localnet) -> None:
    """contract/README.md: deploy and init in one transaction, so that no one can init
    between the two. One receipt: an init that panics undoes the deploy."""
    wasm = WASM.read_bytes()
    key = KeyPair.generate()
    second = "second.renown.near"
    localnet.rpc.create_account(second, key)

    def deploy_init(publisher: str) -> Callable[[Account], Awaitable[Any]]:
        async def use(acc: Account) -> Any:
            args = json.dumps({"owner": OWNER, "publisher": publisher}).encode()
            actions = [
                transactions.create_deploy_contract_action(wasm),
                transactions.create_function_call_action("init", args, 10**14, 0),
            ]
            return await acc.sign_and_submit_tx(second, actions)

        return use

    bad = _py_near(localnet.url, second, key, deploy_init("NOT AN ACCOUNT"))
    failure = bad.status["Failure"]["ActionError"]
    assert failure["index"] == 1
    assert (
        "is not a valid NEAR account id" in failure["kind"]["FunctionCallError"]["ExecutionError"]
    )
    assert localnet.rpc.accounts[second].code is None  # the deploy was undone
    good = _py_near(localnet.url, second, key, deploy_init(PUBLISHER))
    assert good.status == {"SuccessValue": base64.b64encode(b"true").decode()}
    reader = NearRpcClient(localnet.url, second)
    try:
        assert reader.view("get_config", {})["publisher"] == PUBLISHER
    finally:
        reader.close()


# ----------------------------------------------------------------------------- publishing


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_publish_read_and_verify_through_the_cli(
    backend: str,
    localnet: Localnet,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = _sqlite(tmp_path) if backend == "sqlite" else request.getfixturevalue("pg_url")
    seeds = _scored(url)
    monkeypatch.setenv("RENOWN_NEAR_RPC_URL", localnet.url)
    monkeypatch.setenv("RENOWN_CONTRACT_ID", CONTRACT)
    monkeypatch.setenv("RENOWN_PUBLISHER_ACCOUNT_ID", PUBLISHER)
    monkeypatch.setenv("RENOWN_PUBLISHER_PRIVATE_KEY", localnet.publisher_key.secret)
    monkeypatch.setenv("RENOWN_PUBLISH_TOP_N", "10")
    monkeypatch.setenv("RENOWN_PUBLISH_BATCH_SIZE", "4")
    monkeypatch.setenv("RENOWN_SNAPSHOT_URI_TEMPLATE", "https://renown.example/{epoch}.jsonl")
    monkeypatch.delenv("RENOWN_KAFKA_BOOTSTRAP", raising=False)
    base = ["--database-url", url]

    assert cli.main([*base, "publish"]) == 0
    epoch, root, count, want = _expected(url, 10)
    out = capsys.readouterr().out
    assert f"epoch {epoch} published to {CONTRACT}: root {root}" in out
    batches = -(-len(want) // 4)
    assert f"{batches} score batches ({batches} sent now, 0 found on chain)" in out
    assert localnet.applied_methods() == ["publish"] + ["store_scores"] * batches
    assert all(a.ok for a in localnet.rpc.applied)

    reader = localnet.client(None)
    try:
        snap = reader.view("get_latest_snapshot", {})
        assert (snap["epoch"], snap["root"], snap["count"]) == (epoch, root, count)
        assert snap["uri"] == f"https://renown.example/{epoch}.jsonl"
        publish_block = localnet.rpc.applied[3].block_height
        assert snap["block_height"] == publish_block
        assert reader.view("get_snapshot", {"epoch": epoch}) == snap
        assert reader.view("get_config", {})["last_epoch"] == epoch
        stored = _on_chain_scores(reader, list(want))
        assert stored == {k: {"score_micro": v, "epoch": epoch} for k, v in want.items()}
        # Every stored score is a leaf of the published root.
        engine = make_engine(url)
        with UnitOfWork(make_session_factory(engine)) as uow:
            proven = prove(uow.session, seeds[0], "global")
        engine.dispose()
        assert proven.root == root
        local, remote, _ = verify_on_chain(reader, proven.proof)
        assert local and remote
        # A forged proof: a better score for the same leaf position, or another account.
        real = proven.proof
        for leaf in (
            dataclasses.replace(real.leaf, score_micro=real.leaf.score_micro + 1),
            dataclasses.replace(real.leaf, account="mallory.near"),
        ):
            forged = Proof(leaf, real.index, real.count, real.siblings)
            assert verify_on_chain(reader, forged)[:2] == (False, False)
            args = forged.to_json()
            args.pop("count")
            assert reader.view("verify", args) is False
    finally:
        reader.close()

    # `renown verify` reads the root with a view call through py-near.
    monkeypatch.delenv("RENOWN_PUBLISHER_PRIVATE_KEY")
    assert cli.main([*base, "verify", seeds[0]]) == 0
    assert f"PROVEN: {seeds[0]} in global at epoch {epoch}" in capsys.readouterr().out
    # Publishing again sends nothing.
    monkeypatch.setenv("RENOWN_PUBLISHER_PRIVATE_KEY", localnet.publisher_key.secret)
    applied = len(localnet.rpc.applied)
    assert cli.main([*base, "publish"]) == 0
    assert "already published" in capsys.readouterr().out
    assert len(localnet.rpc.applied) == applied


def test_a_stale_epoch_is_refused_by_the_contract(localnet: Localnet, tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    _scored(url)
    client = localnet.client()
    try:
        res = _publisher(url, client, top_n=5, batch_size=50).publish()
        epoch, root, count, _ = _expected(url, 5)
        assert res.epoch == epoch
        for stale in (epoch, epoch - 1, 0):
            out = client.call("publish", {"epoch": stale, "root": "ab" * 32, "count": 1, "uri": ""})
            assert not out.ok and out.tx_hash
            assert f"publish: epoch {stale} is not newer than the last published epoch {epoch}" in (
                out.error or ""
            )
        # store_scores for an epoch never published is refused too.
        row = {"account": "alice.near", "domain": "global", "score_micro": 1}
        out = client.call("store_scores", {"epoch": epoch + 1, "scores": [row]})
        assert not out.ok and "not been published" in (out.error or "")
        snap = client.view("get_latest_snapshot", {})
        assert (snap["epoch"], snap["root"], snap["count"]) == (epoch, root, count)
    finally:
        client.close()
    assert [a.ok for a in localnet.rpc.applied[3:]] == [True, True, False, False, False, False]


def test_a_stranger_is_refused(localnet: Localnet, tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    _scored(url)
    # Another account, signing with its own full-access key: the contract panics.
    mallory = localnet.client(STRANGER)
    try:
        out = mallory.call("publish", {"epoch": 1, "root": "ab" * 32, "count": 1, "uri": ""})
        assert not out.ok and out.tx_hash
        assert out.error == (
            f"Smart contract panicked: publish: only the publisher ({PUBLISHER}) may call "
            f"this; the caller is {STRANGER}"
        )
        with pytest.raises(PublishFailed, match=r"failed on chain: .*only the publisher"):
            _publisher(url, mallory).publish()
        out = mallory.call("set_publisher", {"publisher": STRANGER})
        assert not out.ok and "only the owner" in (out.error or "")
    finally:
        mallory.close()
    # The publisher's function-call key cannot call anything else, nor another contract:
    # the node refuses the transaction before it applies.
    publisher = localnet.client()
    try:
        out = publisher.call("set_publisher", {"publisher": PUBLISHER})
        assert not out.ok and out.error == (
            "transaction refused by the node: InvalidTxError: InvalidAccessKeyError: "
            'MethodNameMismatch: {"method_name": "set_publisher"}'
        )
    finally:
        publisher.close()
    other = NearRpcClient(localnet.url, OWNER, PUBLISHER, localnet.publisher_key.secret)
    try:
        out = other.call("publish", {})
        assert not out.ok and "ReceiverMismatch" in (out.error or "")
    finally:
        other.close()
    # A key that is not the account's.
    wrong = localnet.client(PUBLISHER, localnet.keys[STRANGER])
    try:
        out = wrong.call("publish", {"epoch": 1, "root": "ab" * 32, "count": 1, "uri": ""})
        assert not out.ok and "does not exist while viewing" in (out.error or "")
    finally:
        wrong.close()
    reader = localnet.client(None)
    try:
        assert reader.view("get_config", {}) == {
            "owner": OWNER,
            "publisher": PUBLISHER,
            "last_epoch": None,
        }
    finally:
        reader.close()
    assert [a.methods for a in localnet.rpc.applied[3:]] == [
        ("publish",),
        ("publish",),
        ("set_publisher",),
    ]
    assert [json.dumps(r[1]) for r in localnet.rpc.refused] == [
        json.dumps(
            {
                "TxExecutionError": {
                    "InvalidTxError": {
                        "InvalidAccessKeyError": {
                            "MethodNameMismatch": {"method_name": "set_publisher"}
                        }
                    }
                }
            }
        ),
        json.dumps(
            {
                "TxExecutionError": {
                    "InvalidTxError": {
                        "InvalidAccessKeyError": {
                            "ReceiverMismatch": {"tx_receiver": OWNER, "ak_receiver": CONTRACT}
                        }
                    }
                }
            }
        ),
    ]


def _crash_after(method: str, nth: int) -> Callable[[Applied], bool]:
    seen = {"n": 0}

    def drop(applied: Applied) -> bool:
        if method in applied.methods:
            seen["n"] += 1
            return seen["n"] == nth
        return False

    return drop


@pytest.mark.parametrize("crash_at", [("publish", 1), ("store_scores", 2)])
def test_a_publisher_dying_halfway_resumes_and_stores_every_batch_once(
    localnet: Localnet, tmp_path: Path, crash_at: tuple[str, int]
) -> None:
    """The node applies the transaction, then the connection drops before the answer (as
    when the publisher is killed right after its transaction landed): the run stops with
    ChainUnavailable, nothing recorded for that transaction; the next run, a new process
    with a new client, finds it on chain and sends every other transaction exactly once."""
    url = _sqlite(tmp_path)
    _scored(url)
    localnet.rpc.drop_after = _crash_after(*crash_at)
    first = localnet.client()
    try:
        with pytest.raises(ChainUnavailable):
            _publisher(url, first, top_n=10, batch_size=4).publish()
    finally:
        first.close()
    assert len(localnet.rpc.dropped) == 1 and localnet.rpc.dropped[0].ok
    localnet.rpc.drop_after = None
    engine = make_engine(url)
    with UnitOfWork(make_session_factory(engine)) as uow:
        pub = uow.session.execute(select(Publication)).scalar_one()
        done_before = pub.batches_done
        assert done_before == (crash_at[1] - 1 if crash_at[0] == "store_scores" else 0)
    engine.dispose()

    second = localnet.client()
    try:
        res = _publisher(url, second, top_n=10, batch_size=4).publish()
        epoch, root, _, want = _expected(url, 10)
        stored = _on_chain_scores(second, list(want))
    finally:
        second.close()
    assert stored == {k: {"score_micro": v, "epoch": epoch} for k, v in want.items()}
    methods = localnet.applied_methods()
    assert methods == ["publish"] + ["store_scores"] * res.batches  # each exactly once
    assert all(a.ok for a in localnet.rpc.applied)
    assert res.batches_found_on_chain == (1 if crash_at[0] == "store_scores" else 0)
    assert res.batches_sent == res.batches - done_before - res.batches_found_on_chain
    # Every batch's arguments went out once: no two applied store_scores are equal.
    hashes = [a.hash for a in localnet.rpc.applied]
    assert len(set(hashes)) == len(hashes)
    assert res.root == root


def test_a_failed_transaction_is_reported_and_the_next_run_finishes(
    localnet: Localnet, tmp_path: Path
) -> None:
    """The owner hands the contract to another publisher while a publication is halfway:
    the next store_scores panics in the contract, the publisher reports the contract's
    message (PublishFailed), records the failed transaction and marks the publication
    failed; once the publisher is restored, the next run finishes it."""
    url = _sqlite(tmp_path)
    _scored(url)
    localnet.rpc.drop_after = _crash_after("store_scores", 1)
    client = localnet.client()
    try:
        with pytest.raises(ChainUnavailable):
            _publisher(url, client, top_n=10, batch_size=4).publish()
    finally:
        client.close()
    localnet.rpc.drop_after = None
    owner = localnet.client(OWNER)
    try:
        assert owner.call("set_publisher", {"publisher": STRANGER}).ok
        client = localnet.client()
        try:
            pattern = (
                r"store_scores batch 2/\d+ of epoch \d+ failed on chain: Smart contract "
                rf"panicked: store_scores: only the publisher \({STRANGER}\) may call this; "
                rf"the caller is {PUBLISHER}"
            )
            with pytest.raises(PublishFailed, match=pattern):
                _publisher(url, client, top_n=10, batch_size=4).publish()
        finally:
            client.close()
        engine = make_engine(url)
        with UnitOfWork(make_session_factory(engine)) as uow:
            pub = uow.session.execute(select(Publication)).scalar_one()
            assert pub.stage == "failed" and "only the publisher" in (pub.last_error or "")
            txs = uow.session.execute(select(PublicationTx).order_by(PublicationTx.id))
            rows = txs.scalars().all()
            failed = [t for t in rows if not t.ok]
            assert len(failed) == 1 and failed[0].step == 2
            assert failed[0].tx_hash == localnet.rpc.applied[-1].hash
            assert "only the publisher" in (failed[0].error or "")
        engine.dispose()
        assert owner.call("set_publisher", {"publisher": PUBLISHER}).ok
    finally:
        owner.close()
    client = localnet.client()
    try:
        res = _publisher(url, client, top_n=10, batch_size=4).publish()
        epoch, _, _, want = _expected(url, 10)
        assert _on_chain_scores(client, list(want)) == {
            k: {"score_micro": v, "epoch": epoch} for k, v in want.items()
        }
    finally:
        client.close()
    ok_stores = [a for a in localnet.rpc.applied if "store_scores" in a.methods and a.ok]
    assert len(ok_stores) == res.batches


# ----------------------------------------------------------------------------- the node


def _signed(
    localnet: Localnet, nonce: int, args: dict[str, Any], block_hash: str | None = None
) -> str:
    block = base58.b58decode(block_hash or localnet.rpc.latest.hash)
    action = transactions.create_function_call_action(
        "publish", json.dumps(args).encode(), 10**14, 0
    )
    key = base58.b58decode(localnet.publisher_key.secret.removeprefix("ed25519:"))
    return transactions.sign_and_serialize_transaction(
        PUBLISHER, key, CONTRACT, nonce, [action], block
    )


def _send(localnet: Localnet, signed: str) -> Any:
    async def run() -> Any:
        provider = JsonProvider(localnet.url)
        try:
            return await provider.send_tx_and_wait(signed)
        finally:
            await provider.shutdown()

    return asyncio.run(run())


def test_the_node_refuses_a_bad_signature_a_replayed_nonce_and_an_unknown_block(
    localnet: Localnet,
) -> None:
    rpc = localnet.rpc
    nonce = rpc.accounts[PUBLISHER].keys[localnet.publisher_key.public_bytes].nonce
    args = {"epoch": 7, "root": "cd" * 32, "count": 2, "uri": ""}
    good = _signed(localnet, nonce + 1, args)
    tx = decode_signed_transaction(base64.b64decode(good))
    assert (tx.signer_id, tx.receiver_id, tx.nonce) == (PUBLISHER, CONTRACT, nonce + 1)
    assert tx.public_key == localnet.publisher_key.public_bytes
    call = tx.actions[0]
    assert call.kind == "FunctionCall" and call.fields["method_name"] == "publish"
    assert json.loads(call.fields["args"]) == args and call.fields["gas"] == 10**14
    key = base58.b58decode(localnet.publisher_key.secret.removeprefix("ed25519:"))
    action = transactions.create_function_call_action(
        "publish", json.dumps(args).encode(), 10**14, 0
    )
    assert tx.hash_b58 == transactions.calc_trx_hash(
        PUBLISHER, key, CONTRACT, nonce + 1, [action], base58.b58decode(rpc.latest.hash)
    )
    applied = len(rpc.applied)

    # A flipped signature byte, and arguments changed after signing.
    raw = bytearray(base64.b64decode(good))
    raw[-1] ^= 1
    with pytest.raises(InvalidSignature):
        _send(localnet, base64.b64encode(bytes(raw)).decode())
    tampered = base64.b64decode(good).replace(b'"epoch": 7', b'"epoch": 9')
    with pytest.raises(InvalidSignature):
        _send(localnet, base64.b64encode(tampered).decode())
    # A block this chain never had.
    with pytest.raises(InvalidTxError) as expired:
        _send(localnet, _signed(localnet, nonce + 1, args, base58.b58encode(b"\7" * 32).decode()))
    assert type(expired.value).__name__ == "Expired"
    assert len(rpc.applied) == applied

    # The good one applies; sent again, the same transaction is not applied twice (NEAR
    # returns its known outcome); another transaction with a used nonce is refused.
    first = _send(localnet, good)
    assert "SuccessValue" in first.status and first.transaction.hash == tx.hash_b58
    again = _send(localnet, good)
    assert again.transaction.hash == tx.hash_b58 and again.status == first.status
    assert len(rpc.applied) == applied + 1
    for reused in (nonce + 1, nonce):
        with pytest.raises(InvalidNonce) as refused:
            _send(localnet, _signed(localnet, reused, args | {"epoch": 8}))
        assert (refused.value.tx_nonce, refused.value.ak_nonce) == (reused, nonce + 1)
    assert len(rpc.applied) == applied + 1
    invalid = [r[1]["TxExecutionError"]["InvalidTxError"] for r in rpc.refused]
    assert [e if isinstance(e, str) else next(iter(e)) for e in invalid] == [
        "InvalidSignature",
        "InvalidSignature",
        "Expired",
        "InvalidNonce",
        "InvalidNonce",
    ]


def test_an_unreachable_node_is_chain_unavailable(localnet: Localnet) -> None:
    url = localnet.url
    localnet.rpc.stop()
    client = NearRpcClient(url, CONTRACT, PUBLISHER, localnet.publisher_key.secret)
    try:
        with pytest.raises(ChainUnavailable):
            client.view("get_config", {})
        with pytest.raises(ChainUnavailable):
            client.call("publish", {})
    finally:
        client.close()
    fresh = NearRpcClient(url, CONTRACT)
    try:
        with pytest.raises(ChainUnavailable):
            fresh.view("get_config", {})
    finally:
        fresh.close()


def test_a_view_of_an_unknown_method_or_a_panic_is_a_view_error(localnet: Localnet) -> None:
    from chain.client import ViewError

    reader = localnet.client(None)
    try:
        with pytest.raises(ViewError, match=r"MethodResolveError\(MethodNotFound\)"):
            reader.view("no_such_method", {})
        leaf = Leaf("alice.near", "global", 1, 99)
        args = Proof(leaf, 0, 1, ()).to_json()
        args.pop("count")
        with pytest.raises(ViewError, match="verify: epoch 99 has not been published"):
            reader.view("verify", args)
    finally:
        reader.close()
