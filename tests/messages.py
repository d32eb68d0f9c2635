"""Builders of EVENTS.md messages for tests: valid by default, each field overridable."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

_receipts = count(1)


def log_line(
    event: str, data: list[dict[str, Any]], *, standard: str = "renown", version: str = "1.0.0"
) -> str:
    body = {"standard": standard, "version": version, "event": event, "data": data}
    return "EVENT_JSON:" + json.dumps(body)


def message(
    event: str,
    *data: dict[str, Any],
    receipt_id: str | None = None,
    log_index: int = 0,
    block_height: int = 100,
    block_timestamp: int = 1_764_000_000_000_000_000,
    contract_id: str = "labels.market.near",
    predecessor_id: str = "alice.near",
    standard: str = "renown",
    version: str = "1.0.0",
    **overrides: Any,
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "block_height": block_height,
        "block_timestamp": block_timestamp,
        "receipt_id": receipt_id or f"R{next(_receipts):08d}",
        "log_index": log_index,
        "contract_id": contract_id,
        "predecessor_id": predecessor_id,
        "log": log_line(event, list(data), standard=standard, version=version),
    }
    msg.update(overrides)
    return msg


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg).encode()


def vote(
    voter: str, target: str, value: int = 1, kind: str = "account", **kw: Any
) -> dict[str, Any]:
    return message(
        "vote_cast", {"voter": voter, "target_kind": kind, "target": target, "value": value}, **kw
    )


def endorse(endorser: str, endorsee: str, **kw: Any) -> dict[str, Any]:
    return message("endorsed", {"endorser": endorser, "endorsee": endorsee}, **kw)
