"""Inline SVG drawn on the server: an account's score over epochs, and the accounts of a flag.

Why SVG from Python: no chart library and no build step; the page works without its
script, and the figures are in the markup (``data-epoch`` and ``data-score`` on each
point), so a test or a reader can check the picture against the history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from api.pages.markup import Markup, el, join
from storage.history_repo import HistoryEntry, ModerationEvent

__all__ = ["Edge", "account_graph", "chart_marks", "evidence_edges", "score_chart"]

# --- the score over epochs --------------------------------------------------------------

CHART_W, CHART_H = 720, 240
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 44, 16, 22, 30


def chart_marks(entry: HistoryEntry) -> list[ModerationEvent]:
    """The events of an epoch worth a marker: decisions (not a detector merely raising a
    flag about someone else), as ``renown history`` numbers them."""
    return [e for e in entry.events if e.action != "raise" or e.role == "flagged"]


def _y_axis(scores: Sequence[float]) -> tuple[float, float, float]:
    """(bottom, top, tick step) of the score axis: round ticks, at least 10 points of
    score shown (a change of 0.1 does not fill the chart), within 0-100."""
    low, high = min(scores), max(scores)
    for step in (2.0, 5.0, 10.0, 20.0, 25.0):
        lo = max(0.0, math.floor((low - step / 4) / step) * step)
        hi = min(100.0, math.ceil((high + step / 4) / step) * step)
        while hi - lo < 10:
            if lo > 0:
                lo -= step
            if hi - lo < 10 and hi < 100:
                hi += step
        if (hi - lo) / step <= 6:
            return lo, hi, step
    return 0.0, 100.0, 25.0


def score_chart(
    entries: Sequence[HistoryEntry],
    describe: Callable[[ModerationEvent], str],
    *,
    account: str,
    domain: str,
) -> Markup:
    """The score at each epoch (a point per epoch with a score; a gap where it had none),
    and a marker at each epoch where a moderation decision took effect.

    ``describe(event) -> str`` words an event for the marker's tooltip."""
    scored = [e.score for e in entries if e.score is not None]
    n = len(entries)
    title = f"Score of {account} in {domain} over {n} epoch{'s' if n != 1 else ''}"
    if not scored:
        return el(
            "svg",
            {
                "class": "chart empty",
                "viewBox": f"0 0 {CHART_W} 60",
                "role": "img",
                "aria-label": title,
                "data-points": 0,
            },
            el(
                "text",
                {"x": CHART_W / 2, "y": 34, "text-anchor": "middle"},
                "no score in this domain yet",
            ),
        )
    lo, hi, tick = _y_axis(scored)
    plot_w, plot_h = CHART_W - _PAD_L - _PAD_R, CHART_H - _PAD_T - _PAD_B

    def x(i: int) -> float:
        return _PAD_L + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y(score: float) -> float:
        return _PAD_T + plot_h * (1 - (score - lo) / (hi - lo))

    grid: list[Markup] = []
    for k in range(round((hi - lo) / tick) + 1):
        v = lo + k * tick
        grid.append(el("line", {"x1": _PAD_L, "x2": CHART_W - _PAD_R, "y1": y(v), "y2": y(v)}))
        grid.append(
            el(
                "text",
                {"x": _PAD_L - 6, "y": y(v) + 4, "text-anchor": "end"},
                f"{v:.1f}".removesuffix(".0"),
            )
        )
    step = max(1, math.ceil(n / 12))  # at most ~12 epoch labels
    xlabels = [
        el("text", {"x": x(i), "y": CHART_H - 10, "text-anchor": "middle"}, str(h.epoch))
        for i, h in enumerate(entries)
        if i % step == 0 or i == n - 1
    ]
    marks: list[Markup] = []
    for i, h in enumerate(entries):
        events = chart_marks(h)
        if not events:
            continue
        kinds = sorted({e.meaning or e.action for e in events})
        tip = "\n".join(f"epoch {h.epoch}: {describe(e)}" for e in events)
        marks.append(
            el(
                "g",
                {
                    "class": "mark " + " ".join(f"mark-{k}" for k in kinds),
                    "data-epoch": h.epoch,
                    "data-flags": ",".join(dict.fromkeys(str(e.flag_id) for e in events)),
                },
                el("title", None, tip),
                el("line", {"x1": x(i), "x2": x(i), "y1": _PAD_T, "y2": _PAD_T + plot_h}),
                el("path", {"d": f"M{x(i) - 6:.1f},{_PAD_T - 12:.1f} h12 l-6,9 z"}),
            )
        )
    lines: list[Markup] = []
    run: list[str] = []
    for i, score in enumerate([*(h.score for h in entries), None]):
        if score is not None:
            run.append(f"{x(i):.1f},{y(score):.1f}")
            continue
        if len(run) > 1:
            lines.append(el("polyline", {"class": "line", "points": " ".join(run)}))
        run = []
    points = [
        el(
            "circle",
            {
                "class": "pt",
                "cx": x(i),
                "cy": y(h.score),
                "r": 4,
                "data-epoch": h.epoch,
                "data-score": h.score,
                "data-rank": h.rank,
            },
            el(
                "title",
                None,
                f"epoch {h.epoch}: score {h.score:.1f}, rank {h.rank}"
                + ("" if h.change is None else f", change {h.change:+.1f}"),
            ),
        )
        for i, h in enumerate(entries)
        if h.score is not None
    ]
    return el(
        "svg",
        {
            "class": "chart",
            "viewBox": f"0 0 {CHART_W} {CHART_H}",
            "role": "img",
            "aria-label": title,
            "data-points": len(points),
            "data-domain": domain,
        },
        el("title", None, title),
        el("g", {"class": "grid"}, *grid),
        el("g", {"class": "axis-x"}, *xlabels),
        el("g", {"class": "marks"}, *marks),
        *lines,
        el("g", {"class": "points"}, *points),
    )


