"""Decode and validate one Kafka message of the public event interface (EVENTS.md).

The decoder is the only place that looks at untrusted bytes. It never raises on bad
input: every message ends as exactly one of

* :class:`Decoded`: a valid, known event log, one :class:`DecodedEvent` per datum;
* :class:`Skipped`: a valid envelope whose standard, event or major version we do not
  know. Producers may add standards before we do, so this is counted, not fatal;
* :class:`Malformed`: anything else, with a reason precise enough for the producer to
  fix their side (the field path and what was wrong). It goes to dead letters.

A message is the unit of acceptance: if any datum of a log is malformed the whole
message is a dead letter, so that a log is never half-applied.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scoring.events import (
    DEFAULT_DOMAIN,
    ChainContext,
    ContentAttested,
    ContentAuthored,
    ContentRetracted,
    DecodedEvent,
    Endorsed,
    Event,
    EventKey,
    GoldRevealed,
    LabelReviewed,
    LabelSubmitted,
    TaskPosted,
    VoteCast,
)

EVENT_PREFIX = "EVENT_JSON:"
RENOWN_STANDARD = "renown"
RENOWN_MAJOR = 1
NEP171_STANDARD = "nep171"
NEP171_MAJOR = 1

# NEAR's own account-id rule (nearcore `AccountId` validation). It also admits 64-hex
# implicit accounts and 0x-prefixed Ethereum-implicit ones.
# Patterns are ASCII-only and used with fullmatch: `\d` would admit Arabic-Indic digits and
# `$` a trailing newline, both of which NEAR rejects and storage would choke on.
_ACCOUNT_RE = re.compile(r"(?:[a-z0-9]+[-_])*[a-z0-9]+(?:\.(?:[a-z0-9]+[-_])*[a-z0-9]+)*", re.ASCII)
_DOMAIN_RE = re.compile(r"[a-z0-9:_-]{1,64}", re.ASCII)
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_SEMVER_RE = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)(?:[-+][0-9A-Za-z.+-]*)?", re.ASCII)
MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1
MAX_ID_LEN = 256
MAX_DATA_ITEMS = 1000


@dataclass(frozen=True, slots=True)
class Decoded:
    events: tuple[DecodedEvent, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str
    standard: str
    event: str


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: str


DecodeResult = Decoded | Skipped | Malformed


class _Invalid(Exception):
    """Internal: carries the reason of a validation failure up to ``decode_message``."""


def is_account_id(value: object) -> bool:
    """True when ``value`` is a valid NEAR account id (2 to 64 characters, NEAR's rule)."""
    return isinstance(value, str) and 2 <= len(value) <= 64 and bool(_ACCOUNT_RE.fullmatch(value))


def is_domain(value: object) -> bool:
    return isinstance(value, str) and bool(_DOMAIN_RE.fullmatch(value))


# --- field readers: each raises _Invalid with the field path --------------------------


def _get(obj: dict[str, Any], field: str, path: str) -> Any:
    if field not in obj or obj[field] is None:
        raise _Invalid(f"{path}.{field}: missing")
    return obj[field]


def _int(
    obj: dict[str, Any], field: str, path: str, *, minimum: int = 0, maximum: int = MAX_INT64
) -> int:
    value = _get(obj, field, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{path}.{field}: expected an integer, got {_show(value)}")
    if value < minimum:
        raise _Invalid(f"{path}.{field}: must be >= {minimum}, got {value}")
    if value > maximum:  # storage columns are 64-bit (32-bit for indices)
        raise _Invalid(f"{path}.{field}: must be <= {maximum}")
    return value


def _str(obj: dict[str, Any], field: str, path: str, *, max_len: int = MAX_ID_LEN) -> str:
    value = _get(obj, field, path)
    return _check_str(value, f"{path}.{field}", max_len=max_len)


def _check_str(value: Any, where: str, *, max_len: int = MAX_ID_LEN) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{where}: expected a string, got {_show(value)}")
    if not value:
        raise _Invalid(f"{where}: must not be empty")
    if len(value) > max_len:
        raise _Invalid(f"{where}: longer than {max_len} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL; no id or label needs it
        raise _Invalid(f"{where}: contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800-style JSON escape
            raise _Invalid(f"{where}: is not valid Unicode (lone surrogate)") from None
    return value


def _account(obj: dict[str, Any], field: str, path: str) -> str:
    value = _get(obj, field, path)
    return _check_account(value, f"{path}.{field}")


def _check_account(value: Any, where: str) -> str:
    if not is_account_id(value):
        raise _Invalid(f"{where}: {_show(value)} is not a valid NEAR account id")
    return value


def _domain(obj: dict[str, Any], path: str, *, default: str | None = DEFAULT_DOMAIN) -> Any:
    value = obj.get("domain")
    if value is None:
        return default
    if not is_domain(value):
        raise _Invalid(f"{path}.domain: {_show(value)} must match [a-z0-9:_-]{{1,64}}")
    return value


def _choice(obj: dict[str, Any], field: str, path: str, allowed: tuple[str, ...]) -> Any:
    value = _get(obj, field, path)
    if value not in allowed:
        raise _Invalid(f"{path}.{field}: expected one of {list(allowed)}, got {_show(value)}")
    return value


def _str_list(value: Any, where: str, *, accounts: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"{where}: expected a non-empty list, got {_show(value)}")
    if len(value) > MAX_DATA_ITEMS:
        raise _Invalid(f"{where}: more than {MAX_DATA_ITEMS} entries")
    check: Callable[[Any, str], str] = _check_account if accounts else _check_str
    items = [check(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(dict.fromkeys(items))  # drop repeats, keep order


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if _jsonable(value) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


# --- the `renown` standard ------------------------------------------------------------


def _task_posted(d: dict[str, Any], p: str) -> TaskPosted:
    labels = d.get("labels")
    return TaskPosted(
        task_id=_str(d, "task_id", p),
        poster=_account(d, "poster", p),
        domain=_domain(d, p),
        labels=None if labels is None else _str_list(labels, f"{p}.labels"),
    )


def _label_submitted(d: dict[str, Any], p: str) -> LabelSubmitted:
    return LabelSubmitted(
        task_id=_str(d, "task_id", p),
        item_id=_str(d, "item_id", p),
        labeler=_account(d, "labeler", p),
        label=_str(d, "label", p),
    )


def _label_reviewed(d: dict[str, Any], p: str) -> LabelReviewed:
    return LabelReviewed(
        task_id=_str(d, "task_id", p),
        item_id=_str(d, "item_id", p),
        labeler=_account(d, "labeler", p),
        reviewer=_account(d, "reviewer", p),
        verdict=_choice(d, "verdict", p, ("accept", "reject")),
    )


def _gold_revealed(d: dict[str, Any], p: str) -> GoldRevealed:
    gold = _get(d, "gold", p)
    if not isinstance(gold, dict) or not gold:
        raise _Invalid(f"{p}.gold: expected a non-empty object of item_id to label")
    if len(gold) > 100_000:
        raise _Invalid(f"{p}.gold: more than 100000 items")
    pairs = tuple(
        sorted(
            (_check_str(k, f"{p}.gold key"), _check_str(v, f"{p}.gold[{k!r}]"))
            for k, v in gold.items()
        )
    )
    return GoldRevealed(task_id=_str(d, "task_id", p), poster=_account(d, "poster", p), gold=pairs)


def _vote_cast(d: dict[str, Any], p: str) -> VoteCast:
    kind = _choice(d, "target_kind", p, ("account", "content", "label"))
    if kind == "account":
        target = _account(d, "target", p)
    else:
        # A content id is at most MAX_ID_LEN; a label target joins three ids.
        target = _str(d, "target", p, max_len=3 * MAX_ID_LEN if kind == "label" else MAX_ID_LEN)
        if kind == "label":
            parts = target.rsplit("/", 2)
            if len(parts) != 3 or not parts[0] or not parts[1]:
                raise _Invalid(f"{p}.target: a label target must be 'task_id/item_id/labeler'")
            _check_account(parts[2], f"{p}.target labeler")
    value = _get(d, "value", p)
    if isinstance(value, bool) or value not in (1, -1) or not isinstance(value, int):
        raise _Invalid(f"{p}.value: expected 1 or -1, got {_show(value)}")
    return VoteCast(
        voter=_account(d, "voter", p),
        target_kind=kind,
        target=target,
        value=value,
        domain=_domain(d, p, default=None),
    )


def _endorsed(d: dict[str, Any], p: str) -> Endorsed:
    weight = d.get("weight", 1.0)
    if weight is None:
        weight = 1.0
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise _Invalid(f"{p}.weight: expected a number in (0, 1], got {_show(weight)}")
    if not (math.isfinite(weight) and 0 < weight <= 1):
        raise _Invalid(f"{p}.weight: expected a number in (0, 1], got {weight}")
    return Endorsed(
        endorser=_account(d, "endorser", p),
        endorsee=_account(d, "endorsee", p),
        domain=_domain(d, p),
        weight=float(weight),
    )


def _content_authored(d: dict[str, Any], p: str) -> ContentAuthored:
    content_hash = _get(d, "content_hash", p)
    if not isinstance(content_hash, str) or not _HEX64_RE.fullmatch(content_hash):
        raise _Invalid(f"{p}.content_hash: expected 64 hex characters (sha256)")
    derived = d.get("derived_from")
    return ContentAuthored(
        content_id=_str(d, "content_id", p),
        authors=_str_list(_get(d, "authors", p), f"{p}.authors", accounts=True),
        content_hash=content_hash.lower(),
        derived_from=() if derived in (None, []) else _str_list(derived, f"{p}.derived_from"),
        domain=_domain(d, p),
    )


def _content_attested(d: dict[str, Any], p: str) -> ContentAttested:
    return ContentAttested(
        attester=_account(d, "attester", p),
        content_id=_str(d, "content_id", p),
        verdict=_choice(d, "verdict", p, ("authentic", "disputed")),
    )


def _content_retracted(d: dict[str, Any], p: str) -> ContentRetracted:
    return ContentRetracted(content_id=_str(d, "content_id", p), by=_account(d, "by", p))


_RENOWN: dict[str, Callable[[dict[str, Any], str], Event]] = {
    "task_posted": _task_posted,
    "label_submitted": _label_submitted,
    "label_reviewed": _label_reviewed,
    "gold_revealed": _gold_revealed,
    "vote_cast": _vote_cast,
    "endorsed": _endorsed,
    "content_authored": _content_authored,
    "content_attested": _content_attested,
    "content_retracted": _content_retracted,
}


# --- the envelope -----------------------------------------------------------------------


def _chain_context(msg: dict[str, Any]) -> ChainContext:
    p = "message"
    receipt_id = _str(msg, "receipt_id", p, max_len=128)
    return ChainContext(
        block_height=_int(msg, "block_height", p),
        block_timestamp_ns=_int(msg, "block_timestamp", p),
        receipt_id=receipt_id,
        log_index=_int(msg, "log_index", p, maximum=MAX_INT32),
        contract_id=_account(msg, "contract_id", p),
        predecessor_id=_account(msg, "predecessor_id", p),
    )


def _data_items(log: dict[str, Any]) -> list[dict[str, Any]]:
    data = log.get("data")
    if not isinstance(data, list) or not data:
        raise _Invalid("log.data: expected a non-empty list of objects")
    if len(data) > MAX_DATA_ITEMS:
        raise _Invalid(f"log.data: more than {MAX_DATA_ITEMS} items")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise _Invalid(f"log.data[{i}]: expected an object, got {_show(item)}")
    return data


def _decode(value: bytes) -> DecodeResult:
    try:
        # Decode strictly first: json.loads(bytes) would guess UTF-16/32 and let lone
        # surrogates through, and EVENTS.md says UTF-8.
        msg = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Invalid(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise _Invalid("message: expected a JSON object")
    chain = _chain_context(msg)
    raw_log = _get(msg, "log", "message")
    if not isinstance(raw_log, str) or not raw_log.startswith(EVENT_PREFIX):
        raise _Invalid(f"message.log: must start with {EVENT_PREFIX!r}")
    try:
        log = json.loads(raw_log[len(EVENT_PREFIX) :])
    except ValueError as exc:
        raise _Invalid(f"message.log: the EVENT_JSON payload is not JSON: {exc}") from None
    if not isinstance(log, dict):
        raise _Invalid("log: expected a JSON object")
    standard = _str(log, "standard", "log", max_len=64)
    version = _str(log, "version", "log", max_len=64)
    event = _str(log, "event", "log", max_len=64)
    semver = _SEMVER_RE.fullmatch(version)
    if not semver:
        raise _Invalid(f"log.version: {version!r} is not a semantic version")
    major = int(semver.group(1))

    if standard == RENOWN_STANDARD:
        if major != RENOWN_MAJOR:
            return Skipped(f"unsupported renown version {version}", standard, event)
        parse = _RENOWN.get(event)
        if parse is None:
            return Skipped(f"unknown renown event {event!r}", standard, event)
        items = _data_items(log)
        return Decoded(
            tuple(
                DecodedEvent(
                    EventKey(chain.receipt_id, chain.log_index, i),
                    chain,
                    standard,
                    version,
                    parse(item, f"data[{i}]"),
                )
                for i, item in enumerate(items)
            )
        )
    if standard == NEP171_STANDARD:
        if major != NEP171_MAJOR:
            return Skipped(f"unsupported nep171 version {version}", standard, event)
        if event != "nft_mint":
            return Skipped(f"nep171 event {event!r} carries no reputation meaning", standard, event)
        return Decoded(_nft_mint(chain, version, _data_items(log)))
    return Skipped(f"unknown standard {standard!r}", standard, event)


def _nft_mint(
    chain: ChainContext, version: str, items: list[dict[str, Any]]
) -> tuple[DecodedEvent, ...]:
    """NEP-171 ``nft_mint``: each token minted to ``owner_id`` is content authored by them."""
    out: list[DecodedEvent] = []
    for i, item in enumerate(items):
        p = f"data[{i}]"
        owner = _account(item, "owner_id", p)
        token_ids = _str_list(_get(item, "token_ids", p), f"{p}.token_ids")
        for part, token_id in enumerate(token_ids):
            if len(chain.contract_id) + 1 + len(token_id) > MAX_ID_LEN:
                raise _Invalid(
                    f"{p}.token_ids[{part}]: '<contract_id>:<token_id>' is longer than "
                    f"{MAX_ID_LEN} characters"
                )
            content = ContentAuthored(
                content_id=f"{chain.contract_id}:{token_id}",
                authors=(owner,),
                content_hash=None,
            )
            key = EventKey(chain.receipt_id, chain.log_index, i, part)
            out.append(DecodedEvent(key, chain, NEP171_STANDARD, version, content))
    return tuple(out)


def decode_message(value: bytes | None) -> DecodeResult:
    """Decode one Kafka message value; never raises on bad input.

    Parameters
    ----------
    value : bytes or None
        The raw message value (a tombstone ``None`` is malformed: the interface has none).

    Returns
    -------
    Decoded | Skipped | Malformed
    """
    if value is None:
        return Malformed("message: empty value (tombstone)")
    try:
        return _decode(value)
    except _Invalid as exc:
        return Malformed(str(exc))
    except RecursionError:
        return Malformed("message: JSON nested too deeply")


# The field of a data item that names the account acting, per event (EVENTS.md: the key).
_SUBJECT_FIELD = {
    "task_posted": "poster",
    "label_submitted": "labeler",
    "label_reviewed": "reviewer",
    "gold_revealed": "poster",
    "vote_cast": "voter",
    "endorsed": "endorser",
    "content_authored": "authors",
    "content_attested": "attester",
    "content_retracted": "by",
    "nft_mint": "owner_id",
}


def subject_of(log: str) -> str | None:
    """The subject account of an ``EVENT_JSON:`` log line (the Kafka key EVENTS.md asks
    for: the account acting in its first data item), or None when the line names none
    (another standard, a malformed log): the producer then keys by the predecessor.
    Never raises: a log ingest will dead-letter must still reach ingest."""
    if not log.startswith(EVENT_PREFIX):
        return None
    try:
        parsed = json.loads(log[len(EVENT_PREFIX) :])
        item = parsed["data"][0]
        value = item[_SUBJECT_FIELD[parsed["event"]]]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return None
    if isinstance(value, list):  # content_authored: the first author
        value = value[0] if value else None
    return value if is_account_id(value) else None
