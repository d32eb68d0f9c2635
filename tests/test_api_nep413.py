"""NEP-413 sign-in for contributors (api/nep413.py, api/routes/contributors.py,
chain/access_keys.py): the payload against near-api-js's test vectors, each refusal, and
an appeal end to end over HTTP with the keys checked against the NEAR JSON-RPC double
(tests/near_rpc_double.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import base58
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from nacl.signing import SigningKey
from py_near.account import Account
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from api import nep413
from api.app import create_app
from api.auth import rate_limited
from api.errors import ApiError
from api.routes import contributors
from chain.access_keys import full_access_keys
from chain.client import ChainUnavailable
from moderation import service
from renown.broker import free_port
from renown.settings import Settings
from storage.db import make_engine, make_session_factory
from tests.near_emulator import NearEmulator
from tests.near_rpc_double import KeyPair, NearRpcDouble
from tests.test_contract_e2e import _py_near
from tests.worlds import apply_world

CONTRACT = "snapshots.renown.near"  # the recipient, as settings.contract_id
FLAGGED = "sp000.near"  # accounts of tests.worlds' tiny world
OTHER = "ring00.near"
MODS = ["alice", "bob"]

# near-api-js, packages/signers/test/key_pair_signer.test.ts ("test sign NEP-413 message
# with / without callback url"): KeyPairSigner(secret).signNep413Message("Hello NEAR!",
# "round-toad.testnet", "example.near", base64 nonce[, "http://localhost:3000"]).
VECTOR_SECRET = (
    "ed25519:3FyRtUUMxiNT1g2ST6mbj7W1CN7KfQBbomawC7YG4A1z"
    "wHmw2TRsn1Wc8NaFcBCoJDu3zt3znJDSwKQ31oRaKXH7"
)
VECTOR_NONCE = "KNV0cOpvJ50D5vfF9pqWom8wo2sliQ4W+Wa7uZ3Uk6Y="
VECTOR_SIG_WITH_CALLBACK = (
    "zzZQ/GwAjrZVrTIFlvmmQbDQHllfzrr8urVWHaRt5cPfcXaCSZo35c5LDpPpTKivR6BxLyb3lcPM0FfCW5lcBQ=="
)
VECTOR_SIG_WITHOUT = (
    "NnJgPU1Ql7ccRTITIoOVsIfElmvH1RV7QAT4a9Vh6ShCOnjIzRwxqX54JzoQ/nK02p7VBMI2vJn48rpImIJwAw=="
)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def signing_key(key: KeyPair) -> SigningKey:
    return SigningKey(base58.b58decode(key.secret.removeprefix("ed25519:"))[:32])


def sign(
    key: KeyPair,
    account: str,
    message: dict[str, Any] | str,
    *,
    recipient: str = CONTRACT,
    nonce: bytes | None = None,
    callback_url: str | None = None,
    claimed_key: str | None = None,
) -> dict[str, Any]:
    """What a wallet's signMessage returns, with what it signed (the request's ``signed``)."""
    text = message if isinstance(message, str) else json.dumps(message)
    nonce = os.urandom(32) if nonce is None else nonce
    digest = nep413.payload_hash(text, nonce, recipient, callback_url)
    out: dict[str, Any] = {
        "accountId": account,
        "publicKey": claimed_key or key.public,
        "signature": base64.b64encode(signing_key(key).sign(digest).signature).decode(),
        "message": text,
        "nonce": base64.b64encode(nonce).decode(),
        "recipient": recipient,
    }
    if callback_url is not None:
        out["callbackUrl"] = callback_url
    return out


def appeal_message(account: str, flag: int, statement: str, **over: Any) -> dict[str, Any]:
    return {
        "action": "appeal",
        "account": account,
        "flag": flag,
        "statement_sha256": nep413.statement_sha256(statement),
        "issued_at": time.time(),
        **over,
    }


def view_message(account: str, **over: Any) -> dict[str, Any]:
    return {"action": "view_flags", "account": account, "issued_at": time.time(), **over}


@dataclass
class Chain:
    rpc: NearRpcDouble
    url: str
    keys: dict[str, KeyPair]  # each account's full-access key
    fc_key: KeyPair  # a function-call key of FLAGGED


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    """The JSON-RPC double with the two accounts, each with a full-access key, and a
    function-call key of FLAGGED added by a real AddKey transaction (py-near)."""
    rpc = NearRpcDouble(NearEmulator())
    keys = {name: KeyPair.generate() for name in (FLAGGED, OTHER, CONTRACT)}
    for name, key in keys.items():
        rpc.create_account(name, key)
    fc_key = KeyPair.generate()
    with rpc.running() as url:

        async def add_key(acc: Account) -> Any:
            return await acc.add_public_key(fc_key.public, CONTRACT, ["publish"])

        result = _py_near(url, FLAGGED, keys[FLAGGED], add_key)
        assert "SuccessValue" in result.status, result.status
        yield Chain(rpc, url, keys, fc_key)


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # bound, then released: nothing listens


def verify(
    chain_url: str,
    signed: dict[str, Any],
    *,
    account: str = FLAGGED,
    action: str = "view_flags",
    expected: dict[str, Any] | None = None,
    guard: nep413.ReplayGuard | None = None,
) -> nep413.Verified:
    return nep413.verify_signed_message(
        nep413.SignedMessage.model_validate(signed),
        account=account,
        action=action,
        expected=expected,
        recipient=CONTRACT,
        rpc_url=chain_url,
        replay=guard if guard is not None else nep413.ReplayGuard(),
    )


def refused(chain_url: str, signed: dict[str, Any], **kw: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        verify(chain_url, signed, **kw)
    return info.value


# --------------------------------------------------------------------------------------
# the payload
# --------------------------------------------------------------------------------------


def test_payload_bytes_follow_the_spec_and_sign_as_near_api_js_does() -> None:
    nonce = base64.b64decode(VECTOR_NONCE)
    raw = nep413.payload_bytes("Hello NEAR!", nonce, "example.near")
    # borsh u32 2**31+413, then String "Hello NEAR!", [u8; 32], String "example.near",
    # Option None.
    assert raw.hex() == (
        "9d010080" + "0b000000" + b"Hello NEAR!".hex() + nonce.hex()
        + "0c000000" + b"example.near".hex() + "00"
    )  # fmt: skip
    with_cb = nep413.payload_bytes("Hello NEAR!", nonce, "example.near", "http://localhost:3000")
    assert with_cb == raw[:-1] + b"\x01" + b"\x15\x00\x00\x00" + b"http://localhost:3000"
    # Independent check: ed25519 signatures are deterministic, so signing our hash with
    # near-api-js's test key must give the signatures its tests expect.
    sk = SigningKey(base58.b58decode(VECTOR_SECRET.removeprefix("ed25519:"))[:32])
    for callback, expected in ((None, VECTOR_SIG_WITHOUT),
                               ("http://localhost:3000", VECTOR_SIG_WITH_CALLBACK)):  # fmt: skip
        digest = nep413.payload_hash("Hello NEAR!", nonce, "example.near", callback)
        assert base64.b64encode(sk.sign(digest).signature).decode() == expected
    with pytest.raises(ValueError, match="32 bytes"):
        nep413.payload_bytes("m", b"\x00" * 28, "r")


def test_the_recipient_is_the_setting_the_contract_or_renown() -> None:
    assert nep413.recipient_for(Settings(contract_id="c.near")) == "c.near"
    assert nep413.recipient_for(Settings(contract_id=None)) == "renown"
    named = Settings(contract_id="c.near", nep413_recipient="renown.example.org")
    assert nep413.recipient_for(named) == "renown.example.org"


# --------------------------------------------------------------------------------------
# the key look-up
# --------------------------------------------------------------------------------------


def test_full_access_keys_from_the_chain(chain: Chain) -> None:
    keys = full_access_keys(chain.url, FLAGGED)
    assert keys == {chain.keys[FLAGGED].public}  # not the function-call key
    assert chain.fc_key.public not in keys
    assert full_access_keys(chain.url, "ghost.near") == set()
    with pytest.raises(ChainUnavailable, match="did not answer"):
        full_access_keys(closed_url(), FLAGGED)


# --------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------


def test_a_good_signature_is_accepted(chain: Chain) -> None:
    key = chain.keys[FLAGGED]
    who = verify(chain.url, sign(key, FLAGGED, view_message(FLAGGED)))
    assert who.account == FLAGGED and who.public_key == key.public
    assert who.via == f"nep413 {key.public}" and who.message["action"] == "view_flags"
    # A browser wallet's callbackUrl is part of what it signs; ISO 8601 times are fine.
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    signed = sign(key, FLAGGED, view_message(FLAGGED, issued_at=iso), callback_url="https://x")
    assert verify(chain.url, signed).account == FLAGGED
    # Appeal details must match the route's.
    msg = appeal_message(FLAGGED, 7, "I am a real user")
    expected = {"flag": 7, "statement_sha256": nep413.statement_sha256("I am a real user")}
    assert verify(chain.url, sign(key, FLAGGED, msg), action="appeal", expected=expected)


def test_wrong_account_wrong_key_and_function_call_key_are_refused(chain: Chain) -> None:
    mine, other = chain.keys[FLAGGED], chain.keys[OTHER]
    # Another account's full-access key, claiming to be FLAGGED: not FLAGGED's key.
    err = refused(chain.url, sign(other, FLAGGED, view_message(FLAGGED)))
    assert (err.status, err.code) == (403, "not_a_full_access_key")
    # Signed as OTHER, sent for FLAGGED.
    err = refused(chain.url, sign(other, OTHER, view_message(OTHER)))
    assert (err.status, err.code) == (401, "invalid_message")
    err = refused(chain.url, sign(mine, FLAGGED, view_message(OTHER)))
    assert (err.status, err.code) == (401, "invalid_message") and "account" in err.message
    # Signed by one key, presented as another: the signature does not verify.
    err = refused(chain.url, sign(other, FLAGGED, view_message(FLAGGED), claimed_key=mine.public))
    assert (err.status, err.code) == (401, "invalid_signature")
    # FLAGGED's own function-call key: valid signature, not full access.
    err = refused(chain.url, sign(chain.fc_key, FLAGGED, view_message(FLAGGED)))
    assert (err.status, err.code) == (403, "not_a_full_access_key")
    # An account the chain does not know has no keys.
    ghost = KeyPair.generate()
    err = refused(chain.url, sign(ghost, "ghost.near", view_message("ghost.near")),
                  account="ghost.near")  # fmt: skip
    assert (err.status, err.code) == (403, "not_a_full_access_key")


def test_tampered_or_misdirected_messages_are_refused(chain: Chain) -> None:
    key = chain.keys[FLAGGED]
    signed = sign(key, FLAGGED, appeal_message(FLAGGED, 7, "original"))
    expected = {"flag": 7, "statement_sha256": nep413.statement_sha256("tampered")}
    err = refused(chain.url, signed, action="appeal", expected=expected)
    assert (err.status, err.code) == (401, "invalid_message") and "statement_sha256" in err.message
    expected = {"flag": 8, "statement_sha256": nep413.statement_sha256("original")}
    err = refused(chain.url, signed, action="appeal", expected=expected)
    assert (err.status, err.code) == (401, "invalid_message") and "flag" in err.message
    # The message text altered after signing.
    altered = dict(signed, message=signed["message"].replace('"flag": 7', '"flag": 8'))
    err = refused(chain.url, altered, action="appeal")
    assert (err.status, err.code) == (401, "invalid_signature")
    # An appeal signature is no view_flags signature.
    err = refused(chain.url, sign(key, FLAGGED, appeal_message(FLAGGED, 7, "x")))
    assert (err.status, err.code) == (401, "invalid_message") and "action" in err.message
    # For another service.
    err = refused(chain.url, sign(key, FLAGGED, view_message(FLAGGED), recipient="evil.app"))
    assert (err.status, err.code) == (401, "invalid_message") and "recipient" in err.message
    # Not JSON, no issued_at, a bad nonce, a secp256k1 key.
    for bad in ("hello", json.dumps({"action": "view_flags", "account": FLAGGED})):
        err = refused(chain.url, sign(key, FLAGGED, bad))
        assert (err.status, err.code) == (401, "invalid_message")
    short = dict(sign(key, FLAGGED, view_message(FLAGGED)), nonce=base64.b64encode(b"x").decode())
    assert refused(chain.url, short).code == "invalid_signature"
    secp = dict(sign(key, FLAGGED, view_message(FLAGGED)), publicKey="secp256k1:abc")
    assert refused(chain.url, secp).code == "invalid_signature"


def test_stale_and_replayed_messages_are_refused(chain: Chain) -> None:
    key = chain.keys[FLAGGED]
    old = sign(key, FLAGGED, view_message(FLAGGED, issued_at=time.time() - 301))
    err = refused(chain.url, old)
    assert (err.status, err.code) == (401, "stale_message") and "300 s" in err.message
    ahead = sign(key, FLAGGED, view_message(FLAGGED, issued_at=time.time() * 1000))  # ms
    assert refused(chain.url, ahead).code == "stale_message"
    guard = nep413.ReplayGuard()
    signed = sign(key, FLAGGED, view_message(FLAGGED))
    verify(chain.url, signed, guard=guard)
    err = refused(chain.url, signed, guard=guard)
    assert (err.status, err.code) == (401, "replayed_message")
    # The same nonce with another key is another message.
    other = sign(chain.keys[OTHER], OTHER, view_message(OTHER),
                 nonce=base64.b64decode(signed["nonce"]))  # fmt: skip
    assert verify(chain.url, other, account=OTHER, guard=guard).account == OTHER
    # Nonces are forgotten once their messages are stale.
    assert guard.reserve(b"k", b"n", 0.0) and not guard.reserve(b"k", b"n", 100.0)
    assert guard.reserve(b"k", b"n", 0.0 + guard.window_s + 1)


def test_chain_down_is_503_and_the_message_may_be_sent_again(chain: Chain) -> None:
    guard = nep413.ReplayGuard()
    signed = sign(chain.keys[FLAGGED], FLAGGED, view_message(FLAGGED))
    err = refused(closed_url(), signed, guard=guard)
    assert (err.status, err.code) == (503, "chain_unavailable")
    assert err.headers == {"Retry-After": "5"}
    assert guard.remembered == 0  # the nonce was released
    assert verify(chain.url, signed, guard=guard).account == FLAGGED


# --------------------------------------------------------------------------------------
# over HTTP
# --------------------------------------------------------------------------------------

APPEAL_PATH = "/v1/accounts/{account}/flags/{flag_id}/appeal"


def build(settings: Settings) -> FastAPI:
    """The app with the contributors' routes, added here until create_app includes them
    (and not twice once it does)."""
    app = create_app(settings)
    if not any(getattr(r, "path", None) == APPEAL_PATH for r in app.routes):
        app.include_router(contributors.router, prefix="/v1", dependencies=[Depends(rate_limited)])
    return app


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """The tiny world's accounts in the database, and its writer sessions."""
    apply_world(db_url)
    engine = make_engine(db_url)
    yield db_url, make_session_factory(engine, writer=True)
    engine.dispose()