# --- the accounts of a flag -------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """A directed link the evidence lists: who gave what to whom."""

    src: str
    dst: str
    label: str  # e.g. "54 votes", "weight 0.31", "attack edge"
    weight: float | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def evidence_edges(evidence: Mapping[str, Any]) -> list[Edge]:
    """The links a finding's evidence names, whatever the detector:

    * ``voter`` -> ``target`` (serial voting, with ``votes``);
    * each of ``actors`` (records with ``account``) -> ``target`` (bursts of new accounts);
    * every list of records with ``from`` and ``to`` (``heaviest_internal_edges`` of a
      vote ring, ``attack_edges`` of a sybil cluster, and any future list of that shape),
      labelled by the list's name and the record's ``weight`` when it has one.
    """
    edges: list[Edge] = []
    voter, target = evidence.get("voter"), evidence.get("target")
    if isinstance(voter, str) and isinstance(target, str):
        votes = _number(evidence.get("votes"))
        label = f"{votes:.0f} upvotes" if votes is not None else "upvotes"
        edges.append(Edge(voter, target, label, votes))
    actors = evidence.get("actors")
    if isinstance(target, str) and isinstance(actors, list):
        for a in actors:
            if isinstance(a, Mapping) and isinstance(a.get("account"), str):
                edges.append(Edge(a["account"], target, "acted on the target"))
    for key, value in evidence.items():
        if not isinstance(value, list):
            continue
        for rec in value:
            if not isinstance(rec, Mapping):
                continue
            src, dst = rec.get("from"), rec.get("to")
            if isinstance(src, str) and isinstance(dst, str):
                w = _number(rec.get("weight"))
                name = key.replace("_", " ").removesuffix("s")
                label = name if w is None else f"{name}, weight {w:.3g}"
                edges.append(Edge(src, dst, label, w))
    return edges


GRAPH_W, GRAPH_H = 640, 440
MAX_NODES = 40
_NODE_R = 9


