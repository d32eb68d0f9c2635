"""The decoder of the public event interface (shared/EVENTS.md, docs/events.md).

Every message ends as exactly one of Decoded, Skipped or Malformed, never an exception;
a Malformed reason names the offending field so that a producer can fix their side.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import (
    MAX_DATA_ITEMS,
    Decoded,
    DecodeResult,
    Malformed,
    Skipped,
    decode_message,
    is_account_id,
    is_domain,
)
from scoring.events import (
    EVENT_NAMES,
    ChainContext,
    ContentAttested,
    ContentAuthored,
    ContentRetracted,
    DecodedEvent,
    Endorsed,
    Event,
    EventKey,
    GoldRevealed,
    LabelRef,
    LabelReviewed,
    LabelSubmitted,
    TaskPosted,
    VoteCast,
)
from tests.messages import encode, log_line, message, vote

HASH = hashlib.sha256(b"the content").hexdigest()
IMPLICIT = hashlib.sha256(b"an implicit account").hexdigest()  # 64 lower-case hex

# --------------------------------------------------------------------------- helpers


def decode(msg: dict[str, Any]) -> DecodeResult:
    return decode_message(encode(msg))


def decoded(msg: dict[str, Any]) -> tuple[DecodedEvent, ...]:
    result = decode(msg)
    assert isinstance(result, Decoded), result
    return result.events


def only_event(msg: dict[str, Any]) -> Event:
    events = decoded(msg)
    assert len(events) == 1
    return events[0].event


def malformed(value: bytes | dict[str, Any] | None, *fragments: str) -> str:
    """Decode ``value`` (a dict is JSON-encoded), expect Malformed naming ``fragments``."""
    raw = encode(value) if isinstance(value, dict) else value
    result = decode_message(raw)
    assert isinstance(result, Malformed), result
    for fragment in fragments:
        assert fragment in result.reason, (fragment, result.reason)
    return result.reason


def skipped(msg: dict[str, Any]) -> Skipped:
    result = decode(msg)
    assert isinstance(result, Skipped), result
    return result


def with_log(msg: dict[str, Any], body: Any) -> dict[str, Any]:
    """``msg`` with its log replaced by ``EVENT_JSON:`` + ``body`` as JSON."""
    return {**msg, "log": "EVENT_JSON:" + json.dumps(body)}


def log_body(msg: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(msg["log"].removeprefix("EVENT_JSON:"))
    return body


# Every `renown` event with all its fields, optional ones included.
FULL: dict[str, dict[str, Any]] = {
    "task_posted": {
        "task_id": "task-7",
        "poster": "market.near",
        "domain": "labeling:images",
        "labels": ["cat", "dog"],
    },
    "label_submitted": {
        "task_id": "task-7",
        "item_id": "img-0042",
        "labeler": "bob.near",
        "label": "cat",
    },
    "label_reviewed": {
        "task_id": "task-7",
        "item_id": "img-0042",
        "labeler": "bob.near",
        "reviewer": "carol.near",
        "verdict": "accept",
    },
    "gold_revealed": {
        "task_id": "task-7",
        "poster": "market.near",
        "gold": {"img-0042": "cat", "img-0001": "dog"},
    },
    "vote_cast": {
        "voter": "alice.near",
        "target_kind": "account",
        "target": "bob.near",
        "value": 1,
        "domain": "code",
    },
    "endorsed": {
        "endorser": "alice.near",
        "endorsee": "bob.near",
        "domain": "code",
        "weight": 0.5,
    },
    "content_authored": {
        "content_id": "paper-1",
        "authors": ["alice.near", "bob.near"],
        "content_hash": HASH,
        "derived_from": ["paper-0"],
        "domain": "research",
    },
    "content_attested": {
        "attester": "carol.near",
        "content_id": "paper-1",
        "verdict": "authentic",
    },
    "content_retracted": {"content_id": "paper-1", "by": "alice.near"},
}

OPTIONAL: dict[str, tuple[str, ...]] = {
    "task_posted": ("domain", "labels"),
    "vote_cast": ("domain",),
    "endorsed": ("domain", "weight"),
    "content_authored": ("derived_from", "domain"),
}

ACCOUNT_FIELDS: dict[str, tuple[str, ...]] = {
    "task_posted": ("poster",),
    "label_submitted": ("labeler",),
    "label_reviewed": ("labeler", "reviewer"),
    "gold_revealed": ("poster",),
    "vote_cast": ("voter", "target"),  # target is an account for target_kind "account"
    "endorsed": ("endorser", "endorsee"),
    "content_attested": ("attester",),
    "content_retracted": ("by",),
}

STRING_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "task_posted": ("task_id",),
    "label_submitted": ("task_id", "item_id", "label"),
    "label_reviewed": ("task_id", "item_id"),
    "gold_revealed": ("task_id",),
    "content_authored": ("content_id",),
    "content_attested": ("content_id",),
    "content_retracted": ("content_id",),
}


def required(event: str) -> list[str]:
    return [f for f in FULL[event] if f not in OPTIONAL.get(event, ())]


def minimal(event: str) -> dict[str, Any]:
    return {f: FULL[event][f] for f in required(event)}


def full_message(event: str, **kw: Any) -> dict[str, Any]:
    return message(event, copy.deepcopy(FULL[event]), **kw)


def item_with(event: str, **fields: Any) -> dict[str, Any]:
    """A message of one ``event`` whose single item is FULL with ``fields`` replaced."""
    return message(event, {**copy.deepcopy(FULL[event]), **fields})


def item_without(event: str, field: str) -> dict[str, Any]:
    item = copy.deepcopy(FULL[event])
    del item[field]
    return message(event, item)


# --------------------------------------------------------------------------- valid events

EXPECTED_FULL: dict[str, Event] = {
    "task_posted": TaskPosted("task-7", "market.near", "labeling:images", ("cat", "dog")),
    "label_submitted": LabelSubmitted("task-7", "img-0042", "bob.near", "cat"),
    "label_reviewed": LabelReviewed("task-7", "img-0042", "bob.near", "carol.near", "accept"),
    "gold_revealed": GoldRevealed(
        "task-7", "market.near", (("img-0001", "dog"), ("img-0042", "cat"))
    ),
    "vote_cast": VoteCast("alice.near", "account", "bob.near", 1, "code"),
    "endorsed": Endorsed("alice.near", "bob.near", "code", 0.5),
    "content_authored": ContentAuthored(
        "paper-1", ("alice.near", "bob.near"), HASH, ("paper-0",), "research"
    ),
    "content_attested": ContentAttested("carol.near", "paper-1", "authentic"),
    "content_retracted": ContentRetracted("paper-1", "alice.near"),
}

EXPECTED_MINIMAL: dict[str, Event] = {
    **EXPECTED_FULL,
    "task_posted": TaskPosted("task-7", "market.near", "general", None),
    "vote_cast": VoteCast("alice.near", "account", "bob.near", 1, None),  # None: inherit
    "endorsed": Endorsed("alice.near", "bob.near", "general", 1.0),
    "content_authored": ContentAuthored("paper-1", ("alice.near", "bob.near"), HASH, (), "general"),
}


def test_the_tables_cover_every_renown_event() -> None:
    assert set(FULL) == set(EVENT_NAMES.values()) == set(EXPECTED_FULL)


@pytest.mark.parametrize("event", sorted(FULL))
def test_every_event_decodes_with_all_fields(event: str) -> None:
    msg = full_message(
        event,
        receipt_id="Rfull",
        log_index=3,
        block_height=131_234_567,
        block_timestamp=1_764_000_000_123_456_789,
        contract_id="labels.market.near",
        predecessor_id="alice.near",
    )
    (ev,) = decoded(msg)
    assert ev.event == EXPECTED_FULL[event]
    assert type(ev.event) is type(EXPECTED_FULL[event])
    assert ev.name == event
    assert ev.standard == "renown"
    assert ev.version == "1.0.0"
    assert ev.key == EventKey("Rfull", 3, 0, 0)
    assert ev.chain == ChainContext(
        block_height=131_234_567,
        block_timestamp_ns=1_764_000_000_123_456_789,
        receipt_id="Rfull",
        log_index=3,
        contract_id="labels.market.near",
        predecessor_id="alice.near",
    )


@pytest.mark.parametrize("event", sorted(FULL))
def test_every_event_decodes_with_optional_fields_absent(event: str) -> None:
    assert only_event(message(event, minimal(event))) == EXPECTED_MINIMAL[event]


@pytest.mark.parametrize("event", sorted(OPTIONAL))
def test_optional_fields_given_as_null_mean_absent(event: str) -> None:
    item = {**minimal(event), **dict.fromkeys(OPTIONAL[event])}
    assert only_event(message(event, item)) == EXPECTED_MINIMAL[event]


@pytest.mark.parametrize("event", sorted(FULL))
def test_decoded_events_are_frozen(event: str) -> None:
    (ev,) = decoded(full_message(event))
    for obj in (ev, ev.key, ev.chain, ev.event):
        assert dataclasses.is_dataclass(obj)
        field = dataclasses.fields(obj)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


@pytest.mark.parametrize("event", sorted(FULL))
def test_unknown_extra_fields_are_ignored(event: str) -> None:
    """Producers may add fields (a backwards-compatible extension) before Renown knows them."""
    msg = message(event, {**FULL[event], "memo": "added later", "extra": {"x": [1]}})
    assert only_event(msg) == EXPECTED_FULL[event]


def test_domain_defaults_to_general_except_on_votes() -> None:
    assert isinstance(e := only_event(message("task_posted", minimal("task_posted"))), TaskPosted)
    assert e.domain == "general"
    assert isinstance(e := only_event(message("endorsed", minimal("endorsed"))), Endorsed)
    assert e.domain == "general"
    assert isinstance(
        e := only_event(message("content_authored", minimal("content_authored"))),
        ContentAuthored,
    )
    assert e.domain == "general"
    # A vote without a domain inherits its target's: the decoder says "unknown" with None.
    for kind, target in [
        ("account", "bob.near"),
        ("content", "paper-1"),
        ("label", "task-7/img-1/bob.near"),
    ]:
        item = {"voter": "alice.near", "target_kind": kind, "target": target, "value": -1}
        assert isinstance(e := only_event(message("vote_cast", item)), VoteCast)
        assert e.domain is None
        assert isinstance(
            e := only_event(message("vote_cast", {**item, "domain": "general"})), VoteCast
        )
        assert e.domain == "general"


@pytest.mark.parametrize("domain", ["general", "code", "labeling:images", "a", "x_y-z:9", "d" * 64])
def test_valid_domains(domain: str) -> None:
    assert is_domain(domain)
    assert isinstance(e := only_event(item_with("endorsed", domain=domain)), Endorsed)
    assert e.domain == domain


@pytest.mark.parametrize(("weight", "expected"), [(1, 1.0), (1.0, 1.0), (0.25, 0.25), (1e-9, 1e-9)])
def test_endorsement_weight(weight: float, expected: float) -> None:
    assert isinstance(e := only_event(item_with("endorsed", weight=weight)), Endorsed)
    assert e.weight == expected
    assert isinstance(e.weight, float)


def test_endorsement_weight_defaults_to_one() -> None:
    assert isinstance(e := only_event(message("endorsed", minimal("endorsed"))), Endorsed)
    assert e.weight == 1.0


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("account", "bob.near"),
        ("account", IMPLICIT),
        ("content", "paper-1"),
        ("content", "nft.example.near:42"),
        ("label", "task-7/img-0042/bob.near"),
        ("label", "a/b/c/img/bob.near"),  # task_id may hold '/': the last two parts are fixed
    ],
)
@pytest.mark.parametrize("value", [1, -1])
def test_vote_targets_and_values(kind: str, target: str, value: int) -> None:
    item = {"voter": "alice.near", "target_kind": kind, "target": target, "value": value}
    assert isinstance(e := only_event(message("vote_cast", item)), VoteCast)
    assert (e.target_kind, e.target, e.value) == (kind, target, value)
    if kind == "label":
        task_id, item_id, labeler = target.rsplit("/", 2)
        assert e.label_ref == LabelRef(task_id, item_id, labeler)
    else:
        assert e.label_ref is None


def test_content_authored_details() -> None:
    item = {
        "content_id": "paper-2",
        "authors": ["bob.near", "alice.near", "bob.near"],
        "content_hash": HASH.upper(),
        "derived_from": ["paper-0", "paper-1", "paper-0"],
    }
    assert isinstance(e := only_event(message("content_authored", item)), ContentAuthored)
    assert e.authors == ("bob.near", "alice.near")  # repeats dropped, order kept
    assert e.content_hash == HASH  # stored lower-case
    assert e.derived_from == ("paper-0", "paper-1")
    empty = {**item, "derived_from": []}
    assert isinstance(e := only_event(message("content_authored", empty)), ContentAuthored)
    assert e.derived_from == ()


def test_task_labels() -> None:
    item = {**minimal("task_posted"), "labels": ["cat", "dog", "cat", "bird"]}
    assert isinstance(e := only_event(message("task_posted", item)), TaskPosted)
    assert e.labels == ("cat", "dog", "bird")
    assert isinstance(e := only_event(message("task_posted", minimal("task_posted"))), TaskPosted)
    assert e.labels is None  # no declared label space: any label is accepted


def test_gold_is_sorted_by_item() -> None:
    gold = {"z": "1", "a": "2", "m": "3"}
    assert isinstance(e := only_event(item_with("gold_revealed", gold=gold)), GoldRevealed)
    assert e.gold == (("a", "2"), ("m", "3"), ("z", "1"))


@pytest.mark.parametrize("verdict", ["accept", "reject"])
def test_review_verdicts(verdict: str) -> None:
    assert isinstance(e := only_event(item_with("label_reviewed", verdict=verdict)), LabelReviewed)
    assert e.verdict == verdict


@pytest.mark.parametrize("verdict", ["authentic", "disputed"])
def test_attest_verdicts(verdict: str) -> None:
    msg = item_with("content_attested", verdict=verdict)
    assert isinstance(e := only_event(msg), ContentAttested)
    assert e.verdict == verdict


def test_limits_are_inclusive() -> None:
    assert only_event(item_with("label_submitted", task_id="t" * 256, label="l" * 256))
    assert decoded(full_message("endorsed", receipt_id="r" * 128))
    assert decoded(message("vote_cast", *[FULL["vote_cast"]] * MAX_DATA_ITEMS))


def test_unicode_in_free_strings() -> None:
    msg = item_with("label_submitted", task_id="tâche-✓", label="猫 🐈")
    assert isinstance(e := only_event(msg), LabelSubmitted)
    assert (e.task_id, e.label) == ("tâche-✓", "猫 🐈")


def test_envelope_extremes() -> None:
    msg = full_message(
        "endorsed",
        block_height=0,
        block_timestamp=0,
        log_index=0,
        contract_id=IMPLICIT,
        predecessor_id="0x" + "ab" * 20,
    )
    (ev,) = decoded(msg)
    assert ev.chain.block_height == 0
    assert ev.chain.contract_id == IMPLICIT


def test_the_events_md_example_shape() -> None:
    """The envelope of EVENTS.md, byte for byte as a producer would send it."""
    raw = (
        b'{"block_height":131234567,"block_timestamp":1764000000123456789,'
        b'"receipt_id":"9Xh1nQmWcZkE1","log_index":0,"contract_id":"labels.market.near",'
        b'"predecessor_id":"alice.near","log":"EVENT_JSON:{\\"standard\\":\\"renown\\",'
        b'\\"version\\":\\"1.0.0\\",\\"event\\":\\"vote_cast\\",\\"data\\":[{\\"voter\\":'
        b'\\"alice.near\\",\\"target_kind\\":\\"account\\",\\"target\\":\\"bob.near\\",'
        b'\\"value\\":1}]}"}'
    )
    result = decode_message(raw)
    assert isinstance(result, Decoded)
    assert result.events[0].event == VoteCast("alice.near", "account", "bob.near", 1, None)


# --------------------------------------------------------------------------- idempotency keys


def test_several_items_in_one_log_have_keys_by_index() -> None:
    items = [
        {"voter": "alice.near", "target_kind": "account", "target": "bob.near", "value": 1},
        {"voter": "alice.near", "target_kind": "content", "target": "paper-1", "value": -1},
        {"voter": "carol.near", "target_kind": "label", "target": "t/i/bob.near", "value": 1},
    ]
    events = decoded(message("vote_cast", *items, receipt_id="Rmany", log_index=5))
    assert [e.key for e in events] == [EventKey("Rmany", 5, i, 0) for i in range(3)]
    assert len({e.chain for e in events}) == 1  # one chain context for the whole log
    assert [e.event for e in events] == [
        VoteCast("alice.near", "account", "bob.near", 1),
        VoteCast("alice.near", "content", "paper-1", -1),
        VoteCast("carol.near", "label", "t/i/bob.near", 1),
    ]


def test_the_same_log_decodes_to_the_same_keys() -> None:
    msg = message("endorsed", FULL["endorsed"], FULL["endorsed"], receipt_id="Rdup")
    first, second = decoded(msg), decoded(copy.deepcopy(msg))
    assert first == second
    assert [e.key.data_index for e in first] == [0, 1]  # identical items stay distinct


# --------------------------------------------------------------------------- nep171


def nft_message(
    *data: dict[str, Any], event: str = "nft_mint", version: str = "1.0.0", **kw: Any
) -> dict[str, Any]:
    kw.setdefault("contract_id", "nft.example.near")
    return message(event, *data, standard="nep171", version=version, **kw)


def test_nft_mint_of_several_tokens_is_authorship_of_each() -> None:
    msg = nft_message(
        {"owner_id": "bob.near", "token_ids": ["1", "2", "3"], "memo": "drop"},
        {"owner_id": "carol.near", "token_ids": ["9"]},
        receipt_id="Rnft",
        log_index=2,
    )
    events = decoded(msg)
    assert [e.key for e in events] == [
        EventKey("Rnft", 2, 0, 0),
        EventKey("Rnft", 2, 0, 1),
        EventKey("Rnft", 2, 0, 2),
        EventKey("Rnft", 2, 1, 0),
    ]
    assert len({e.key for e in events}) == 4
    assert [e.event for e in events] == [
        ContentAuthored("nft.example.near:1", ("bob.near",), None),
        ContentAuthored("nft.example.near:2", ("bob.near",), None),
        ContentAuthored("nft.example.near:3", ("bob.near",), None),
        ContentAuthored("nft.example.near:9", ("carol.near",), None),
    ]
    for e in events:
        assert e.standard == "nep171"
        assert e.version == "1.0.0"
        assert e.name == "content_authored"
        assert isinstance(e.event, ContentAuthored)
        assert e.event.domain == "general"
        assert e.event.derived_from == ()


def test_nft_mint_single_token_has_part_zero() -> None:
    (ev,) = decoded(nft_message({"owner_id": "bob.near", "token_ids": ["x"]}, receipt_id="R1"))
    assert ev.key == EventKey("R1", 0, 0, 0)


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0", "1.2.3"])
def test_nft_mint_accepts_any_1x_version(version: str) -> None:
    (ev,) = decoded(nft_message({"owner_id": "bob.near", "token_ids": ["x"]}, version=version))
    assert ev.version == version


@pytest.mark.parametrize("event", ["nft_transfer", "nft_burn", "contract_metadata_update"])
def test_other_nep171_events_are_skipped(event: str) -> None:
    s = skipped(nft_message({"owner_id": "bob.near", "token_ids": ["x"]}, event=event))
    assert (s.standard, s.event) == ("nep171", event)


def test_nep171_version_2_is_skipped() -> None:
    s = skipped(nft_message({"owner_id": "bob.near", "token_ids": ["x"]}, version="2.0.0"))
    assert (s.standard, s.event) == ("nep171", "nft_mint")
    assert "2.0.0" in s.reason


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"token_ids": ["1"]}, "data[0].owner_id: missing"),
        ({"owner_id": "Bob", "token_ids": ["1"]}, "data[0].owner_id"),
        ({"owner_id": "bob.near"}, "data[0].token_ids: missing"),
        ({"owner_id": "bob.near", "token_ids": []}, "data[0].token_ids"),
        ({"owner_id": "bob.near", "token_ids": "1"}, "data[0].token_ids"),
        ({"owner_id": "bob.near", "token_ids": [1]}, "data[0].token_ids[0]"),
        ({"owner_id": "bob.near", "token_ids": ["ok", ""]}, "data[0].token_ids[1]"),
        ({"owner_id": "bob.near", "token_ids": ["a\x00b"]}, "NUL"),
    ],
)
def test_malformed_nft_mint(item: dict[str, Any], fragment: str) -> None:
    malformed(nft_message(item), fragment)


def test_malformed_nft_mint_item_anywhere() -> None:
    good = {"owner_id": "bob.near", "token_ids": ["1"]}
    malformed(nft_message(good, good, {"owner_id": "Bad"}), "data[2].owner_id")


# --------------------------------------------------------------------------- skipped


def test_unknown_standard_is_skipped() -> None:
    s = skipped(
        message("ft_transfer", {"old_owner_id": "a.near", "amount": "1"}, standard="nep141")
    )
    assert (s.standard, s.event) == ("nep141", "ft_transfer")
    assert "nep141" in s.reason


def test_unknown_renown_event_is_skipped() -> None:
    s = skipped(message("badge_minted", {"to": "bob.near"}))
    assert (s.standard, s.event) == ("renown", "badge_minted")
    assert "badge_minted" in s.reason


@pytest.mark.parametrize("version", ["2.0.0", "3.1.4", "0.9.0", "10.0.0"])
def test_other_major_version_is_skipped(version: str) -> None:
    s = skipped(full_message("vote_cast", version=version))
    assert (s.standard, s.event) == ("renown", "vote_cast")
    assert version in s.reason


def test_major_version_2_is_skipped_even_with_new_shapes() -> None:
    s = skipped(message("vote_cast", {"voter": {"new": "shape"}}, version="2.0.0"))
    assert s.event == "vote_cast"


@pytest.mark.parametrize("version", ["1.2.0", "1.0.1", "1.99.0", "1.0.0-rc.1", "1.1.0+build.5"])
def test_newer_minor_version_is_accepted(version: str) -> None:
    (ev,) = decoded(full_message("vote_cast", version=version))
    assert ev.version == version
    assert ev.event == EXPECTED_FULL["vote_cast"]


def test_skipped_does_not_look_at_data() -> None:
    """Data of an unknown event is not ours to judge: no data at all is still Skipped."""
    msg = message("badge_minted")
    body = log_body(msg)
    del body["data"]
    skipped(with_log(msg, body))
    skipped(with_log(msg, {**body, "standard": "nep999", "data": "whatever"}))


def test_skipped_still_needs_a_valid_envelope() -> None:
    malformed(message("badge_minted", {}, predecessor_id="Alice"), "message.predecessor_id")
    bad_height = {**message("x", {}, standard="nep999"), "block_height": "1"}
    malformed(bad_height, "message.block_height")
    malformed(message("x", {}, standard="nep999", version="two"), "log.version")


# --------------------------------------------------------------------------- malformed: raw


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b'{"block_height": 1,}',
        b"\x00\x01\x02",
        b"{'single': 'quotes'}",
    ],
)
def test_not_json_is_malformed(raw: bytes) -> None:
    malformed(raw, "not UTF-8 JSON")


def test_not_utf8_is_malformed() -> None:
    good = encode(full_message("label_submitted", receipt_id="RECEIPT"))
    # a Latin-1 'é', a lone continuation byte, an overlong '/', a truncated sequence;
    # in an envelope field and inside the log line
    for bad in (b"caf\xe9", b"\x80", b"\xc0\xaf", b"\xe2\x82"):
        for old, new in [(b'"RECEIPT"', b'"' + bad + b'"'), (b"cat", bad)]:
            raw = good.replace(old, new)
            assert raw != good
            malformed(raw, "not UTF-8 JSON", "utf-8")


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b"1", b'"x"', b"null", b"true", b"1.5"])
def test_json_that_is_not_an_object_is_malformed(raw: bytes) -> None:
    malformed(raw, "message: expected a JSON object")


def test_tombstone_is_malformed() -> None:
    malformed(None, "tombstone")


def test_too_deep_json_is_malformed() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert isinstance(decode_message(deep), Malformed)
    msg = full_message("vote_cast")
    msg["log"] = "EVENT_JSON:" + "[" * 100_000 + "]" * 100_000
    assert isinstance(decode(msg), Malformed)


# --------------------------------------------------------------------------- malformed: envelope

ENVELOPE = (
    "block_height",
    "block_timestamp",
    "receipt_id",
    "log_index",
    "contract_id",
    "predecessor_id",
    "log",
)


@pytest.mark.parametrize("field", ENVELOPE)
def test_missing_envelope_field_is_malformed(field: str) -> None:
    msg = full_message("vote_cast")
    del msg[field]
    malformed(msg, f"message.{field}: missing")
    malformed({**msg, field: None}, f"message.{field}: missing")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("block_height", "131234567", "expected an integer"),
        ("block_height", 1.0, "expected an integer"),
        ("block_height", 1.5, "expected an integer"),
        ("block_height", True, "expected an integer"),
        ("block_height", [1], "expected an integer"),
        ("block_height", -1, "must be >= 0"),
        ("block_timestamp", "1764000000123456789", "expected an integer"),
        ("block_timestamp", 1.764e18, "expected an integer"),
        ("block_timestamp", -5, "must be >= 0"),
        ("log_index", True, "expected an integer"),
        ("log_index", False, "expected an integer"),
        ("log_index", "0", "expected an integer"),
        ("log_index", -1, "must be >= 0"),
        ("receipt_id", 123, "expected a string"),
        ("receipt_id", ["r"], "expected a string"),
        ("receipt_id", "", "must not be empty"),
        ("receipt_id", "r" * 129, "longer than 128"),
        ("receipt_id", "r\x00", "NUL"),
        ("contract_id", "Labels.market.near", "not a valid NEAR account id"),
        ("contract_id", "labels..near", "not a valid NEAR account id"),
        ("contract_id", 7, "not a valid NEAR account id"),
        ("contract_id", "", "not a valid NEAR account id"),
        ("predecessor_id", "a", "not a valid NEAR account id"),
        ("predecessor_id", "alice@near", "not a valid NEAR account id"),
        ("predecessor_id", "alice.near\x00", "not a valid NEAR account id"),
        ("predecessor_id", "x" * 65, "not a valid NEAR account id"),
    ],
)
def test_ill_typed_envelope_field_is_malformed(field: str, value: Any, fragment: str) -> None:
    malformed({**full_message("vote_cast"), field: value}, f"message.{field}", fragment)


@pytest.mark.parametrize(
    "log",
    [
        '{"standard":"renown","version":"1.0.0","event":"vote_cast","data":[]}',
        'event_json:{"standard":"renown"}',
        'EVENT_JSON {"standard":"renown"}',
        ' EVENT_JSON:{"standard":"renown"}',
        "EVENT:{}",
        "",
    ],
)
def test_log_without_the_prefix_is_malformed(log: str) -> None:
    malformed({**full_message("vote_cast"), "log": log}, "message.log", "EVENT_JSON:")


@pytest.mark.parametrize("log", [123, ["EVENT_JSON:{}"], {"standard": "renown"}, True])
def test_log_that_is_not_a_string_is_malformed(log: Any) -> None:
    malformed({**full_message("vote_cast"), "log": log}, "message.log")


@pytest.mark.parametrize("payload", ["", "{", "not json", "{'a': 1}", '{"a": 1} trailing'])
def test_event_json_payload_not_json_is_malformed(payload: str) -> None:
    msg = {**full_message("vote_cast"), "log": "EVENT_JSON:" + payload}
    malformed(msg, "message.log", "not JSON")


@pytest.mark.parametrize("payload", ["[]", "1", '"renown"', "null"])
def test_event_json_payload_not_object_is_malformed(payload: str) -> None:
    msg = {**full_message("vote_cast"), "log": "EVENT_JSON:" + payload}
    malformed(msg, "log: expected a JSON object")


@pytest.mark.parametrize("field", ["standard", "version", "event"])
def test_missing_log_field_is_malformed(field: str) -> None:
    msg = full_message("vote_cast")
    body = log_body(msg)
    del body[field]
    malformed(with_log(msg, body), f"log.{field}: missing")
    malformed(with_log(msg, {**body, field: None}), f"log.{field}: missing")


@pytest.mark.parametrize("field", ["standard", "version", "event"])
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (1, "expected a string"),
        (["renown"], "expected a string"),
        ("", "must not be empty"),
        ("x" * 65, "longer than 64"),
        ("a\x00", "NUL"),
    ],
)
def test_ill_typed_log_field_is_malformed(field: str, value: Any, fragment: str) -> None:
    msg = full_message("vote_cast")
    malformed(with_log(msg, {**log_body(msg), field: value}), f"log.{field}", fragment)


@pytest.mark.parametrize(
    "version",
    ["1", "1.0", "v1.0.0", "1.0.0.0", "latest", "1.x", "1.0.a", "one.two.three", "1..0", " 1.0.0"],
)
def test_non_semver_version_is_malformed(version: str) -> None:
    malformed(full_message("vote_cast", version=version), "log.version", "semantic version")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (None, "log.data"),
        ([], "log.data"),
        ({}, "log.data"),
        ({"voter": "alice.near"}, "log.data"),
        ("[]", "log.data"),
        (1, "log.data"),
        ([1], "log.data[0]: expected an object"),
        ([None], "log.data[0]: expected an object"),
        ([[FULL["vote_cast"]]], "log.data[0]: expected an object"),
        ([FULL["vote_cast"], "x"], "log.data[1]: expected an object"),
        ([FULL["vote_cast"]] * (MAX_DATA_ITEMS + 1), "more than 1000"),
    ],
)
def test_bad_data_is_malformed(data: Any, fragment: str) -> None:
    msg = full_message("vote_cast")
    malformed(with_log(msg, {**log_body(msg), "data": data}), fragment)


def test_missing_data_is_malformed() -> None:
    msg = full_message("vote_cast")
    body = log_body(msg)
    del body["data"]
    malformed(with_log(msg, body), "log.data")


# --------------------------------------------------------------------------- malformed: items

MISSING_CASES = [(event, field) for event in sorted(FULL) for field in required(event)]


@pytest.mark.parametrize(("event", "field"), MISSING_CASES)
def test_missing_required_field_is_malformed(event: str, field: str) -> None:
    malformed(item_without(event, field), f"data[0].{field}: missing")
    malformed(item_with(event, **{field: None}), f"data[0].{field}: missing")


BAD_ACCOUNTS = [
    "Alice.near",  # upper case
    "ALICE",
    "a",  # too short
    "x" * 65,  # too long
    "b" * 61 + ".near",  # too long with a suffix
    ".alice.near",  # leading dot
    "-alice.near",  # leading dash
    "_alice",  # leading underscore
    "alice.near.",  # trailing dot
    "alice-",  # trailing dash
    "alice..near",  # empty part
    "alice near",  # space
    " alice.near",
    "alice.near ",
    "alice@near",
    "alice/near",
    "alice\x00",
    "",
    7,
    ["alice.near"],
    {"id": "alice.near"},
    True,
]

ACCOUNT_CASES = [
    (event, field, bad)
    for event in sorted(ACCOUNT_FIELDS)
    for field in ACCOUNT_FIELDS[event]
    for bad in BAD_ACCOUNTS
]


@pytest.mark.parametrize(("event", "field", "bad"), ACCOUNT_CASES)
def test_invalid_account_id_is_malformed(event: str, field: str, bad: Any) -> None:
    malformed(item_with(event, **{field: bad}), f"data[0].{field}", "not a valid NEAR account id")


@pytest.mark.parametrize(
    ("event", "field"),
    [(event, field) for event in sorted(STRING_ID_FIELDS) for field in STRING_ID_FIELDS[event]],
)
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (1, "expected a string"),
        (1.5, "expected a string"),
        (True, "expected a string"),
        (["a"], "expected a string"),
        ({"a": "b"}, "expected a string"),
        ("", "must not be empty"),
        ("x" * 257, "longer than 256"),
        ("a\x00b", "contains a NUL character"),
        ("\x00", "contains a NUL character"),
    ],
)
def test_ill_typed_string_field_is_malformed(
    event: str, field: str, value: Any, fragment: str
) -> None:
    malformed(item_with(event, **{field: value}), f"data[0].{field}", fragment)


@pytest.mark.parametrize("value", [2, 0, -2, True, False, 1.0, -1.0, 0.5, "1", "+1", [1], None])
def test_bad_vote_value_is_malformed(value: Any) -> None:
    fragment = "data[0].value: missing" if value is None else "data[0].value: expected 1 or -1"
    malformed(item_with("vote_cast", value=value), fragment)


@pytest.mark.parametrize("kind", ["x", "Account", "accounts", "", 1, None, ["account"]])
def test_bad_target_kind_is_malformed(kind: Any) -> None:
    malformed(item_with("vote_cast", target_kind=kind), "data[0].target_kind")


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("t/i", "task_id/item_id/labeler"),
        ("t", "task_id/item_id/labeler"),
        ("bob.near", "task_id/item_id/labeler"),
        ("/i/bob.near", "task_id/item_id/labeler"),
        ("t//bob.near", "task_id/item_id/labeler"),
        ("t/i/", "target labeler"),
        ("t/i/Bob", "target labeler"),
        ("t/i/bob near", "target labeler"),
        ("t/i/bob.near\x00", "NUL"),
        ("", "must not be empty"),
        (5, "expected a string"),
    ],
)
def test_bad_label_target_is_malformed(target: Any, fragment: str) -> None:
    malformed(
        item_with("vote_cast", target_kind="label", target=target), "data[0].target", fragment
    )


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("", "must not be empty"),
        (5, "expected a string"),
        ("c\x00", "NUL"),
        ("c" * 257, "longer than 256"),
    ],
)
def test_bad_content_target_is_malformed(target: Any, fragment: str) -> None:
    malformed(
        item_with("vote_cast", target_kind="content", target=target), "data[0].target", fragment
    )


def test_account_target_must_be_an_account() -> None:
    msg = item_with("vote_cast", target="nft.example.near:42")
    malformed(msg, "data[0].target", "NEAR account id")
    malformed(item_with("vote_cast", target="t/i/bob.near"), "data[0].target")


@pytest.mark.parametrize(
    "weight", [0, 0.0, -0.5, 1.5, 1.0000001, 2, "x", "0.5", True, False, [0.5], {"w": 1}, 1e400]
)
def test_bad_endorsement_weight_is_malformed(weight: Any) -> None:
    malformed(item_with("endorsed", weight=weight), "data[0].weight", "(0, 1]")


@pytest.mark.parametrize("raw_weight", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_weight_is_malformed(raw_weight: bytes) -> None:
    """Python's json accepts these non-standard literals; the decoder must still refuse them."""
    raw = encode(item_with("endorsed", weight=0.123456)).replace(b"0.123456", raw_weight)
    malformed(raw, "data[0].weight")


