"""The score scale: trust to a 0-100 score, ranks and percentiles; the global domain name.

Kept apart from :mod:`scoring.model` so that the modules the model uses (explanations,
label quality) can share these definitions without importing the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GLOBAL_DOMAIN = "global"
"""Domain name of the all-domains score; reserved, so no edge domain may use it."""

SCORE_DECADES = 4.0
"""Half-width, in powers of ten around the uniform share, of the score scale."""


def trust_to_score(trust: np.ndarray, n: int | None = None) -> np.ndarray:
    """Map trust to a 0-100 score on a log scale centred on the uniform share.

    .. math::

        \\mathrm{score} = \\mathrm{clip}\\left(50 + \\frac{50}{4}
            \\log_{10}(n \\cdot \\mathrm{trust}),\\ 0,\\ 100\\right)

    An account holding exactly the average share ``1/n`` scores 50; each
    factor of ten above or below it moves the score by 12.5 points; 10^4 times
    the average or more is 100, 10^-4 times or less (including zero trust,
    i.e. unreachable from the seeds) is 0.

    Why this scale: trust is heavy-tailed (a few hubs hold orders of magnitude
    more than the median), so a linear scale would put almost everyone at 0.
    Anchoring on ``1/n`` rather than on the maximum keeps scores comparable
    across domains of different sizes and stable when one hub or the number of
    seeds changes. Eight decades cover what was measured on a synthetic
    100k-account power-law graph (docs/scoring.md) without saturating: the
    median non-seed account sat near 33, the 99th percentile near 64, the
    seeds near 77 and nobody at 100. Below ``10^-4 / n`` trust is also close
    to what the default tolerance resolves at a million accounts.

    Parameters
    ----------
    trust : numpy.ndarray of float
        Trust of the domain's accounts.
    n : int, optional
        Number of accounts in the domain; defaults to ``len(trust)``.

    Returns
    -------
    numpy.ndarray of float64
        Scores in ``[0, 100]``, non-decreasing in trust.

    Examples
    --------
    >>> np.round(trust_to_score(np.array([0.25, 0.25, 0.5, 0.0])), 2).tolist()
    [50.0, 50.0, 53.76, 0.0]
    """
    t = np.asarray(trust, dtype=np.float64)
    count = t.size if n is None else n
    with np.errstate(divide="ignore"):
        decades = np.log10(t * count)
    score = 50.0 + (50.0 / SCORE_DECADES) * decades
    return np.clip(np.nan_to_num(score, nan=0.0, neginf=0.0), 0.0, 100.0)


def ranks(trust: np.ndarray, accounts: Sequence[str]) -> np.ndarray:
    """Ordinal ranks, 1 = highest trust, ties broken by account id ascending.

    Deterministic: the same trust and ids always give the same ranks, however
    the accounts were ordered on input.

    Examples
    --------
    >>> ranks(np.array([0.2, 0.5, 0.2]), ["c", "a", "b"]).tolist()
    [3, 1, 2]
    """
    t = np.asarray(trust, dtype=np.float64)
    ids = np.asarray(accounts, dtype=str)
    order = np.lexsort((ids, -t))  # last key is primary
    out = np.empty(t.size, dtype=np.int64)
    out[order] = np.arange(1, t.size + 1)
    return out


def percentiles(trust: np.ndarray) -> np.ndarray:
    """100 times the share of accounts whose trust is ``<=`` each account's.

    The top account gets 100; tied accounts share a percentile.

    Examples
    --------
    >>> percentiles(np.array([0.2, 0.5, 0.2, 0.1])).tolist()
    [75.0, 100.0, 75.0, 25.0]
    """
    t = np.asarray(trust, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, dtype=np.float64)
    at_or_below = np.searchsorted(np.sort(t), t, side="right")
    return 100.0 * at_or_below / t.size