def _short(name: str, width: int = 20) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def account_graph(
    flagged: Sequence[str],
    beneficiaries: Sequence[str],
    edges: Sequence[Edge],
    *,
    max_nodes: int = MAX_NODES,
    link: Callable[[str], str] | None = None,
) -> Markup:
    """The flag's accounts on a circle (a hub that most edges touch, such as the target of
    a burst, in the middle) and the evidence's edges between them as arrows.

    Flagged accounts first, then the beneficiaries, then the other accounts the edges
    name; past ``max_nodes`` the rest are left out (the caption says how many).
    ``link(account) -> str`` makes each node a link (to the account's standing page)."""
    role: dict[str, str] = {}
    for name in flagged:
        role.setdefault(name, "flagged")
    for name in beneficiaries:
        role.setdefault(name, "beneficiary")
    for e in edges:
        role.setdefault(e.src, "other")
        role.setdefault(e.dst, "other")
    names = list(role)
    shown = names[:max_nodes]
    drawn = set(shown)
    merged: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        if e.src in drawn and e.dst in drawn and e.src != e.dst:
            merged.setdefault((e.src, e.dst), []).append(e)
    degree = dict.fromkeys(shown, 0)
    for s, d in merged:
        degree[s] += 1
        degree[d] += 1
    hub = max(shown, key=lambda a: degree[a]) if shown else None
    if hub is None or len(shown) < 4 or degree[hub] < max(3, 0.6 * len(merged)):
        hub = None
    ring = [a for a in shown if a != hub]
    cx, cy = GRAPH_W / 2, GRAPH_H / 2
    radius = min(GRAPH_W, GRAPH_H) / 2 - 70
    pos: dict[str, tuple[float, float]] = {}
    if hub is not None:
        pos[hub] = (cx, cy)
    if len(ring) == 1:
        pos[ring[0]] = (cx, cy) if hub is None else (cx, cy - radius)
    else:
        for i, name in enumerate(ring):
            angle = -math.pi / 2 + 2 * math.pi * i / len(ring)
            pos[name] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    weights = [w for es in merged.values() for w in (e.weight for e in es) if w is not None]
    w_max = max(weights, default=0.0)

    lines: list[Markup] = []
    for (s, d), es in merged.items():
        (x1, y1), (x2, y2) = pos[s], pos[d]
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        # Both directions drawn: bend each to its own side so neither hides the other.
        bend = 14.0 if (d, s) in merged else 0.0
        sx, sy = x1 + ux * _NODE_R, y1 + uy * _NODE_R
        ex, ey = x2 - ux * (_NODE_R + 3), y2 - uy * (_NODE_R + 3)
        mx, my = (sx + ex) / 2 - uy * bend, (sy + ey) / 2 + ux * bend
        w = max((e.weight or 0.0 for e in es), default=0.0)
        width = 1.2 + (2.8 * w / w_max if w_max > 0 else 0.0)
        lines.append(
            el(
                "path",
                {
                    "class": "edge",
                    "d": f"M{sx:.1f},{sy:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}",
                    "stroke-width": round(width, 2),
                    "marker-end": "url(#arrow)",
                    "data-from": s,
                    "data-to": d,
                },
                el("title", None, f"{s} → {d}: " + "; ".join(dict.fromkeys(e.label for e in es))),
            )
        )
    nodes: list[Markup] = []
    for name in shown:
        x, y = pos[name]
        dx, dy = x - cx, y - cy
        if name == hub or (abs(dx) < 1 and abs(dy) < 1):
            tx, ty, anchor = x, y - _NODE_R - 6, "middle"
        else:
            dist = math.hypot(dx, dy)
            tx, ty = x + dx / dist * (_NODE_R + 6), y + dy / dist * (_NODE_R + 6) + 4
            anchor = "start" if dx > 1 else "end" if dx < -1 else "middle"
        node = join(
            [
                el("title", None, f"{name} ({role[name]})"),
                el("circle", {"class": f"node node-{role[name]}", "cx": x, "cy": y, "r": _NODE_R}),
                el("text", {"x": tx, "y": ty, "text-anchor": anchor}, _short(name)),
            ]
        )
        attrs: dict[str, object] = {
            "class": "account",
            "data-account": name,
            "data-role": role[name],
        }
        if link is not None:
            nodes.append(el("a", {**attrs, "href": link(name)}, node))
        else:
            nodes.append(el("g", attrs, node))
    left_out = len(names) - len(shown)
    caption = f"{len(shown)} accounts and {len(merged)} links from the evidence" + (
        f"; {left_out} more accounts not drawn" if left_out else ""
    )
    defs = Markup(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="arrowhead"></path></marker></defs>'
    )
    return el(
        "svg",
        {
            "class": "graph",
            "viewBox": f"0 0 {GRAPH_W} {GRAPH_H}",
            "role": "img",
            "aria-label": caption,
            "data-nodes": len(shown),
            "data-edges": len(merged),
        },
        el("title", None, caption),
        defs,
        el("g", {"class": "edges"}, *lines),
        el("g", {"class": "nodes"}, *nodes),
    )