def test_an_appeal_end_to_end(world: tuple[str, sessionmaker[Session]], chain: Chain) -> None:
    db_url, writer = world
    flag = service.raise_flag(writer, moderator="alice", kind="manual", accounts=[FLAGGED],
                              reason="labels look random", moderators=MODS)  # fmt: skip
    service.confirm(writer, flag.id, moderator="alice", reason="checked", moderators=MODS)
    theirs = service.raise_flag(writer, moderator="bob", kind="manual", accounts=[OTHER],
                                reason="a ring", moderators=MODS)  # fmt: skip
    key = chain.keys[FLAGGED]
    path = f"/v1/accounts/{FLAGGED}/flags/{flag.id}/appeal"
    statement = "I label by hand; see my notes"
    settings = Settings(database_url=db_url, near_rpc_url=chain.url, contract_id=CONTRACT)
    with TestClient(build(settings)) as client:
        # A statement other than the signed one.
        signed = sign(key, FLAGGED, appeal_message(FLAGGED, flag.id, statement))
        r = client.post(path, json={"statement": statement + "!", "signed": signed})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_message", r.text
        assert r.headers["www-authenticate"].startswith("NEP413")
        # Another account's key, a function-call key.
        for wrong in (chain.keys[OTHER], chain.fc_key):
            bad = sign(wrong, FLAGGED, appeal_message(FLAGGED, flag.id, statement))
            r = client.post(path, json={"statement": statement, "signed": bad})
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "not_a_full_access_key"
        # Malformed bodies are the usual 422.
        r = client.post(path, json={"statement": statement})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        r = client.post(f"/v1/accounts/NOT VALID/flags/{flag.id}/appeal",
                        json={"statement": statement, "signed": signed})  # fmt: skip
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_account"
        # The appeal.
        r = client.post(path, json={"statement": statement, "signed": signed})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "appealed" and body["appeal"]["statement"] == statement
        last = body["audit"][-1]
        assert (last["actor"], last["action"]) == (FLAGGED, "appeal")
        assert last["details"]["via"] == f"nep413 {key.public}"
        # The same request again, and a fresh second appeal.
        r = client.post(path, json={"statement": statement, "signed": signed})
        assert r.status_code == 401 and r.json()["error"]["code"] == "replayed_message"
        again = sign(key, FLAGGED, appeal_message(FLAGGED, flag.id, "again"))
        r = client.post(path, json={"statement": "again", "signed": again})
        assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
        # OTHER's flag is open: not appealable, and not FLAGGED's to appeal.
        other_path = f"/v1/accounts/{OTHER}/flags/{theirs.id}/appeal"
        signed = sign(chain.keys[OTHER], OTHER, appeal_message(OTHER, theirs.id, "no"))
        r = client.post(other_path, json={"statement": "no", "signed": signed})
        assert r.status_code == 409 and "open" in r.json()["error"]["message"]
        service.confirm(writer, theirs.id, moderator="bob", reason="yes", moderators=MODS)
        signed = sign(key, FLAGGED, appeal_message(FLAGGED, theirs.id, "no"))
        r = client.post(f"/v1/accounts/{FLAGGED}/flags/{theirs.id}/appeal",
                        json={"statement": "no", "signed": signed})  # fmt: skip
        assert r.status_code == 409 and "only a flagged account" in r.json()["error"]["message"]
        signed = sign(key, FLAGGED, appeal_message(FLAGGED, 999_999, "no"))
        r = client.post(f"/v1/accounts/{FLAGGED}/flags/999999/appeal",
                        json={"statement": "no", "signed": signed})  # fmt: skip
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_flag"
        # The private view: FLAGGED's flag only, with evidence, appeal and audit trail.
        private = f"/v1/accounts/{FLAGGED}/flags/private"
        r = client.post(private, json={"signed": sign(key, FLAGGED, view_message(FLAGGED))})
        assert r.status_code == 200, r.text
        flags = r.json()["flags"]
        assert [f["id"] for f in flags] == [flag.id] and r.json()["account"] == FLAGGED
        mine = flags[0]
        assert mine["role"] == "flagged" and mine["evidence"]["reason"] == "labels look random"
        assert mine["appeal"]["status"] == "pending"
        assert [e["action"] for e in mine["audit"]] == ["raise", "confirm", "appeal"]
        # An appeal signature does not open the private view.
        r = client.post(private, json={"signed": sign(key, FLAGGED, appeal_message(
            FLAGGED, flag.id, statement))})  # fmt: skip
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_message"
        # The public view shows the appeal's status, not its statement.
        public = client.get(f"/v1/accounts/{FLAGGED}/flags").json()
        assert public["flags"][0]["appeal_status"] == "pending"
        assert statement not in json.dumps(public)
    # The audit log, read through the service, records the appeal with the key.
    entries = service.audit_log(writer, flag_id=flag.id)
    assert [(e["actor"], e["action"], e["details"].get("via")) for e in entries] == [
        ("alice", "raise", None),
        ("alice", "confirm", None),
        (FLAGGED, "appeal", f"nep413 {key.public}"),
    ]


