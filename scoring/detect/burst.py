"""Bursts: many new accounts acting on one target within a short window."""

from __future__ import annotations

import numpy as np

from scoring.detect.finding import NS_PER_S, Finding
from scoring.detect.inputs import DetectorInput
from scoring.events import ATTEST, ENDORSE, VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL
from scoring.evidence import KINDS, Evidence

__all__ = ["BURST", "bursts", "run"]

BURST = "burst"
#: What an account can do to another one in a few seconds: vote (on the account, its
#: content or its labels), endorse it, attest its content. Either sign: a brigade of
#: fresh downvoters is as much a burst as a crowd of fresh admirers.
_ACT_KINDS = tuple(
    KINDS.index(k) for k in (VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL, ENDORSE, ATTEST)
)
_KIND_NAMES = {KINDS.index(k): k for k in (VOTE_ACCOUNT, VOTE_CONTENT, VOTE_LABEL, ENDORSE, ATTEST)}
DAY_S = 86_400


def first_seen(evidence: Evidence) -> np.ndarray:
    """Per account, its earliest evidence row as actor or subject (``int64`` ns; the
    largest int64 for an account in no row): the fallback when the epoch did not load
    the accounts table's ``first_seen_ns``."""
    out = np.full(len(evidence.accounts), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, evidence.src.astype(np.int64), evidence.ts_ns)
    np.minimum.at(out, evidence.dst.astype(np.int64), evidence.ts_ns)
    return out


def _distinct_in_windows(actor: list[int], stop: list[int]) -> np.ndarray:
    """Distinct ``actor`` values in ``actor[i:stop[i]]`` for every ``i`` (``stop`` non-
    decreasing): one pass with a sliding multiset, linear in the episode's length."""
    held: dict[int, int] = {}
    out = np.empty(len(actor), dtype=np.int64)
    j = 0
    for i, end in enumerate(stop):
        while j < end:
            held[actor[j]] = held.get(actor[j], 0) + 1
            j += 1
        out[i] = len(held)
        left = held[actor[i]] - 1
        if left:
            held[actor[i]] = left
        else:
            del held[actor[i]]
    return out