@pytest.mark.parametrize(
    ("event", "verdict"),
    [
        ("label_reviewed", "maybe"),
        ("label_reviewed", "Accept"),
        ("label_reviewed", "authentic"),
        ("label_reviewed", True),
        ("label_reviewed", 1),
        ("content_attested", "maybe"),
        ("content_attested", "accept"),
        ("content_attested", ""),
        ("content_attested", ["authentic"]),
    ],
)
def test_bad_verdict_is_malformed(event: str, verdict: Any) -> None:
    malformed(item_with(event, verdict=verdict), "data[0].verdict", "expected one of")


@pytest.mark.parametrize("event", ["task_posted", "vote_cast", "endorsed", "content_authored"])
@pytest.mark.parametrize(
    "domain",
    [
        "General",
        "CODE",
        "x" * 65,
        "",
        "a b",
        "a.b",
        "a/b",
        "code\x00",
        5,
        True,
        ["code"],
        {"d": "code"},
    ],
)
def test_invalid_domain_is_malformed(event: str, domain: Any) -> None:
    malformed(item_with(event, domain=domain), "data[0].domain", "[a-z0-9:_-]{1,64}")


@pytest.mark.parametrize(
    "content_hash",
    ["ab" * 31, "ab" * 33, "g" * 64, "0x" + "ab" * 31, " " + "ab" * 32, "", 123, ["ab" * 32]],
)
def test_bad_content_hash_is_malformed(content_hash: Any) -> None:
    malformed(
        item_with("content_authored", content_hash=content_hash), "data[0].content_hash", "64 hex"
    )


