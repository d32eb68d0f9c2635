"""The edge table: the trust graph as storage hands it to scoring.

Why a table of parallel arrays rather than a networkx graph: the scoring epoch
runs on up to ~10M edges, where a networkx ``DiGraph`` costs gigabytes and
minutes to build (DESIGN.md section 6), while four numpy arrays cost 18 bytes
per edge and go straight into a ``scipy.sparse`` matrix. networkx stays the
modelling and reference layer: :meth:`EdgeTable.to_networkx` gives the same
graph as a ``DiGraph`` for small cases, tests and exploration.

Weights in the table are *final*: decay with age, per-kind weights and label
quality are applied by whoever builds the table (the next issue), so the
propagation and the model never second-guess them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np

__all__ = ["EdgeTable", "compact_index"]


def compact_index(n: int, *indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the accounts that appear in ``indices`` as 0..k-1, in index order.

    Returns ``(present, local)``: the original indices of the k accounts, and a lookup of
    length ``n`` from original to new index (-1 for accounts not present). Why a mask and
    a lookup array: they cost O(edges + accounts), unlike ``np.unique`` or
    ``searchsorted``, and keep a per-domain graph's cost proportional to its own size.
    """
    involved = np.zeros(n, dtype=bool)
    for idx in indices:
        involved[idx] = True
    present = np.flatnonzero(involved)
    local = np.full(n, -1, dtype=np.int64)
    local[present] = np.arange(present.size)
    return present, local


