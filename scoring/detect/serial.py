"""Serial voting: one voter's upvotes concentrated on one author within a window."""

from __future__ import annotations

import numpy as np

from scoring.detect.finding import NS_PER_S, Finding
from scoring.events import VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL
from scoring.evidence import KINDS, Evidence

__all__ = ["SERIAL_VOTING", "serial_voting"]

SERIAL_VOTING = "serial_voting"
_VOTE_KINDS = tuple(KINDS.index(k) for k in (VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL))


def serial_voting(
    evidence: Evidence,
    *,
    window_s: int = 86_400,
    min_votes: int = 10,
    min_share: float = 0.5,
) -> list[Finding]:
    """Voters whose upvotes concentrate on one author's account and items within a window.

    Stack Exchange reverses such votes daily; here they become findings. For every
    upvote (account, content or label vote, resolved to the author) from ``v`` to ``t``
    at time ``s``, count the upvotes from ``v`` to ``t`` in ``[s, s + window_s)`` and all
    of ``v``'s upvotes in that window; the pair is flagged when some window holds at least
    ``min_votes`` upvotes to ``t`` making at least ``min_share`` of ``v``'s upvotes there.
    One finding per (voter, target) pair, with its densest window.

    Parameters
    ----------
    evidence : Evidence
        As stored (``storage.scoring_repo.load_evidence``): content votes are already one
        row per author.
    window_s : int, default 86400
        Window length in seconds (a day, as Stack Exchange's daily script).
    min_votes : int, default 10
        Upvotes to one target in one window that are worth a look. Honest voters of the
        simulated marketplaces give one author at most 3 in a day.
    min_share : float, default 0.5
        Share of the voter's upvotes in that window going to that target: an active
        voter who also votes often for one prolific author stays below it.

    Returns
    -------
    list of Finding
        Sorted by severity, highest first; severity is
        ``min(1, n / (4 * min_votes))`` scaled by the share.

    Notes
    -----
    Cost: one sort of the upvotes and two binary searches per upvote, O(m log m).

    Examples
    --------
    >>> import numpy as np
    >>> from scoring.evidence import Evidence, KINDS
    >>> n = 12
    >>> ev = Evidence(["fan", "star"], ["general"], np.zeros(n, np.int32),
    ...               np.ones(n, np.int32), np.full(n, KINDS.index("vote_content"), np.int8),
    ...               np.ones(n, np.int8), np.ones(n), np.arange(n) * 60 * 10**9,
    ...               np.zeros(n, np.int32))
    >>> [(f.accounts, f.evidence["votes"]) for f in serial_voting(ev)]
    [(('fan',), 12)]
    """
    if window_s <= 0 or min_votes < 1 or not 0 < min_share <= 1:
        raise ValueError("window_s > 0, min_votes >= 1 and 0 < min_share <= 1 are required")
    up = np.flatnonzero(np.isin(evidence.kind, _VOTE_KINDS) & (evidence.value > 0))
    up = up[evidence.src[up] != evidence.dst[up]]
    if up.size < min_votes:
        return []
    src = evidence.src[up].astype(np.int64)
    dst = evidence.dst[up].astype(np.int64)
    ts = evidence.ts_ns[up] // NS_PER_S
    ts = ts - ts.min()
    stride = int(ts.max()) + window_s + 1  # keeps each group's keys apart
    n_acc = max(len(evidence.accounts), 1)

    def counts(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row (in the returned order), the rows of its group in its window."""
        order = np.lexsort((ts, group))
        key = group[order] * stride + ts[order]
        end = np.searchsorted(key, key + window_s, side="left")
        return order, end - np.arange(order.size)

    pair = src * n_acc + dst
    # Dense group numbers (< number of upvotes) keep ``group * stride + ts`` inside int64:
    # pair keys reach n_acc**2 (1e12 at 1M accounts) and times 3e7 s a year, whose product
    # overflowed and made millions of false findings (found by bench/detect_cost.py).
    _, pair_group = np.unique(pair, return_inverse=True)
    _, voter_group = np.unique(src, return_inverse=True)
    order_p, n_pair = counts(pair_group.astype(np.int64))
    order_v, n_voter = counts(voter_group.astype(np.int64))
    # The voter's count for the same window start, aligned to the pair ordering.
    voter_at = np.empty(up.size, dtype=np.int64)
    voter_at[order_v] = n_voter
    n_all = voter_at[order_p]
    share = n_pair / n_all
    hit = (n_pair >= min_votes) & (share >= min_share)
    if not hit.any():
        return []
    rows = order_p[hit]
    best: dict[int, tuple[int, float, int]] = {}
    for r, n, sh in zip(rows.tolist(), n_pair[hit].tolist(), share[hit].tolist(), strict=True):
        key_pair = int(pair[r])
        if key_pair not in best or n > best[key_pair][0]:
            best[key_pair] = (n, sh, r)
    names = evidence.accounts
    out: list[Finding] = []
    for key_pair, (n, sh, r) in best.items():
        voter, target = names[key_pair // n_acc], names[key_pair % n_acc]
        start_ns = int(evidence.ts_ns[up[r]])
        sev = round(min(1.0, n / (4 * min_votes)) * sh, 4)
        out.append(
            Finding(
                kind=SERIAL_VOTING,
                accounts=(voter,),
                severity=sev,
                evidence={
                    "voter": voter,
                    "target": target,
                    "votes": n,
                    "share_of_voters_votes": round(sh, 4),
                    "window_start_ns": start_ns,
                    "window_s": window_s,
                    "rule": f">= {min_votes} upvotes to one target in {window_s} s, "
                    f">= {min_share:.0%} of the voter's upvotes there",
                },
                identity={"voter": voter, "target": target},
                beneficiaries=(target,),
            )
        )
    out.sort(key=lambda f: (-f.severity, f.accounts))
    return out