@pytest.mark.parametrize(
    ("authors", "fragment"),
    [
        ([], "data[0].authors: expected a non-empty list"),
        ("alice.near", "data[0].authors: expected a non-empty list"),
        ({"alice.near": 1}, "data[0].authors: expected a non-empty list"),
        (["Alice"], "data[0].authors[0]"),
        (["alice.near", "bad..near"], "data[0].authors[1]"),
        (["alice.near", 5], "data[0].authors[1]"),
        (["alice.near"] * 1001, "more than 1000"),
    ],
)
def test_bad_authors_is_malformed(authors: Any, fragment: str) -> None:
    malformed(item_with("content_authored", authors=authors), fragment)


@pytest.mark.parametrize(
    ("derived", "fragment"),
    [
        ("paper-0", "data[0].derived_from: expected a non-empty list"),
        ({"paper-0": 1}, "data[0].derived_from"),
        ([""], "data[0].derived_from[0]: must not be empty"),
        (["ok", 1], "data[0].derived_from[1]: expected a string"),
        (["x\x00"], "data[0].derived_from[0]: contains a NUL"),
        (["x" * 257], "data[0].derived_from[0]: longer than 256"),
    ],
)
def test_bad_derived_from_is_malformed(derived: Any, fragment: str) -> None:
    malformed(item_with("content_authored", derived_from=derived), fragment)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ("cat", "data[0].labels: expected a non-empty list"),
        ([], "data[0].labels: expected a non-empty list"),
        ([1], "data[0].labels[0]: expected a string"),
        (["cat", ""], "data[0].labels[1]: must not be empty"),
        (["c\x00t"], "data[0].labels[0]: contains a NUL"),
    ],
)
def test_bad_task_labels_is_malformed(labels: Any, fragment: str) -> None:
    malformed(item_with("task_posted", labels=labels), fragment)


