"""Renown snapshots: one sha256 Merkle root per scoring epoch, plus a bounded set of scores.

A NEAR contract compiled by ``nearc`` (near-sdk-py's compiler: MicroPython inside wasm); see
contract/README.md for the build, the methods, the storage layout and its cost. It runs
under MicroPython, not CPython, with a fixed 32 KB heap: it uses only ``json``, ``struct``
and nearc's host module ``near`` (``@near.export``, storage, context, logs, sha256), not
the ``near_sdk_py`` helper package, whose import alone costs about 3 million wasm
instructions (~2.4 Tgas) and most of that heap on every call (README: "Why not
near_sdk_py's decorators"). Every refusal ends in ``near.panic_utf8`` with a message for
the caller.

The leaf encoding and the proof walk are the ones of scoring/merkle.py (LEAF_VERSION 1),
re-implemented here step for step: ``verify`` must accept exactly the proofs that
``scoring.merkle.verify`` accepts against the root and count stored for the epoch.
"""

import json
import struct

import near

STANDARD = "renown_snapshots"
STANDARD_VERSION = "1.0.0"

# Scores per store_scores call. Each score costs one storage read and usually one storage
# write (about 0.3-0.5 Tgas together on NEAR, trie-node touches included) plus about 0.1
# Tgas of MicroPython work to parse and check it, so 100 stays far below the 300 Tgas a
# transaction may attach (README: "Gas"). The other bound is memory: the arguments and their
# parsed form must fit in the 32 KB MicroPython heap of nearc's build, hence MAX_INPUT_BYTES
# (100 scores of ~15-byte accounts fit in it; of 64-byte accounts and domains, ~44 do).
MAX_BATCH = 100
MAX_INPUT_BYTES = 8192
MAX_ACCOUNT_BYTES = 64  # NEAR account ids are 2..64 bytes
MAX_DOMAIN_BYTES = 64
MAX_URI_BYTES = 512
MAX_PROOF_LEN = 64  # a tree of fewer than 2**64 leaves has at most 64 levels
SCORE_MAX = 100 * 1_000_000  # score_micro: the 0-100 score in millionths of a point
U64 = 1 << 64

LEAF_VERSION = 1
EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# Storage layout (keys are bytes; README "Storage"):
#   b"c"                                   -> config JSON {owner, publisher, last_epoch}
#   b"e" + u64be(epoch)                     -> snapshot JSON
#   b"s" + u8(len(account)) + account + domain -> u32be(score_micro) + u64be(epoch)
K_CONFIG = b"c"
P_EPOCH = b"e"
P_SCORE = b"s"

_HEX = "0123456789abcdef"
_ACCOUNT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def _fail(msg):
    raw = msg.encode()
    if b"\xed" in raw:  # a message quoting an argument: NEAR refuses a panic of bad UTF-8
        msg = _join_surrogates(raw, b"\xef\xbf\xbd").decode()  # a lone surrogate -> U+FFFD
    near.panic_utf8(msg)


def _join_surrogates(raw, lone):
    """``raw`` with each UTF-16 surrogate pair re-encoded as the 4-byte UTF-8 of its code point.

    py-near (like CPython's ``json.dumps``) escapes a character outside the BMP as a pair of
    ``\\uXXXX`` escapes, high then low surrogate, and MicroPython's ``json.loads`` encodes
    each half on its own, as 3 bytes ``ED A0-BF xx`` (CESU-8, not UTF-8): an emoji arrives as
    ``ED A0-AF xx ED B0-BF yy``. A lone surrogate left over becomes ``lone`` or, when
    ``lone`` is None, the result is None. Other bytes are kept as they are (json.loads has
    already refused a string that is not UTF-8 in form: MicroPython's utf8_check checks lead
    and continuation bytes, not surrogates nor overlong forms).
    """
    parts = []
    start = i = 0
    n = len(raw)
    while True:
        j = raw.find(b"\xed", i)
        if j < 0 or j + 2 >= n:
            break
        b1 = raw[j + 1]
        if b1 < 0xA0 or b1 > 0xBF:  # U+D000..U+D7FF, an ordinary character
            i = j + 3
            continue
        if b1 <= 0xAF and j + 5 < n and raw[j + 3] == 0xED and 0xB0 <= raw[j + 4] <= 0xBF:
            hi = ((b1 & 0x0F) << 6) | (raw[j + 2] & 0x3F)  # high surrogate - 0xD800
            lo = ((raw[j + 4] & 0x0F) << 6) | (raw[j + 5] & 0x3F)  # low surrogate - 0xDC00
            cp = 0x10000 + (hi << 10) + lo
            parts.append(raw[start:j])
            parts.append(
                bytes(
                    (
                        0xF0 | (cp >> 18),
                        0x80 | ((cp >> 12) & 0x3F),
                        0x80 | ((cp >> 6) & 0x3F),
                        0x80 | (cp & 0x3F),
                    )
                )
            )
            i = start = j + 6
        elif lone is None:
            return None
        else:
            parts.append(raw[start:j])
            parts.append(lone)
            i = start = j + 3
    if not parts:
        return raw
    parts.append(raw[start:])
    return b"".join(parts)


