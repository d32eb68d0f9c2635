"""Plain-text tables for the terminal: aligned columns, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    return "\n".join(lines)