@pytest.mark.parametrize(
    ("gold", "fragment"),
    [
        ({}, "data[0].gold: expected a non-empty object"),
        ([["i", "cat"]], "data[0].gold: expected a non-empty object"),
        ("cat", "data[0].gold: expected a non-empty object"),
        ({"i": 1}, "data[0].gold['i']: expected a string"),
        ({"i": ""}, "data[0].gold['i']: must not be empty"),
        ({"i": "c\x00t"}, "NUL"),
        ({"": "cat"}, "data[0].gold key: must not be empty"),
        ({"i\x00": "cat"}, "data[0].gold key: contains a NUL"),
        ({"i" * 257: "cat"}, "data[0].gold key: longer than 256"),
    ],
)
def test_bad_gold_is_malformed(gold: Any, fragment: str) -> None:
    malformed(item_with("gold_revealed", gold=gold), fragment)


@pytest.mark.parametrize("position", [0, 1, 4])
def test_a_malformed_item_anywhere_makes_the_whole_message_malformed(position: int) -> None:
    items = [copy.deepcopy(FULL["endorsed"]) for _ in range(5)]
    items[position]["endorsee"] = "Not Valid"
    malformed(message("endorsed", *items), f"data[{position}].endorsee")


def test_the_first_bad_item_is_reported() -> None:
    items = [
        FULL["vote_cast"],
        {**FULL["vote_cast"], "value": 3},
        {**FULL["vote_cast"], "voter": "X"},
    ]
    reason = malformed(message("vote_cast", *items), "data[1].value")
    assert "data[2]" not in reason