def _args(method, names):
    """The call's JSON object of arguments, refused if too large, malformed or unknown."""
    raw = near.input()
    if raw is None or len(raw) == 0:
        return {}
    if len(raw) > MAX_INPUT_BYTES:
        _fail(f"{method}: arguments are {len(raw)} bytes, over the {MAX_INPUT_BYTES}-byte limit")
    try:
        args = json.loads(raw)
    except ValueError:
        _fail(f"{method}: arguments are not valid JSON")
    raw = None  # let the GC reclaim the input before the work starts
    if type(args) is not dict:
        _fail(f"{method}: arguments must be a JSON object")
    for name in args:
        if name not in names:
            _fail(f"{method}: unknown argument '{name}' (expected {', '.join(names)})")
    return args


def _return(text):
    near.value_return(text)


def _is_int(value):
    return type(value) is int


def _check_u64(method, name, value):
    if not _is_int(value) or value < 0 or value >= U64:
        _fail(f"{method}: '{name}' must be an integer in [0, 2^64), got {json.dumps(value)}")


def _check_hex32(method, name, value):
    if type(value) is not str or len(value) != 64:
        _fail(f"{method}: '{name}' must be 64 lowercase hex characters (a sha256 digest)")
    for ch in value:
        if ch not in _HEX:
            _fail(f"{method}: '{name}' must be 64 lowercase hex characters (a sha256 digest)")


def _utf8(method, name, value, lo, hi):
    if type(value) is not str:
        _fail(f"{method}: '{name}' must be a string")
    raw = value.encode()
    if b"\xed" in raw:  # maybe a character outside the BMP, decoded as two surrogates
        raw = _join_surrogates(raw, None)
        if raw is None:
            _fail(f"{method}: '{name}' contains an unpaired UTF-16 surrogate")
    if len(raw) < lo or len(raw) > hi:
        _fail(f"{method}: '{name}' must be {lo} to {hi} UTF-8 bytes, got {len(raw)}")
    return raw


def _check_account(method, name, value):
    raw = _utf8(method, name, value, 2, MAX_ACCOUNT_BYTES)
    for ch in value:
        if ch not in _ACCOUNT_CHARS:
            _fail(f"{method}: '{name}' is not a valid NEAR account id: {json.dumps(value)}")
    return raw


def _config_raw():
    raw = near.storage_read(K_CONFIG)
    if raw is None:
        _fail("the contract is not initialized: call init(owner, publisher) first")
    return raw


def _config():
    return json.loads(_config_raw())


def _save_config(owner, publisher, last_epoch):
    near.storage_write(
        K_CONFIG,
        _json_obj((("owner", owner), ("publisher", publisher), ("last_epoch", last_epoch))),
    )


def _require(method, who, account):
    caller = near.predecessor_account_id()
    if caller != account:
        _fail(f"{method}: only the {who} ({account}) may call this; the caller is {caller}")


def _epoch_key(epoch):
    return P_EPOCH + struct.pack(">Q", epoch)


def _score_key(account_raw, domain_raw):
    return P_SCORE + bytes([len(account_raw)]) + account_raw + domain_raw


def _snapshot_raw(epoch):
    return near.storage_read(_epoch_key(epoch))


def _json_obj(pairs):
    """Compact JSON of an object with its keys in the given order (dict order is not)."""
    return "{" + ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in pairs) + "}"


def _event_log(event, data):
    """A NEP-297 event: ``EVENT_JSON:`` then standard, version, event and a one-item data."""
    head = _json_obj((("standard", STANDARD), ("version", STANDARD_VERSION), ("event", event)))
    near.log_utf8("EVENT_JSON:" + head[:-1] + ',"data":[' + _json_obj(data) + "]}")


# ----------------------------------------------------------------------------- calls


