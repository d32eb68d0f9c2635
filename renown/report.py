"""Plain text for the terminal: aligned tables, explanations, flags and their evidence,
an account's history."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from scoring.explain import Explanation, Source, render
from scoring.model import AccountScore


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render dict rows as an aligned table (columns: the first row's keys by default)."""
    if not rows:
        return "(none)"
    cols = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c, "")) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    numeric = [all(_is_number(r[i]) for r in cells) for i in range(len(cols))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(cols), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%"))
    except ValueError:
        return False
    return True


def score_table(
    rows: Sequence[AccountScore], extra: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """Scores as a table; ``extra`` adds columns per account (column -> account -> text)."""
    extra = extra or {}
    return format_table(
        [
            {
                "rank": r.rank,
                "account": r.account,
                "score": f"{r.score:.1f}",
                "percentile": f"{r.percentile:.1f}",
                "trust": f"{r.trust:.3e}",
                **{col: values.get(r.account, "?") for col, values in extra.items()},
            }
            for r in rows
        ]
    )


def explain_text(row: AccountScore, *, epoch: int, accounts_in_domain: int) -> str:
    """A stored score with its explanation, for the contributor who asks "why?"."""
    head = (
        f"{row.account}, domain {row.domain}, epoch {epoch}: score {row.score:.1f} "
        f"(rank {row.rank} of {accounts_in_domain}, percentile {row.percentile:.1f}, "
        f"trust {row.trust:.3e})"
    )
    data = row.explanation
    if data is None:
        return head + "\n(no explanation stored for this epoch: it predates explanations)"
    expl = Explanation(
        account=row.account,
        domain=row.domain,
        trust=row.trust,
        seed_share=float(data["seed_share"]),
        sources=tuple(Source(s["account"], float(s["share"]), ()) for s in data["sources"]),
        kinds=tuple(sorted(data["kinds"].items(), key=lambda kv: -kv[1])),
        n_sources=int(data["n_sources"]),
        confidence=row.confidence,
    )
    lines = [head, "", render(expl)]
    taken = float(data.get("distrust_share", 0.0))
    if taken > 0:
        lines.append(
            f"Distrust (downvotes, rejected reviews, disputes from trusted accounts) took "
            f"away {100 * taken:.0f}% of the trust above."
        )
    group = data.get("closed_group")
    if group:
        lines.append(
            f"Closed group: this account is one of {int(group['members'])} accounts that kept "
            f"{100 * float(group['retention']):.0f}% of their outgoing trust among themselves, "
            "so what they give each other does not count; only trust from outside the group "
            "does. Vouching for accounts outside the group lifts this (docs/scoring.md)."
        )
    for s in data.get("sanctions", []):
        kept = float(s.get("score_factor", 1.0))
        lines.append(
            f"Moderation: flag #{s['flag']} ({s['kind']}) is confirmed against this account "
            f"({s['reason']}): it passes on {100 * float(s['trust_factor']):.0f}% of its trust"
            + (f", keeps {100 * kept:.0f}% of its own" if kept < 1 else "")
            + (", its labels do not count" if float(s["label_factor"]) == 0 else "")
            + ". An appeal (renown flags appeal) is decided by another moderator."
        )
    return "\n".join(lines)


# --- moderation ------------------------------------------------------------------------

_LIST_SHOWN = 12  # items of a list shown before "... and N more"


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def evidence_text(evidence: Mapping[str, Any], indent: str = "  ") -> str:
    """A finding's JSON evidence as readable lines: scalars as ``key: value``, lists of
    records as small tables, ``*_ns`` timestamps as dates; long lists are cut."""
    lines: list[str] = []
    for key, value in evidence.items():
        label = key.replace("_", " ")
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_ns"):
            lines.append(f"{indent}{label[:-3]}: {_when(value)}")
        elif isinstance(value, Mapping):
            lines.append(f"{indent}{label}:")
            lines.append(evidence_text(value, indent + "  "))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            shown = value[:_LIST_SHOWN]
            lines.append(f"{indent}{label} ({len(value)}):")
            table = format_table([{k: _flat(v) for k, v in row.items()} for row in shown])
            lines.extend(indent + "  " + t for t in table.splitlines())
            if len(value) > len(shown):
                lines.append(f"{indent}  ... and {len(value) - len(shown)} more")
        elif isinstance(value, list):
            more = f", ... and {len(value) - _LIST_SHOWN} more" if len(value) > _LIST_SHOWN else ""
            items = ", ".join(_flat(v) for v in value[:_LIST_SHOWN])
            lines.append(f"{indent}{label} ({len(value)}): {items}{more}")
        else:
            lines.append(f"{indent}{label}: {_flat(value)}")
    return "\n".join(lines)


def _flat(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"))
    return "-" if value is None else str(value)


def flag_table(views: Sequence[Any]) -> str:
    """The moderation queue: one line per flag (``moderation.service.FlagView``)."""
    return format_table(
        [
            {
                "flag": v.id,
                "kind": v.kind,
                "status": v.status,
                "severity": f"{v.severity:.2f}",
                "accounts": _accounts_cell(v.flagged),
                "raised": f"epoch {v.raised_epoch}" if v.raised_epoch else f"by {v.raised_by}",
                "summary": v.summary if len(v.summary) <= 60 else v.summary[:57] + "...",
            }
            for v in views
        ]
    )


def _accounts_cell(names: Sequence[str]) -> str:
    return ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")


def flag_text(v: Any) -> str:
    """One flag on one screen: state, accounts, evidence, appeal and audit trail."""
    lines = [
        f"flag #{v.id}: {v.kind}, {v.status}, severity {v.severity:.2f}",
        f"  {v.summary}",
        f"flagged ({len(v.flagged)}): {', '.join(v.flagged) or '-'}",
    ]
    if v.beneficiaries:
        lines.append(f"gained from it (not sanctioned): {', '.join(v.beneficiaries)}")
    raised = f"raised by {v.raised_by} at {_iso(v.raised_at)}"
    if v.raised_epoch is not None:
        raised += f" (epoch {v.raised_epoch}, last found in epoch {v.last_seen_epoch})"
    lines.append(raised)
    if v.decided_by:
        lines.append(f"decided by {v.decided_by} at {_iso(v.decided_at)}: {v.decision_reason}")
    if v.trust_factor is not None:
        kept = 1.0 if v.score_factor is None else v.score_factor
        lines.append(
            f"effect while confirmed: outgoing trust x{v.trust_factor:g}, "
            f"label weight x{v.label_factor:g}, own score x{kept:g} "
            "(from the next epoch)"
        )
    lines += ["", "evidence:", evidence_text(v.evidence)]
    if v.appeal:
        ap = v.appeal
        lines += ["", f"appeal: {ap['status']}, filed {ap['filed_at']}: {ap['statement']}"]
        if ap["decided_by"]:
            lines.append(f"  decided by {ap['decided_by']} at {ap['decided_at']}: {ap['reason']}")
    if v.audit:
        lines += ["", "audit log:"]
        for e in v.audit:
            was = f"{e['from']} -> " if e["from"] else ""
            lines.append(
                f"  {e['at']}  {e['actor']}: {e['action']} ({was}{e['to']}): {e['reason']}"
            )
    return "\n".join(lines)


def _iso(at: Any) -> str:
    if at is None:
        return "-"
    if isinstance(at, datetime):
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(at)


def _event_line(e: Any) -> str:
    """A moderation event as the contributor reads it in their history."""
    who = ", ".join(e.flagged[:3]) + (
        f" and {len(e.flagged) - 3} more" if len(e.flagged) > 3 else ""
    )
    share = "" if e.share is None else f" ({100 * e.share:.0f}% of its trust)"
    what = {
        "sanction": f"sanction: flag #{e.flag_id} ({e.kind}) on this account confirmed "
        f"by {e.actor}",
        "reversal": (
            f"reversal: the sanction of flag #{e.flag_id} ({e.kind}) lifted on appeal by {e.actor}"
            if e.role == "flagged"
            else f"reversal: what {who} gave this account{share} no longer counts "
            f"(flag #{e.flag_id}, {e.kind}, confirmed by {e.actor})"
        ),
        "restored": f"restored: what {who} gave{share} counts again (appeal on flag "
        f"#{e.flag_id} upheld by {e.actor})",
    }.get(e.meaning or "", f"flag #{e.flag_id} ({e.kind}): {e.action} by {e.actor}")
    return f"{what}: {e.reason}"


def history_text(account: str, domain: str, entries: Sequence[Any], pending: Sequence[Any]) -> str:
    """An account's scores across epochs, each change next to the decisions behind it."""
    rows = []
    notes: list[str] = []
    for h in entries:
        marks = [e for e in h.events if e.action != "raise" or e.role == "flagged"]
        rows.append(
            {
                "epoch": h.epoch,
                "score": "-" if h.score is None else f"{h.score:.1f}",
                "rank": "-" if h.rank is None else h.rank,
                "percentile": "-" if h.percentile is None else f"{h.percentile:.1f}",
                "change": "" if h.change is None else f"{round(h.change, 1) + 0.0:+.1f}",
                "moderation": ", ".join(f"[{len(notes) + i + 1}]" for i in range(len(marks))),
            }
        )
        notes.extend(f"[{len(notes) + 1}] epoch {h.epoch}: {_event_line(e)}" for e in marks)
    out = [f"history of {account}, domain {domain}", format_table(rows)]
    if notes:
        out += ["", *notes]
    if pending:
        out += ["", "decided since the latest epoch (takes effect in the next one):"]
        out += [f"  {_event_line(e)}" for e in pending]
    return "\n".join(out)