def test_reasons_are_short_and_printable() -> None:
    reason = malformed(item_with("endorsed", endorsee="Z" * 10_000), "data[0].endorsee")
    assert len(reason) < 200
    reason = malformed(item_with("endorsed", endorsee="\x00\ud800é"), "data[0].endorsee")
    assert reason.isascii()


# --------------------------------------------------------------------------- hypothesis

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
KNOWN_FIELDS = sorted(
    {
        *ENVELOPE,
        *(f for item in FULL.values() for f in item),
        "standard",
        "version",
        "event",
        "data",
        "owner_id",
        "token_ids",
    }
)

VALID_MESSAGES: list[dict[str, Any]] = [
    *(full_message(e) for e in sorted(FULL)),
    *(message(e, minimal(e)) for e in sorted(FULL)),
    message(
        "vote_cast",
        FULL["vote_cast"],
        {**FULL["vote_cast"], "target_kind": "label", "target": "t/i/bob.near"},
    ),
    nft_message({"owner_id": "bob.near", "token_ids": ["1", "2"]}),
]

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_result(result: DecodeResult) -> None:
    """Whatever came in, the result is one of three, and Decoded upholds its invariants."""
    assert isinstance(result, Decoded | Skipped | Malformed)
    if isinstance(result, Malformed):
        assert result.reason
    if isinstance(result, Decoded):
        assert result.events
        assert len({e.key for e in result.events}) == len(result.events)
        for e in result.events:
            assert is_account_id(e.chain.contract_id)
            assert is_account_id(e.chain.predecessor_id)
            ev = e.event
            for f in dataclasses.fields(ev):
                v = getattr(ev, f.name)
                if isinstance(v, str):
                    assert "\x00" not in v
            if isinstance(ev, VoteCast | Endorsed | ContentAuthored | TaskPosted):
                assert ev.domain is None or is_domain(ev.domain)