@dataclass(frozen=True)
class EdgeTable:
    """Directed, weighted, domain-tagged trust edges stored as parallel arrays.

    Row ``i`` says: account ``accounts[src[i]]`` trusts account
    ``accounts[dst[i]]`` with weight ``weight[i]`` in domain
    ``domains[domain[i]]``. Parallel rows (same truster, trusted and domain) are
    allowed and mean "sum them"; self loops are allowed in the table and ignored
    by propagation (an account cannot vouch for itself).

    Attributes
    ----------
    accounts : list of str
        Index -> account id. May list accounts that appear in no edge; the
        scoring model ignores those unless they are seeds.
    domains : list of str
        Index -> domain name (``"general"``, ``"labeling"``, ...).
    src : numpy.ndarray of int32
        Account index of the truster, one per edge.
    dst : numpy.ndarray of int32
        Account index of the trusted account, one per edge.
    weight : numpy.ndarray of float64
        Edge weight, finite and strictly positive, already decayed/weighted.
    domain : numpy.ndarray of int16 or int32
        Index into ``domains``, one per edge.

    Notes
    -----
    The table does not validate itself on construction, so that storage can
    build a 10M-edge table without an extra pass over it; call
    :meth:`validate` at the boundary where untrusted data comes in (the scoring
    model does).
    """

    accounts: list[str]
    domains: list[str]
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    domain: np.ndarray

    @property
    def n_accounts(self) -> int:
        """Number of accounts in the index (not all of them need edges)."""
        return len(self.accounts)

    @property
    def n_edges(self) -> int:
        """Number of edge rows (parallel rows counted separately)."""
        return int(self.src.shape[0])

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str, float, str]]) -> EdgeTable:
        """Build a table from ``(src, dst, weight, domain)`` tuples.

        Accounts and domains are indexed in order of first appearance, so the
        same records in the same order always give the same table. Meant for
        tests and small inputs: it goes through Python objects row by row.

        Parameters
        ----------
        records : iterable of (str, str, float, str)
            Truster, trusted, weight, domain name.

        Returns
        -------
        EdgeTable
            A validated table.

        Raises
        ------
        ValueError
            If a weight is not finite and positive.

        Examples
        --------
        >>> t = EdgeTable.from_records([("a", "b", 1.0, "general"), ("b", "c", 2.0, "code")])
        >>> t.accounts, t.domains, t.src.tolist(), t.dst.tolist()
        (['a', 'b', 'c'], ['general', 'code'], [0, 1], [1, 2])
        """
        account_index: dict[str, int] = {}
        domain_index: dict[str, int] = {}
        src: list[int] = []
        dst: list[int] = []
        weight: list[float] = []
        domain: list[int] = []
        for s, d, w, dom in records:
            src.append(account_index.setdefault(s, len(account_index)))
            dst.append(account_index.setdefault(d, len(account_index)))
            weight.append(float(w))
            domain.append(domain_index.setdefault(dom, len(domain_index)))
        domain_dtype = np.int16 if len(domain_index) <= np.iinfo(np.int16).max else np.int32
        table = cls(
            accounts=list(account_index),
            domains=list(domain_index),
            src=np.asarray(src, dtype=np.int32),
            dst=np.asarray(dst, dtype=np.int32),
            weight=np.asarray(weight, dtype=np.float64),
            domain=np.asarray(domain, dtype=domain_dtype),
        )
        table.validate()
        return table

    def validate(self) -> None:
        """Check the invariants that propagation relies on.

        A bad table is rejected here, with a message that names the problem,
        rather than producing silently wrong trust (a negative weight would
        let one account drain trust from another; an out-of-range index would
        crash deep inside scipy or, worse, alias another account).

        Raises
        ------
        ValueError
            If the arrays are not 1-D of equal length, indices are not integers
            or out of range, weights are not finite and strictly positive, or
            account / domain names repeat.
        """
        arrays = {"src": self.src, "dst": self.dst, "weight": self.weight, "domain": self.domain}
        for name, arr in arrays.items():
            if not isinstance(arr, np.ndarray):
                raise ValueError(
                    f"EdgeTable.{name} must be a numpy array, got {type(arr).__name__}"
                )
            if arr.ndim != 1:
                raise ValueError(f"EdgeTable.{name} must be 1-D, got shape {arr.shape}")
        lengths = {name: arr.shape[0] for name, arr in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"EdgeTable arrays must have equal lengths, got {lengths}")
        for name in ("src", "dst", "domain"):
            if not np.issubdtype(arrays[name].dtype, np.integer):
                raise ValueError(
                    f"EdgeTable.{name} must hold integer indices, got dtype {arrays[name].dtype}"
                )
        if not np.issubdtype(self.weight.dtype, np.floating):
            raise ValueError(f"EdgeTable.weight must be floating point, got {self.weight.dtype}")
        if len(set(self.accounts)) != len(self.accounts):
            raise ValueError("EdgeTable.accounts contains duplicate account ids")
        if len(set(self.domains)) != len(self.domains):
            raise ValueError("EdgeTable.domains contains duplicate domain names")
        if self.n_edges == 0:
            return
        n = len(self.accounts)
        for name in ("src", "dst"):
            arr = arrays[name]
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= n:
                raise ValueError(
                    f"EdgeTable.{name} has account indices in [{lo}, {hi}] "
                    f"but there are only {n} accounts"
                )
        lo, hi = int(self.domain.min()), int(self.domain.max())
        if lo < 0 or hi >= len(self.domains):
            raise ValueError(
                f"EdgeTable.domain has indices in [{lo}, {hi}] "
                f"but there are only {len(self.domains)} domains"
            )
        bad = ~(np.isfinite(self.weight) & (self.weight > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"EdgeTable.weight must be finite and > 0; {int(bad.sum())} edge(s) are not, "
                f"first at row {i}: {self.weight[i]!r}"
            )

    def domain_index(self, domain: str) -> int:
        """Index of ``domain`` in :attr:`domains`; ``ValueError`` if unknown."""
        try:
            return self.domains.index(domain)
        except ValueError:
            raise ValueError(f"unknown domain {domain!r}; known: {self.domains}") from None

    def to_networkx(self, domain: str | None = None, *, self_loops: bool = False) -> nx.DiGraph:
        """The table as a ``networkx.DiGraph`` (the modelling/reference layer).

        Parallel edges are summed into one edge's ``weight``. Nodes are account
        ids: every account that appears in a selected edge, including one
        whose only edge is a self loop, so that the node set is the one the
        scoring model reports on.

        Parameters
        ----------
        domain : str, optional
            Keep only this domain's edges. ``None`` (default) keeps all edges,
            summing across domains.
        self_loops : bool, default False
            Keep self loops. Off by default because propagation ignores them,
            which makes ``networkx.pagerank`` on the result a reference for
            :mod:`scoring.propagation`.

        Returns
        -------
        networkx.DiGraph
            Edge attribute ``weight`` holds the summed weight.

        Raises
        ------
        ValueError
            If ``domain`` is not in :attr:`domains`.

        Examples
        --------
        >>> t = EdgeTable.from_records([("a", "b", 1.0, "g"), ("a", "b", 2.0, "g")])
        >>> t.to_networkx()["a"]["b"]["weight"]
        3.0
        """
        if domain is None:
            mask = np.ones(self.n_edges, dtype=bool)
        else:
            mask = self.domain == self.domain_index(domain)
        src, dst, weight = self.src[mask], self.dst[mask], self.weight[mask]
        graph = nx.DiGraph()
        present = np.unique(np.concatenate([src, dst]))
        graph.add_nodes_from(self.accounts[i] for i in present.tolist())
        for s, d, w in zip(src.tolist(), dst.tolist(), weight.tolist(), strict=True):
            if s == d and not self_loops:
                continue
            u, v = self.accounts[s], self.accounts[d]
            if graph.has_edge(u, v):
                graph[u][v]["weight"] += w
            else:
                graph.add_edge(u, v, weight=w)
        return graph