def test_chain_down_over_http_is_503(tmp_path: Any, chain: Chain) -> None:
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'renown.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    settings = Settings(database_url=url, near_rpc_url=closed_url(), contract_id=CONTRACT)
    with TestClient(build(settings)) as client:
        signed = sign(chain.keys[FLAGGED], FLAGGED, view_message(FLAGGED))
        r = client.post(f"/v1/accounts/{FLAGGED}/flags/private", json={"signed": signed})
    assert r.status_code == 503 and r.json()["error"]["code"] == "chain_unavailable"
    assert r.headers["retry-after"] == "5"
    assert "Traceback" not in r.text


def test_a_signed_message_is_used_once_across_api_processes(
    world: tuple[str, sessionmaker[Session]], chain: Chain
) -> None:
    """Two apps on one database stand for two uvicorn workers (or replicas): the nonce is
    reserved in the database, so the second use fails wherever it arrives, and a nonce
    released after a chain outage can be used again."""
    url, _ = world
    settings = Settings(database_url=url, near_rpc_url=chain.url, contract_id=CONTRACT)
    private = f"/v1/accounts/{FLAGGED}/flags/private"
    with TestClient(build(settings)) as one, TestClient(build(settings)) as two:
        signed = sign(chain.keys[FLAGGED], FLAGGED, view_message(FLAGGED))
        assert one.post(private, json={"signed": signed}).status_code == 200
        for client in (two, one):
            r = client.post(private, json={"signed": signed})
            assert r.status_code == 401 and r.json()["error"]["code"] == "replayed_message"
    down = Settings(database_url=url, near_rpc_url=closed_url(), contract_id=CONTRACT)
    fresh = sign(chain.keys[FLAGGED], FLAGGED, view_message(FLAGGED))
    with TestClient(build(down)) as broken:
        assert broken.post(private, json={"signed": fresh}).status_code == 503
    with TestClient(build(settings)) as client:
        assert client.post(private, json={"signed": fresh}).status_code == 200


def test_used_nonces_expire_with_their_window(db_url: str) -> None:
    engine = make_engine(db_url)
    guard = nep413.DatabaseReplayGuard(make_session_factory(engine, writer=True))
    assert guard.reserve(b"k" * 32, b"n" * 32, 1000.0)
    assert not guard.reserve(b"k" * 32, b"n" * 32, 1100.0)
    assert guard.reserve(b"j" * 32, b"n" * 32, 1100.0)  # another key: another message
    assert guard.reserve(b"k" * 32, b"n" * 32, 1000.0 + guard.window_s + 1)  # pruned
    with engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM used_nonces")).scalar_one()
    assert left == 2  # the expired reservation was deleted: j's and k's new one remain
    guard.release(b"k" * 32, b"n" * 32)
    assert guard.reserve(b"k" * 32, b"n" * 32, 1000.0 + guard.window_s + 2)
    engine.dispose()