@SETTINGS
@given(st.binary(max_size=300))
def test_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    check_result(decode_message(raw))


@SETTINGS
@given(JSON_VALUES)
def test_never_raises_on_arbitrary_json(value: Any) -> None:
    check_result(decode_message(json.dumps(value).encode()))


@SETTINGS
@given(st.dictionaries(st.sampled_from(KNOWN_FIELDS), JSON_VALUES, max_size=8))
def test_never_raises_on_objects_with_known_field_names(value: dict[str, Any]) -> None:
    check_result(decode_message(json.dumps(value).encode()))


@SETTINGS
@given(st.sampled_from(VALID_MESSAGES), st.sampled_from(ENVELOPE), JSON_VALUES)
def test_never_raises_on_a_mutated_envelope(msg: dict[str, Any], field: str, value: Any) -> None:
    check_result(decode({**msg, field: value}))


@SETTINGS
@given(
    st.sampled_from(VALID_MESSAGES),
    st.sampled_from(["standard", "version", "event", "data"]),
    JSON_VALUES,
)
def test_never_raises_on_a_mutated_log(msg: dict[str, Any], field: str, value: Any) -> None:
    check_result(decode(with_log(msg, {**log_body(msg), field: value})))


@SETTINGS
@given(st.sampled_from(VALID_MESSAGES), st.data())
def test_never_raises_on_a_mutated_item(msg: dict[str, Any], data: st.DataObject) -> None:
    body = log_body(msg)
    items: list[dict[str, Any]] = body["data"]
    i = data.draw(st.integers(0, len(items) - 1))
    field = data.draw(st.sampled_from([*sorted(items[i]), "domain", "weight", "labels"]))
    if data.draw(st.booleans()):
        items[i].pop(field, None)
    else:
        items[i][field] = data.draw(JSON_VALUES)
    result = decode(with_log(msg, body))
    check_result(result)