@near.export
def init():
    """init(owner, publisher): set both accounts; once, by the contract account itself."""
    a = _args("init", ("owner", "publisher"))
    if near.storage_read(K_CONFIG) is not None:
        _fail("init: the contract is already initialized")
    _require("init", "contract account", near.current_account_id())
    owner = a.get("owner")
    publisher = a.get("publisher")
    _check_account("init", "owner", owner)
    _check_account("init", "publisher", publisher)
    _save_config(owner, publisher, None)
    _return("true")


@near.export
def publish():
    """publish(epoch, root, count, uri): record an epoch's root; publisher only, rising epochs."""
    a = _args("publish", ("epoch", "root", "count", "uri"))
    cfg = _config()
    _require("publish", "publisher", cfg["publisher"])
    epoch = a.get("epoch")
    root = a.get("root")
    count = a.get("count")
    uri = a.get("uri")
    _check_u64("publish", "epoch", epoch)
    _check_hex32("publish", "root", root)
    _check_u64("publish", "count", count)
    uri_raw = _utf8("publish", "uri", uri, 0, MAX_URI_BYTES)
    if len(uri_raw) != len(uri):  # not ASCII: store and log surrogate pairs as UTF-8
        uri = uri_raw.decode()
    last = cfg["last_epoch"]
    if last is not None and epoch <= last:
        _fail(f"publish: epoch {epoch} is not newer than the last published epoch {last}")
    if count == 0 and root != EMPTY_ROOT:
        _fail("publish: an epoch of 0 leaves must have the empty root sha256(b'')")
    fields = (("epoch", epoch), ("root", root), ("count", count), ("uri", uri))
    block = (("block_timestamp", near.block_timestamp()), ("block_height", near.block_height()))
    snap = _json_obj(fields + block)
    near.storage_write(_epoch_key(epoch), snap)
    _save_config(cfg["owner"], cfg["publisher"], epoch)
    _event_log("snapshot_published", fields)
    _return(snap)


@near.export
def store_scores():
    """store_scores(epoch, scores): store a batch of a published epoch's scores; publisher only.

    Each (account, domain) keeps its latest score: a stored score of a newer epoch is kept
    (an old batch replayed late changes nothing), one of the same or an older epoch is
    replaced. Storing a batch twice changes nothing (unchanged entries are not rewritten).
    """
    a = _args("store_scores", ("epoch", "scores"))
    cfg = _config()
    _require("store_scores", "publisher", cfg["publisher"])
    epoch = a.get("epoch")
    scores = a.get("scores")
    _check_u64("store_scores", "epoch", epoch)
    if _snapshot_raw(epoch) is None:
        _fail(f"store_scores: epoch {epoch} has not been published")
    if type(scores) is not list:
        _fail("store_scores: 'scores' must be a list of {account, domain, score_micro}")
    n = len(scores)
    if n > MAX_BATCH:
        _fail(f"store_scores: at most {MAX_BATCH} scores per call (gas), got {n}")
    updated = 0
    for i in range(n):
        item = scores[i]
        scores[i] = None  # free each entry once done
        where = f"store_scores: scores[{i}]"
        if (
            type(item) is not dict
            or len(item) != 3
            or "account" not in item
            or "domain" not in item
            or "score_micro" not in item
        ):
            _fail(where + " must be an object with exactly account, domain, score_micro")
        account_raw = _check_account(where, "account", item["account"])
        domain_raw = _utf8(where, "domain", item["domain"], 1, MAX_DOMAIN_BYTES)
        score = item["score_micro"]
        if not _is_int(score) or score < 0 or score > SCORE_MAX:
            _fail(f"{where}: 'score_micro' must be an integer in [0, {SCORE_MAX}]")
        key = _score_key(account_raw, domain_raw)
        value = struct.pack(">IQ", score, epoch)
        old = near.storage_read(key)
        if old is not None and (old == value or struct.unpack(">IQ", old)[1] > epoch):
            continue  # unchanged, or a newer epoch's score is already stored
        near.storage_write(key, value)
        updated += 1
    result = (("epoch", epoch), ("count", n), ("updated", updated))
    _event_log("scores_stored", result)
    _return(_json_obj(result))


@near.export
def set_publisher():
    """set_publisher(publisher): replace the publisher; owner only."""
    a = _args("set_publisher", ("publisher",))
    cfg = _config()
    _require("set_publisher", "owner", cfg["owner"])
    publisher = a.get("publisher")
    _check_account("set_publisher", "publisher", publisher)
    _save_config(cfg["owner"], publisher, cfg["last_epoch"])
    _event_log(
        "publisher_changed", (("old_publisher", cfg["publisher"]), ("new_publisher", publisher))
    )
    _return("true")


