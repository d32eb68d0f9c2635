"""Distrust: negative evidence applied after propagation, weighted by who cast it.

Why apart from trust, and why after: summing a downvote into the trust matrix as a
negative weight breaks the random-walk reading of propagation (negative probabilities)
and lets an attacker's *distrust* travel as far as trust does. Propagating distrust
through distrust ("the enemy of my enemy") is worse still (Guha et al. 2004 found
multi-step distrust unreliable). So Renown propagates trust only, then applies distrust
one step, from each distruster's trust:

.. math::

    D_i = \\sum_j t_j \\frac{n_{ji}}{W_j}, \\qquad t'_i = \\max(0,\\; t_i - \\beta D_i)

where :math:`t` is the propagated trust, :math:`n_{ji}` the (decayed, kind-weighted)
negative weight from :math:`j` to :math:`i`, and :math:`W_j` all of :math:`j`'s outgoing
weight, positive and negative. Consequences, each of them intended:

* a distrust from an account with zero trust counts for nothing (sybils cannot
  downvote honest accounts out of the ranking);
* an account can take away at most its own trust mass, spread over everyone it rates,
  so downvoting many accounts dilutes each downvote exactly as upvoting many dilutes
  each upvote;
* :math:`t'` is not renormalised: distrust removes mass instead of handing it to
  everybody else.
"""

from __future__ import annotations

import numpy as np


def distrust_mass(
    trust: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    out_weight: np.ndarray,
) -> np.ndarray:
    """Distrust received by each account, :math:`D_i = \\sum_j t_j n_{ji} / W_j`.

    Parameters
    ----------
    trust : ndarray of float, shape (n,)
        Propagated trust.
    src, dst : ndarray of int
        Distruster and distrusted account index per negative edge.
    weight : ndarray of float
        Negative weight per edge, > 0.
    out_weight : ndarray of float, shape (n,)
        Each account's total outgoing weight, positive and negative edges together. It
        must be at least the account's negative out-weight.

    Returns
    -------
    ndarray of float, shape (n,)
    """
    n = trust.shape[0]
    if src.size == 0:
        return np.zeros(n, dtype=np.float64)
    denom = out_weight[src]
    if np.any(denom <= 0):
        raise ValueError("out_weight must be positive for every distruster")
    flow = trust[src] * (weight / denom)
    return np.bincount(dst, weights=flow, minlength=n).astype(np.float64, copy=False)


def apply_distrust(
    trust: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    out_weight: np.ndarray,
    *,
    beta: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Trust after distrust, and the distrust each account received.

    Parameters
    ----------
    trust, src, dst, weight, out_weight
        As in :func:`distrust_mass`.
    beta : float
        How much of a distruster's weighted trust is taken from the distrusted account;
        1 (the default) means a trusted account's only, full-weight downvote removes as
        much trust as that account holds. 0 turns distrust off.

    Returns
    -------
    adjusted : ndarray
        :math:`\\max(0, t_i - \\beta D_i)`.
    received : ndarray
        :math:`D_i`, reported so that an explanation can show what was taken away.

    Examples
    --------
    >>> t = np.array([0.5, 0.3, 0.2])
    >>> adj, d = apply_distrust(t, np.array([0]), np.array([2]), np.array([1.0]),
    ...                         np.array([4.0, 1.0, 1.0]))
    >>> d.tolist(), adj.tolist()
    ([0.0, 0.0, 0.125], [0.5, 0.3, 0.07500000000000001])
    """
    if beta < 0:
        raise ValueError("beta must be >= 0")
    received = distrust_mass(trust, src, dst, weight, out_weight)
    return np.maximum(trust - beta * received, 0.0), received
