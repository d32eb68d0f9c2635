"""A finding's JSON evidence as HTML: the structure of :func:`renown.report.evidence_text`
(scalars as label and value, ``*_ns`` times as dates, nested records indented, lists of
records as tables, long lists cut), as a definition list with tables."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from api.pages.markup import Markup, el

__all__ = ["evidence_html"]

ROWS_SHOWN = 25  # rows of a list of records before "... and N more"
ITEMS_SHOWN = 30  # items of a list of scalars


def _label(key: str) -> str:
    return key.replace("_", " ")


def _when(ns: int) -> Markup:
    at = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return el("time", {"datetime": at.isoformat()}, at.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _scalar(key: str, value: Any) -> Markup | str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key.endswith("_ns"):
        return _when(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping | list):
        # A cell holding a structure: compact, readable, escaped by el().
        return el("code", None, _compact(value))
    return str(value)


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_compact(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _table(rows: list[Mapping[str, Any]]) -> Markup:
    shown = rows[:ROWS_SHOWN]
    columns = list(dict.fromkeys(k for r in shown for k in r))
    head = el("tr", None, *(el("th", {"scope": "col"}, _label(c)) for c in columns))
    body = [el("tr", None, *(el("td", None, _scalar(c, r.get(c))) for c in columns)) for r in shown]
    more = (
        el("p", {"class": "more"}, f"... and {len(rows) - len(shown)} more (GET /v1/flags/{{id}})")
        if len(rows) > len(shown)
        else None
    )
    return el(
        "div",
        {"class": "records"},
        el("table", None, el("thead", None, head), el("tbody", None, *body)),
        more,
    )


def evidence_html(evidence: Mapping[str, Any]) -> Markup:
    """The evidence, every value escaped."""
    items: list[Markup] = []
    for key, value in evidence.items():
        label = _label(key.removesuffix("_ns") if key.endswith("_ns") else key)
        if isinstance(value, Mapping):
            shown: Markup | str = evidence_html(value)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            label = f"{label} ({len(value)})"
            shown = _table(value)
        elif isinstance(value, list):
            more = len(value) - ITEMS_SHOWN
            text = ", ".join(_compact(v) for v in value[:ITEMS_SHOWN])
            shown = text + (f", ... and {more} more" if more > 0 else "")
            label = f"{label} ({len(value)})"
        else:
            shown = _scalar(key, value)
        items.append(el("dt", None, label))
        items.append(el("dd", {"data-key": key}, shown))
    return el("dl", {"class": "evidence"}, *items)