# ----------------------------------------------------------------------------- views


@near.export
def get_config():
    """get_config() -> {owner, publisher, last_epoch}."""
    _args("get_config", ())
    _return(_config_raw())


@near.export
def get_latest_snapshot():
    """get_latest_snapshot() -> the latest snapshot or null."""
    _args("get_latest_snapshot", ())
    last = _config()["last_epoch"]
    _return("null" if last is None else _snapshot_raw(last))


@near.export
def get_snapshot():
    """get_snapshot(epoch) -> {epoch, root, count, uri, block_timestamp, block_height} or null."""
    epoch = _args("get_snapshot", ("epoch",)).get("epoch")
    _check_u64("get_snapshot", "epoch", epoch)
    snap = _snapshot_raw(epoch)
    _return("null" if snap is None else snap)


@near.export
def get_score():
    """get_score(account, domain) -> {score_micro, epoch} (the latest stored) or null."""
    a = _args("get_score", ("account", "domain"))
    account_raw = _utf8("get_score", "account", a.get("account"), 1, MAX_ACCOUNT_BYTES)
    domain_raw = _utf8("get_score", "domain", a.get("domain"), 1, MAX_DOMAIN_BYTES)
    raw = near.storage_read(_score_key(account_raw, domain_raw))
    if raw is None:
        _return("null")
    else:
        score, epoch = struct.unpack(">IQ", raw)
        _return(_json_obj((("score_micro", score), ("epoch", epoch))))


def _leaf_hash(account_raw, domain_raw, score, epoch):
    return near.sha256(
        b"\x00"
        + bytes([LEAF_VERSION])
        + struct.pack(">H", len(account_raw))
        + account_raw
        + struct.pack(">H", len(domain_raw))
        + domain_raw
        + struct.pack(">QQ", score, epoch)
    )


@near.export
def verify():
    """verify(epoch, account, domain, score_micro, index, siblings) -> bool.

    Whether the proof puts the leaf (account, domain, score_micro, epoch) under the root
    stored for the epoch, walked as scoring.merkle.root_from_proof walks it with the stored
    count: at each level of ``size`` nodes the last node of an odd level is promoted,
    otherwise the next sibling is hashed in, on the left when the index is odd. A proof of
    the wrong shape (index out of range, too few or too many siblings) is false.
    """
    a = _args("verify", ("epoch", "account", "domain", "score_micro", "index", "siblings"))
    epoch = a.get("epoch")
    score = a.get("score_micro")
    index = a.get("index")
    siblings = a.get("siblings")
    _check_u64("verify", "epoch", epoch)
    snap_raw = _snapshot_raw(epoch)
    if snap_raw is None:
        _fail(f"verify: epoch {epoch} has not been published")
    account_raw = _utf8("verify", "account", a.get("account"), 0, 0xFFFF)
    domain_raw = _utf8("verify", "domain", a.get("domain"), 0, 0xFFFF)
    _check_u64("verify", "score_micro", score)
    _check_u64("verify", "index", index)
    if type(siblings) is not list:
        _fail("verify: 'siblings' must be a list of 64-character hex strings")
    if len(siblings) > MAX_PROOF_LEN:
        _return("false")
        return
    nodes = []
    for s in siblings:
        _check_hex32("verify", "siblings[]", s)
        nodes.append(bytes.fromhex(s))
    snap = json.loads(snap_raw)
    count = snap["count"]
    if not account_raw or not domain_raw or score > SCORE_MAX or index >= count:
        _return("false")
        return
    node = _leaf_hash(account_raw, domain_raw, score, epoch)
    size = count
    used = 0
    while size > 1:
        if not (index == size - 1 and size % 2 == 1):
            if used >= len(nodes):
                _return("false")  # proof too short
                return
            sib = nodes[used]
            used += 1
            if index % 2:
                node = near.sha256(b"\x01" + sib + node)
            else:
                node = near.sha256(b"\x01" + node + sib)
        index //= 2
        size = (size + 1) // 2
    _return("true" if used == len(nodes) and node.hex() == snap["root"] else "false")


def contract_source_metadata():
    """NEP-330 metadata, written out here so nearc injects no git commit (rebuilds match)."""
    near.value_return(
        '{"version":"1.0.0","link":"contract/README.md","standards":['
        '{"standard":"nep330","version":"1.0.0"},'
        '{"standard":"nep297","version":"1.0.0"},'
        '{"standard":"renown_snapshots","version":"1.0.0"}]}'
    )