@SETTINGS
@given(st.sampled_from(VALID_MESSAGES), st.data())
def test_never_raises_on_a_mutated_item_with_near_miss_strings(
    msg: dict[str, Any], data: st.DataObject
) -> None:
    """Like the above, with strings that are one edit away from valid ones."""
    body = log_body(msg)
    items: list[dict[str, Any]] = body["data"]
    i = data.draw(st.integers(0, len(items) - 1))
    strings = [k for k, v in items[i].items() if isinstance(v, str)]
    if not strings:
        return
    field = data.draw(st.sampled_from(sorted(strings)))
    text: str = items[i][field]
    pos = data.draw(st.integers(0, len(text)))
    insert = data.draw(
        st.sampled_from([".", "-", "_", "/", ":", " ", "A", "\x00", "é", "\n", "..", ""])
    )
    items[i][field] = text[:pos] + insert + text[pos + (1 if insert == "" else 0) :]
    check_result(decode(with_log(msg, body)))


@SETTINGS
@given(st.sampled_from(VALID_MESSAGES), st.data())
def test_never_raises_on_flipped_bytes(msg: dict[str, Any], data: st.DataObject) -> None:
    raw = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    check_result(decode_message(bytes(raw)))


@SETTINGS
@given(st.sampled_from(VALID_MESSAGES), st.data())
def test_never_raises_on_truncated_messages(msg: dict[str, Any], data: st.DataObject) -> None:
    raw = encode(msg)
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert isinstance(decode_message(raw[:cut]), Malformed)


def test_the_valid_messages_used_above_are_valid() -> None:
    for msg in VALID_MESSAGES:
        assert isinstance(decode(msg), Decoded)


def test_log_line_builder_matches_the_prefix() -> None:
    assert log_line("vote_cast", []).startswith("EVENT_JSON:{")


# --------------------------------------------------------------------------- is_account_id

# NEAR's documented examples (nomicon "Account ID rules", nearcore `near-account-id`).
VALID_ACCOUNT_IDS = [
    "ok",
    "bowen",
    "ek-2",
    "ek.near",
    "com",
    "google.com",
    "bowen.google.com",
    "near",
    "illia.cheap-accounts.near",
    "max_99.near",
    "100",
    "near2019",
    "over.9000",
    "a.bro",
    "bro.a",
    "1_4m_n0t-al1c3.near",
    "app_1.alice.near",
    "test-trust.vlad.near",
    "deadbeef",
    "9902c136629fc630416e50d4f2fef6aff867ea7e.lockup.near",
    "alice.near",
    "app.stage.testnet",
    IMPLICIT,  # 64-hex implicit account
    "0" * 64,
    "0x" + "ab" * 20,  # Ethereum-implicit account
    "a" * 64,  # longest named account
]