def bursts(
    evidence: Evidence,
    first_seen_ns: np.ndarray | None = None,
    *,
    window_s: int = 3_600,
    min_actors: int = 8,
    max_age_s: int = 7 * DAY_S,
    settle_s: int = 2 * DAY_S,
    surge_z: float = 6.0,
    baseline_s: int = 3 * DAY_S,
) -> list[Finding]:
    """Targets on which at least ``min_actors`` new accounts act within ``window_s``.

    A crew of fresh accounts created to push (or sink) one account acts together: the
    accounts are days old and their acts on the target come within an hour. Honest
    attention to an account is spread over days and comes mostly from accounts that have
    been around; a new honest account does not arrive with ten others to vote for the
    same person in the same hour.

    The rule: an *act* is a vote (account, content or label; content resolved to its
    authors, as stored), an endorsement or an attestation, of either sign, from one
    account to another. An act is *new* when its actor was first seen at most
    ``max_age_s`` before it. Everyone is new when a platform starts, so an actor first
    seen within ``settle_s`` of the platform's first sighting (the earliest first-seen
    time) never counts as new. For each target, its new acts are cut into *episodes*
    wherever two successive ones are more than ``window_s`` apart; an episode is flagged
    when some window ``[s, s + window_s)`` starting at one of its acts holds acts from at
    least ``min_actors`` distinct new actors. One finding per flagged episode.

    Parameters
    ----------
    evidence : Evidence
        As stored (``storage.scoring_repo.load_evidence``).
    first_seen_ns : ndarray of int64, optional
        Per account of ``evidence.accounts``, when it first appeared on chain (the
        ``accounts`` table, ``storage.scoring_repo.load_first_seen``). When None, and
        for an entry of -1 (an account the table does not hold), the account's earliest
        evidence row, as actor or subject (:func:`first_seen`).
    window_s : int, default 3600
        Window length in seconds: the simulated crews act within an hour.
    min_actors : int, default 8
        Distinct new actors in one window. In the simulated worlds (``small`` and
        ``default``, every scenario, seeds 1-3 or 1-10) honest accounts bring one target
        at most 5 distinct new actors in an hour, the sybil region (its content votes)
        at most 7; the simulated crews bring 10 to 20.
    max_age_s : int, default 604800 (7 days)
        How old an actor may be and still be new; the simulated crews appear at most
        3 days before acting.
    settle_s : int, default 172800 (2 days)
        Accounts first seen within this time of the platform's start are never new.
        In the simulated worlds most honest accounts appear in the first two days.
    surge_z : float, default 6
        A window must also stand out from the target's own stream of new actors around
        it: with ``lam`` the distinct new actors acting on the target within
        ``baseline_s`` before and after the window (the window's own actors left out),
        per window length, the threshold is ``max(min_actors, lam + surge_z *
        sqrt(lam))``, six Poisson standard deviations. Without it a popular account,
        which draws first-time voters all day (most of all while the platform grows), is
        a "burst" every busy hour: 112 false findings on the 1M-account synthetic epoch
        of bench/detect_cost.py. A quiet target's threshold stays ``min_actors``.
    baseline_s : int, default 259200 (3 days)
        How far before and after a window its target's usual stream is measured: local,
        so a growth phase is compared with itself, not with a quiet year.

    Returns
    -------
    list of Finding
        Highest severity first. ``accounts`` are the new actors of the episode's flagged
        windows (the target is in the evidence: it gains or loses, it is not
        necessarily a culprit). Severity: ``min(1, n / (3 * min_actors))``, ``n`` the
        distinct new actors of the densest window. Identity: the target and the time of
        the episode's first new act, which later evidence cannot move (evidence arrives
        in time order: a later epoch only adds acts after it).

    Notes
    -----
    Cost: one sort of the acts, O(m log m), and one linear pass over each episode that
    reaches ``min_actors`` distinct actors at all.
    """
    if window_s <= 0 or min_actors < 2 or max_age_s <= 0 or settle_s < 0:
        raise ValueError(
            "window_s > 0, min_actors >= 2, max_age_s > 0 and settle_s >= 0 are required"
        )
    if surge_z < 0 or baseline_s < window_s:
        raise ValueError("surge_z >= 0 and baseline_s >= window_s are required")
    n_acc = len(evidence.accounts)
    seen = first_seen(evidence)
    if first_seen_ns is not None:
        given = np.asarray(first_seen_ns, dtype=np.int64)
        if given.shape != (n_acc,):
            raise ValueError("first_seen_ns must have one entry per evidence account")
        seen = np.where(given >= 0, given, seen)  # -1: not in the accounts table
    if len(evidence) == 0 or n_acc == 0:
        return []
    platform_start = int(seen.min())
    acts = np.flatnonzero(
        np.isin(evidence.kind, _ACT_KINDS) & (evidence.value != 0) & (evidence.src != evidence.dst)
    )
    src = evidence.src[acts].astype(np.int64)
    ts = evidence.ts_ns[acts]
    born = seen[src]
    new = (ts - born <= max_age_s * NS_PER_S) & (born > platform_start + settle_s * NS_PER_S)
    acts = acts[new]
    if acts.size < min_actors:
        return []
    src = evidence.src[acts].astype(np.int64)
    dst = evidence.dst[acts].astype(np.int64)
    ts = evidence.ts_ns[acts]
    order = np.lexsort((src, ts, dst))
    acts, src, dst, ts = acts[order], src[order], dst[order], ts[order]
    window_ns = window_s * NS_PER_S
    gap = np.diff(ts) > window_ns
    starts = np.flatnonzero(np.r_[True, (dst[1:] != dst[:-1]) | gap])
    episode = np.cumsum(np.r_[True, (dst[1:] != dst[:-1]) | gap]) - 1
    # Only episodes with enough distinct actors overall can hold a burst.
    pairs = np.unique(episode * n_acc + src)
    actors_per_episode = np.bincount(pairs // n_acc, minlength=starts.size)
    ends = np.r_[starts[1:], acts.size]
    # Every target's new acts are contiguous (sorted by target, then time): its stream.
    t_lo = np.searchsorted(dst, dst[starts], side="left")
    t_hi = np.searchsorted(dst, dst[starts], side="right")
    baseline_ns = baseline_s * NS_PER_S

    def usual(e: int, i: int, stop_i: int) -> float:
        """Distinct new actors on the episode's target within ``baseline_s`` around the
        window ``[i, stop_i)`` of episode ``e``, outside it, per window length."""
        lo_t, hi_t = int(t_lo[e]), int(t_hi[e])
        w_lo, w_hi = int(starts[e]) + i, int(starts[e]) + stop_i
        a = lo_t + int(np.searchsorted(ts[lo_t:hi_t], ts[w_lo] - baseline_ns, side="left"))
        b = lo_t + int(np.searchsorted(ts[lo_t:hi_t], ts[w_lo] + window_ns + baseline_ns))
        around = np.setdiff1d(np.r_[src[a:w_lo], src[w_hi:b]], src[w_lo:w_hi])
        return around.size * window_ns / (2 * baseline_ns)

    names = evidence.accounts
    out: list[Finding] = []
    for e in np.flatnonzero(actors_per_episode >= min_actors).tolist():
        lo, hi = int(starts[e]), int(ends[e])
        t_e, s_e = ts[lo:hi], src[lo:hi]
        stop = np.searchsorted(t_e, t_e + window_ns, side="left")
        counts = _distinct_in_windows(s_e.tolist(), stop.tolist())
        candidates = np.flatnonzero(counts >= min_actors)
        lam_of = {i: usual(e, i, int(stop[i])) for i in candidates.tolist()}
        thr_of = {i: max(float(min_actors), v + surge_z * v**0.5) for i, v in lam_of.items()}
        hit = np.array([i for i in lam_of if counts[i] >= thr_of[i]], dtype=np.int64)
        if not hit.size:
            continue
        marked = np.zeros(hi - lo, dtype=bool)
        for i in hit.tolist():
            marked[i : stop[i]] = True
        rows = acts[lo:hi][marked]
        actor_idx = np.unique(s_e[marked])
        densest = int(hit[np.argmax(counts[hit])])
        lam, threshold = lam_of[densest], thr_of[densest]
        target = names[int(dst[lo])]
        actors = sorted(names[i] for i in actor_idx.tolist())
        kinds = evidence.kind[rows]
        values = evidence.value[rows]
        sev = round(min(1.0, int(counts[densest]) / (3 * min_actors)), 4)
        first_ns = int(t_e[0])
        out.append(
            Finding(
                kind=BURST,
                accounts=tuple(actors),
                severity=sev,
                evidence={
                    "target": target,
                    "actors": [
                        {
                            "account": names[i],
                            "first_seen_ns": int(seen[i]),
                            "age_s_at_first_act": int(
                                (int(t_e[marked][s_e[marked] == i].min()) - int(seen[i]))
                                // NS_PER_S
                            ),
                        }
                        for i in sorted(actor_idx.tolist(), key=lambda i: names[i])
                    ],
                    "new_actors": len(actors),
                    "densest_window_actors": int(counts[densest]),
                    "densest_window_start_ns": int(t_e[densest]),
                    "episode_start_ns": first_ns,
                    "acts": int(rows.size),
                    "acts_by_kind": {
                        _KIND_NAMES[k]: int((kinds == k).sum()) for k in sorted(set(kinds.tolist()))
                    },
                    "upvotes": int((values > 0).sum()),
                    "downvotes": int((values < 0).sum()),
                    "window_s": window_s,
                    "usual_new_actors_per_window": round(lam, 4),
                    "thresholds": {
                        "actors_in_window": round(threshold, 2),
                        "min_actors": min_actors,
                        "surge_z": surge_z,
                        "max_age_s": max_age_s,
                        "settle_s": settle_s,
                    },
                    "rule": f">= {min_actors} accounts at most {max_age_s / DAY_S:g} days old "
                    f"acting on one target within {window_s} s, {surge_z:g} sd above its "
                    "usual stream of new actors",
                },
                identity={"target": target, "episode_start_ns": first_ns},
                beneficiaries=(target,),
            )
        )
    out.sort(key=lambda f: (-f.severity, f.evidence["target"], f.identity["episode_start_ns"]))
    return out


def run(inp: DetectorInput) -> list[Finding]:
    """:func:`bursts` on one epoch's input (the accounts' first-seen times when loaded)."""
    return bursts(inp.evidence, inp.first_seen_ns)