INVALID_ACCOUNT_IDS = [
    "a",
    "A",
    "Abc",
    "WAT",
    "-near",
    "near-",
    "jerry@near",
    "me@google.com",
    "ek..near",
    ".near",
    "near.",
    "a..near",
    "over-.9000",
    "_illia",
    "near_",
    "bo__wen",
    "100-",
    "not ok",
    "$$$",
    "not-_alice.near",
    "alice.-bob.near",
    "_alice.",
    ".bob.near-",
    "ƒelicia.near",
    "",
    "a" * 65,  # 65 characters
    "abcdefghijklmnopqrstuvwxyz.abcdefghijklmnopqrstuvwxyz.abcdefghijklmnopqrstuvwxyz",
    IMPLICIT.upper(),  # implicit accounts are lower-case hex
    IMPLICIT + "0",
    "alice\tnear",
    "alice.near\x00",
]


@pytest.mark.parametrize("account", VALID_ACCOUNT_IDS)
def test_valid_account_ids(account: str) -> None:
    assert is_account_id(account)
    assert isinstance(e := only_event(item_with("endorsed", endorsee=account)), Endorsed)
    assert e.endorsee == account


@pytest.mark.parametrize("account", INVALID_ACCOUNT_IDS)
def test_invalid_account_ids(account: str) -> None:
    assert not is_account_id(account)
    malformed(item_with("endorsed", endorsee=account), "data[0].endorsee")


@pytest.mark.parametrize(
    "value", [None, 5, 5.0, True, b"alice.near", ["alice.near"], {"alice.near": 1}]
)
def test_non_strings_are_not_account_ids(value: Any) -> None:
    assert not is_account_id(value)


@SETTINGS
@given(st.from_regex(r"[a-z0-9]{1,10}([-_.][a-z0-9]{1,10}){0,4}", fullmatch=True))
def test_generated_named_accounts_are_valid(account: str) -> None:
    assert is_account_id(account) == (2 <= len(account) <= 64)


@SETTINGS
@given(st.text(alphabet="abc019.-_A@ ", min_size=0, max_size=12))
def test_account_rule_matches_a_reference_implementation(account: str) -> None:
    assert is_account_id(account) == reference_is_account_id(account)


def reference_is_account_id(account: str) -> bool:
    """NEAR's rule written out without a regex, after nearcore's `validate`."""
    if not 2 <= len(account) <= 64:
        return False
    last_was_separator = True  # no separator at the start
    for ch in account:
        if ch in "-_.":
            if last_was_separator:
                return False
            last_was_separator = True
        elif ch in "abcdefghijklmnopqrstuvwxyz0123456789":
            last_was_separator = False
        else:
            return False
    return not last_was_separator  # no separator at the end


# --- regressions: decoder bugs found by review (strict UTF-8, ASCII-only patterns, bounds) ---


@pytest.mark.parametrize("account", ["١٢٣", "alice٣.near", "bob۹.near"])  # Unicode digits
def test_regression_unicode_digits_are_not_account_ids(account: str) -> None:
    assert not is_account_id(account)


@pytest.mark.parametrize("value", ["alice.near\n", "bob\n"])
def test_regression_trailing_newline_is_not_an_account_id(value: str) -> None:
    assert not is_account_id(value)
    assert isinstance(decode_message(encode(vote("alice.near", value))), Malformed)


def test_regression_trailing_newline_domain_hash_version() -> None:
    assert not is_domain("general\n")
    m = message(
        "content_authored", {"content_id": "c", "authors": ["a.near"], "content_hash": HASH + "\n"}
    )
    assert isinstance(decode_message(encode(m)), Malformed)
    assert isinstance(
        decode_message(encode(vote("a.near", "b.near", version="1.0.0\n"))), Malformed
    )


def test_regression_utf8_encoded_surrogate_is_not_utf8() -> None:
    raw = encode(vote("a.near", "b.near", receipt_id="RECEIPT")).replace(
        b'"RECEIPT"', b'"\xed\xa0\x80"'
    )
    assert isinstance(decode_message(raw), Malformed)


def test_regression_lone_surrogate_escape_is_malformed() -> None:
    m = message(
        "label_submitted", {"task_id": "t\ud800", "item_id": "i", "labeler": "b.near", "label": "x"}
    )
    assert isinstance(decode_message(encode(m)), Malformed)
    m = message(
        "whatever", {}, standard="nep\ud800"
    )  # Skipped today, then crashes the skipped insert
    assert isinstance(decode_message(encode(m)), Malformed)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_regression_non_utf8_encodings_are_malformed(encoding: str) -> None:
    import json

    raw = json.dumps(vote("a.near", "b.near")).encode(encoding)
    assert isinstance(decode_message(raw), Malformed)


@pytest.mark.parametrize(
    "kw", [{"block_height": 2**63}, {"block_timestamp": 2**64}, {"log_index": 2**31}]
)
def test_regression_integers_beyond_storage_range_are_malformed(kw: dict[str, int]) -> None:
    assert isinstance(decode_message(encode(vote("a.near", "b.near", **kw))), Malformed)


def test_regression_content_vote_target_longer_than_256_is_malformed() -> None:
    assert isinstance(decode_message(encode(vote("a.near", "c" * 257, kind="content"))), Malformed)


def test_regression_nft_content_id_longer_than_256_is_malformed() -> None:
    m = message(
        "nft_mint",
        {"owner_id": "bob.near", "token_ids": ["t" * 256]},
        standard="nep171",
        contract_id="x" * 64,
    )
    assert isinstance(decode_message(encode(m)), Malformed)


def test_regression_unicode_digits_in_version() -> None:
    assert isinstance(decode_message(encode(vote("a.near", "b.near", version="١.0.0"))), Malformed)


def test_subject_of_names_the_acting_account() -> None:
    from ingest.decode import subject_of

    def log(event: str, item: dict[str, object], standard: str = "renown") -> str:
        body = {"standard": standard, "version": "1.0.0", "event": event, "data": [item]}
        return "EVENT_JSON:" + json.dumps(body)

    assert subject_of(log("vote_cast", {"voter": "a.near", "target": "b.near"})) == "a.near"
    assert subject_of(log("label_reviewed", {"labeler": "l.near", "reviewer": "r.near"})) == (
        "r.near"
    )
    assert subject_of(log("content_authored", {"authors": ["x.near", "y.near"]})) == "x.near"
    assert subject_of(log("nft_mint", {"owner_id": "o.near"}, "nep171")) == "o.near"
    # nothing to key by: the caller falls back to the predecessor
    assert subject_of(log("vote_cast", {"voter": "Not Valid"})) is None
    assert subject_of(log("unknown", {"voter": "a.near"})) is None
    assert subject_of("EVENT_JSON:{not json") is None
    assert subject_of("plain log") is None
    assert subject_of(log("content_authored", {"authors": []})) is None
