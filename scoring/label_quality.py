"""Labeler quality: Dawid-Skene EM over a columnar table of labels, gold and reviews.

Why this exists: a labeler who answers at random passes on as much trust as an
accurate one unless something measures how often each labeler is right. With
no ground truth for most items, agreement between labelers is the evidence, and
Dawid & Skene's EM turns agreement into per-labeler accuracies and per-item
posteriors over the true class, weighting each labeler by how reliable the
others make them look. Gold answers revealed by a task's poster anchor the EM
(a colluding majority cannot redefine the truth on gold items) and reviews add
weak evidence about single labels. See ``docs/label-quality.md``.

The module is pure: storage builds a :class:`LabelTable` (parallel arrays, one
row per label) and gets a :class:`LabelQuality` back. The EM iterations are
vectorised (``numpy.bincount`` and ``ufunc.reduceat`` over flat arrays), with
no Python loop per label or per item inside them; 1M labels take 0.6-1.6 s on
the 2-core development machine (docs/label-quality.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from scoring.propagation import ConvergenceError
from scoring.scale import GLOBAL_DOMAIN

__all__ = [
    "DEFAULT_DOMAIN",
    "LabelQuality",
    "LabelQualityConvergenceError",
    "LabelTable",
    "LabelerAccuracy",
    "ReviewTable",
    "aggregate_labels",
    "estimate_label_quality",
    "majority_vote",
]

DEFAULT_DOMAIN = "general"
"""Domain of an item whose task is unknown (the event default, docs/events.md)."""

_EPS = 1e-9  # accuracies and confusion cells are kept in [_EPS, 1 - _EPS] for the logs


class LabelQualityConvergenceError(ConvergenceError):
    """The EM did not reach the tolerance within ``max_iter`` iterations.

    A subclass of :class:`scoring.propagation.ConvergenceError`, so one
    ``except ConvergenceError`` covers every iterative step of an epoch.

    Attributes
    ----------
    iterations : int
        Iterations performed (equal to ``max_iter``).
    residual : float
        Largest absolute parameter change of the last iteration.
    """

    def __str__(self) -> str:
        return (
            f"Dawid-Skene EM did not converge in {self.iterations} iterations "
            f"(last largest parameter change {self.residual:.3e})"
        )


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class ReviewTable:
    """Reviews of labels, as parallel arrays: one row per (reviewer, label) verdict.

    Row ``r`` says: ``reviewers[reviewer[r]]`` accepted (``verdict[r] = +1``) or
    rejected (``-1``) the label that labeler ``labeler[r]`` gave item ``item[r]``
    (indices into the enclosing :class:`LabelTable`'s ``labelers`` and
    ``items``). A review of a label that is not in the table, and a review by
    the labeler themself (same account id), is ignored.

    Attributes
    ----------
    reviewers : list of str
        Index -> reviewer account id (its own index, as reviewers need not label).
    item, labeler, reviewer : numpy.ndarray of int
        Item, labeler and reviewer index per review.
    verdict : numpy.ndarray of int
        +1 accept, -1 reject.
    """

    reviewers: list[str]
    item: np.ndarray
    labeler: np.ndarray
    reviewer: np.ndarray
    verdict: np.ndarray

    @classmethod
    def empty(cls) -> ReviewTable:
        """A table with no reviews."""
        z = np.zeros(0, dtype=np.int32)
        return cls([], z, z, z, np.zeros(0, dtype=np.int8))

    def __len__(self) -> int:
        return int(np.asarray(self.item).shape[0])


@dataclass(frozen=True)
class LabelTable:
    """Labels, gold answers and reviews as storage hands them to scoring.

    Row ``j`` of the label arrays says: ``labelers[labeler[j]]`` labeled item
    ``items[item[j]]`` with the string ``label[j]``. One label per (item,
    labeler): storage keeps the latest (``labels`` table's unique key).

    Attributes
    ----------
    labelers : list of str
        Index -> labeler account id.
    items : list of str
        Index -> item key, e.g. ``"labels.market.near/task-7/img-0042"``.
    item_domain : list of str
        Per item, its task's domain. ``"global"`` is reserved.
    item_classes : list of tuple of str
        Per item, its task's label space. Empty when unknown: the item's
        classes are then the labels seen on it (and its gold), in string order.
        A gold label outside a declared space is appended to it.
    item : numpy.ndarray of int
        Item index per label.
    labeler : numpy.ndarray of int
        Labeler index per label.
    label : sequence of str or numpy.ndarray of str
        Label value per label. A value outside the item's declared space is
        certainly wrong: it counts as an error of its labeler and says nothing
        about the item.
    gold : mapping of int to str
        Item index -> gold label revealed by the task's poster (storage keeps
        only the poster's reveals). Gold items' posteriors are clamped to it.
    reviews : ReviewTable, optional
        Accept/reject verdicts on labels.

    Notes
    -----
    Like :class:`scoring.graph.EdgeTable`, the table does not validate itself
    on construction; :func:`estimate_label_quality` calls :meth:`validate`.
    """

    labelers: list[str]
    items: list[str]
    item_domain: list[str]
    item_classes: list[tuple[str, ...]]
    item: np.ndarray
    labeler: np.ndarray
    label: Sequence[str] | np.ndarray
    gold: Mapping[int, str] = field(default_factory=dict)
    reviews: ReviewTable | None = None

    def __len__(self) -> int:
        return int(np.asarray(self.item).shape[0])

    @classmethod
    def from_records(
        cls,
        labels: Iterable[tuple[str, str, str]],
        *,
        items: Mapping[str, tuple[str, Sequence[str]]] | None = None,
        gold: Mapping[str, str] | None = None,
        reviews: Iterable[tuple[str, str, str, int]] = (),
    ) -> LabelTable:
        """Build a table from Python records (tests and small inputs).

        Parameters
        ----------
        labels : iterable of (labeler, item key, label)
        items : mapping of item key to (domain, classes), optional
            Items missing here get domain :data:`DEFAULT_DOMAIN` and an unknown
            label space.
        gold : mapping of item key to gold label, optional
        reviews : iterable of (item key, labeler, reviewer, verdict)
            ``verdict`` is +1 (accept) or -1 (reject).

        Returns
        -------
        LabelTable
            Labelers, reviewers and items indexed in order of first
            appearance (labels, then ``items``, ``gold``, ``reviews``). A
            repeated (labeler, item) keeps the last label.

        Examples
        --------
        >>> t = LabelTable.from_records(
        ...     [("ann", "t/1", "cat"), ("bob", "t/1", "dog")],
        ...     items={"t/1": ("images", ("cat", "dog"))},
        ...     gold={"t/1": "cat"},
        ... )
        >>> t.labelers, t.items, t.item.tolist(), t.gold
        (['ann', 'bob'], ['t/1'], [0, 0], {0: 'cat'})
        """
        item_meta = dict(items or {})
        lab_idx: dict[str, int] = {}
        item_idx: dict[str, int] = {}
        rows: dict[tuple[int, int], str] = {}
        for who, key, value in labels:
            i = item_idx.setdefault(key, len(item_idx))
            w = lab_idx.setdefault(who, len(lab_idx))
            rows[(i, w)] = value
        for key in item_meta:
            item_idx.setdefault(key, len(item_idx))
        for key in gold or {}:
            item_idx.setdefault(key, len(item_idx))
        rev_idx: dict[str, int] = {}
        rev_rows: list[tuple[int, int, int, int]] = []
        for key, who, reviewer, verdict in reviews:
            rev_rows.append(
                (
                    item_idx.setdefault(key, len(item_idx)),
                    lab_idx.setdefault(who, len(lab_idx)),
                    rev_idx.setdefault(reviewer, len(rev_idx)),
                    int(verdict),
                )
            )
        keys = list(item_idx)
        meta = [item_meta.get(k, (DEFAULT_DOMAIN, ())) for k in keys]
        pairs = list(rows)
        rv = np.asarray(rev_rows, dtype=np.int64).reshape(-1, 4)
        table = cls(
            labelers=list(lab_idx),
            items=keys,
            item_domain=[m[0] for m in meta],
            item_classes=[tuple(m[1]) for m in meta],
            item=np.asarray([p[0] for p in pairs], dtype=np.int32),
            labeler=np.asarray([p[1] for p in pairs], dtype=np.int32),
            label=[rows[p] for p in pairs],
            gold={item_idx[k]: v for k, v in (gold or {}).items()},
            reviews=ReviewTable(
                reviewers=list(rev_idx),
                item=rv[:, 0].astype(np.int32),
                labeler=rv[:, 1].astype(np.int32),
                reviewer=rv[:, 2].astype(np.int32),
                verdict=rv[:, 3].astype(np.int8),
            ),
        )
        table.validate()
        return table

    def validate(self) -> None:
        """Reject a malformed table with a message that names the problem.

        Raises
        ------
        ValueError
            On unequal lengths, non-integer or out-of-range indices, repeated
            labeler or item ids, a repeated (item, labeler) pair, a verdict
            other than +1/-1, or an item in the reserved domain ``"global"``.
        """
        n_items, n_labelers = len(self.items), len(self.labelers)
        if len(self.item_domain) != n_items or len(self.item_classes) != n_items:
            raise ValueError(
                f"LabelTable has {n_items} items but {len(self.item_domain)} item_domain and "
                f"{len(self.item_classes)} item_classes entries"
            )
        if len(set(self.items)) != n_items:
            raise ValueError("LabelTable.items contains duplicate item keys")
        if len(set(self.labelers)) != n_labelers:
            raise ValueError("LabelTable.labelers contains duplicate account ids")
        if GLOBAL_DOMAIN in set(self.item_domain):
            raise ValueError(f"domain name {GLOBAL_DOMAIN!r} is reserved for the all-domains rows")
        _check_index("LabelTable.item", self.item, n_items)
        _check_index("LabelTable.labeler", self.labeler, n_labelers)
        if len(self.label) != len(self):
            raise ValueError(
                f"LabelTable.label has {len(self.label)} values for {len(self)} label rows"
            )
        if np.asarray(self.labeler).shape[0] != len(self):
            raise ValueError("LabelTable.item and LabelTable.labeler must have equal lengths")
        for i in self.gold:
            if not 0 <= int(i) < n_items:
                raise ValueError(f"LabelTable.gold has item index {i} outside [0, {n_items})")
        if len(self):
            key = np.asarray(self.item, dtype=np.int64) * max(n_labelers, 1) + np.asarray(
                self.labeler, dtype=np.int64
            )
            key.sort()
            if (key[1:] == key[:-1]).any():
                raise ValueError("LabelTable has more than one label for an (item, labeler) pair")
        rv = self.reviews
        if rv is None:
            return
        m = len(rv)
        for name in ("item", "labeler", "reviewer", "verdict"):
            if np.asarray(getattr(rv, name)).shape != (m,):
                raise ValueError(f"ReviewTable.{name} must be 1-D of length {m}")
        if len(set(rv.reviewers)) != len(rv.reviewers):
            raise ValueError("ReviewTable.reviewers contains duplicate account ids")
        _check_index("ReviewTable.item", rv.item, n_items)
        _check_index("ReviewTable.labeler", rv.labeler, n_labelers)
        _check_index("ReviewTable.reviewer", rv.reviewer, len(rv.reviewers))
        if m and not np.isin(np.asarray(rv.verdict), (-1, 1)).all():
            raise ValueError("ReviewTable.verdict must be +1 (accept) or -1 (reject)")


def _check_index(name: str, arr: np.ndarray, n: int) -> None:
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {a.dtype}")
    if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
        raise ValueError(f"{name} has indices in [{int(a.min())}, {int(a.max())}], not in [0, {n})")


# --------------------------------------------------------------------------- output


@dataclass(frozen=True, slots=True)
class LabelerAccuracy:
    """One labeler's estimated accuracy in one domain (a row of :class:`LabelQuality`).

    Attributes
    ----------
    labeler, domain : str
        Account id; domain name or :data:`~scoring.model.GLOBAL_DOMAIN`.
    accuracy : float
        Posterior mean of the probability that a label is right.
    n_labels : int
        Labels the estimate rests on: the corroborated ones (on an item with
        gold, another labeler's label or a review of it; or outside the item's
        label space, a certain error).
    n_submitted : int
        All the labeler's labels on items with two or more classes.
    correct : float
        Expected number of them that are right (under the item posteriors).
    chance : float
        Accuracy of uniform guessing on the same items, mean of ``1/K``.
    low, high : float
        Equal-tailed 90% credible interval of the accuracy.
    """

    labeler: str
    domain: str
    accuracy: float
    n_labels: int
    n_submitted: int
    correct: float
    chance: float
    low: float
    high: float


@dataclass(frozen=True, eq=False)
class LabelQuality:
    """Result of :func:`estimate_label_quality`.

    Labeler rows are columnar: row ``k`` is labeler ``labelers[labeler[k]]`` in
    domain ``domains[domain[k]]``. ``domains[0]`` is
    :data:`~scoring.model.GLOBAL_DOMAIN` (all of a labeler's labels pooled);
    the others are the items' domains in name order. Rows are sorted by domain,
    then labeler index; there is a row for each (labeler, domain) with a label
    on an item of two or more classes, and a global row for each such labeler.
    A row with ``n_labels == 0`` (nothing corroborates its labels) is its prior.

    Each row's accuracy has the posterior ``Beta(alpha, beta)``:
    ``alpha = a + correct`` and ``beta = b + n_labels - correct``, where
    ``Beta(a, b)`` is the prior (see :func:`estimate_label_quality`).

    Item posteriors are ragged: item ``i``'s classes are ``item_classes[i]``
    and their probabilities ``posterior[item_offsets[i]:item_offsets[i + 1]]``.

    Attributes
    ----------
    labelers, domains, items : list of str
    labeler, domain : numpy.ndarray of int32
        Per row.
    n_labels, n_submitted : numpy.ndarray of int64
        Corroborated labels (the evidence) and all labels, see
        :class:`LabelerAccuracy`.
    correct, chance, alpha, beta : numpy.ndarray of float64
    item_classes : list of tuple of str
        The classes each item's posterior is over (declared space, plus a gold
        label outside it; or the labels seen on it).
    item_offsets : numpy.ndarray of int64, shape (n_items + 1,)
    posterior : numpy.ndarray of float64
        Per item, sums to one (empty for an item with no classes); one-hot on
        gold items.
    reviewers : list of str
    reviewer_reliability : numpy.ndarray of float64
        Posterior mean probability that a reviewer's verdict is right.
    reviewer_reviews : numpy.ndarray of int64
        Reviews each reviewer's reliability rests on.
    iterations : int
        EM iterations performed.
    residual : float
        Largest parameter change of the last iteration (below ``tol``).
    objective : numpy.ndarray of float64
        Log posterior (log-likelihood plus log prior) after each iteration;
        non-decreasing for the one-coin model.
    """

    labelers: list[str]
    domains: list[str]
    labeler: np.ndarray
    domain: np.ndarray
    n_labels: np.ndarray
    n_submitted: np.ndarray
    correct: np.ndarray
    chance: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    items: list[str]
    item_classes: list[tuple[str, ...]]
    item_offsets: np.ndarray
    posterior: np.ndarray
    reviewers: list[str]
    reviewer_reliability: np.ndarray
    reviewer_reviews: np.ndarray
    iterations: int
    residual: float
    objective: np.ndarray

    @property
    def accuracy(self) -> np.ndarray:
        """Posterior mean accuracy per row, ``alpha / (alpha + beta)``."""
        return self.alpha / (self.alpha + self.beta)

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval of each row's accuracy."""
        if not 0 < level < 1:
            raise ValueError("level must be in (0, 1)")
        tail = (1.0 - level) / 2.0
        return (
            special.betaincinv(self.alpha, self.beta, tail),
            special.betaincinv(self.alpha, self.beta, 1.0 - tail),
        )

    def row(self, labeler: str, domain: str = GLOBAL_DOMAIN) -> int | None:
        """Row index of ``(labeler, domain)``, or None if it has no label there.

        A linear scan, for a few look-ups; use the row arrays for bulk work.
        """
        try:
            w, d = self.labelers.index(labeler), self.domains.index(domain)
        except ValueError:
            return None
        hit = np.flatnonzero((self.labeler == w) & (self.domain == d))
        return int(hit[0]) if hit.size else None

    def accuracy_of(self, labeler: str, domain: str = GLOBAL_DOMAIN) -> float | None:
        """Posterior mean accuracy of one labeler in one domain (None if no labels there)."""
        k = self.row(labeler, domain)
        return None if k is None else float(self.alpha[k] / (self.alpha[k] + self.beta[k]))

    def item_posterior(self, item: int) -> dict[str, float]:
        """Posterior over item ``item``'s classes, as ``{class: probability}``."""
        lo, hi = int(self.item_offsets[item]), int(self.item_offsets[item + 1])
        return dict(zip(self.item_classes[item], self.posterior[lo:hi].tolist(), strict=True))

    def records(self, level: float = 0.9) -> list[LabelerAccuracy]:
        """The rows as :class:`LabelerAccuracy` objects (for humans and small outputs)."""
        low, high = self.interval(level)
        acc = self.accuracy
        return [
            LabelerAccuracy(
                labeler=self.labelers[w],
                domain=self.domains[d],
                accuracy=float(acc[k]),
                n_labels=int(self.n_labels[k]),
                n_submitted=int(self.n_submitted[k]),
                correct=float(self.correct[k]),
                chance=float(self.chance[k]),
                low=float(low[k]),
                high=float(high[k]),
            )
            for k, (w, d) in enumerate(
                zip(self.labeler.tolist(), self.domain.tolist(), strict=True)
            )
        ]


# --------------------------------------------------------------------------- preparation


@dataclass(eq=False)
class _Prepared:
    """The table turned into flat index arrays, built once before the EM."""

    domains: list[str]
    item_classes: list[tuple[str, ...]]
    item_space: np.ndarray  # per item, its label space (its tuple of classes)
    n_spaces: int
    space_k: np.ndarray  # classes per label space
    offsets: np.ndarray  # (n_items + 1,) entry offsets; an entry is one (item, class)
    seg_start: np.ndarray  # first entry of each item with >= 1 class (a "segment")
    entry_seg: np.ndarray  # segment of each entry
    seg_k: np.ndarray  # classes per segment (float)
    seg_n: np.ndarray  # classes per segment (int, for np.repeat)
    seg_free: np.ndarray  # segment is not gold
    gold_entries: np.ndarray  # all entries of gold items
    gold_values: np.ndarray  # their clamped posterior (1 at the gold class)
    gold_hit: np.ndarray  # the gold entry of each gold item
    # counted labels (on items with >= 2 classes)
    lab_item: np.ndarray  # item of the label
    lab_worker: np.ndarray  # row of the (labeler, domain) pair
    lab_entry: np.ndarray  # entry of the label's class, -1 outside the item's space
    lab_k: np.ndarray  # classes of the item (float)
    lab_corr: np.ndarray  # 1.0 if the label is corroborated (counted in the M-step)
    # (labeler, domain) workers
    w_labeler: np.ndarray
    w_domain: np.ndarray
    w_n: np.ndarray  # corroborated labels (the evidence)
    w_submitted: np.ndarray  # all counted labels
    w_chance: np.ndarray
    # reviews matched to counted labels
    rv_label: np.ndarray
    rv_accept: np.ndarray
    rv_reviewer: np.ndarray
    n_reviewers: int


def _vocabulary(table: LabelTable, labels: list[str]) -> tuple[list[str], dict[str, int]]:
    """All label strings, sorted, so codes (and tie-breaks) do not depend on row order."""
    words = set(labels)
    words.update(table.gold.values())
    for classes in set(table.item_classes):
        words.update(classes)
    vocab = sorted(words)
    return vocab, {s: k for k, s in enumerate(vocab)}


def _prepare(table: LabelTable) -> _Prepared:
    table.validate()
    n_items = len(table.items)
    labels = (
        [str(x) for x in table.label.tolist()]
        if isinstance(table.label, np.ndarray)
        else list(table.label)
    )
    item = np.asarray(table.item, dtype=np.int64)
    labeler = np.asarray(table.labeler, dtype=np.int64)
    vocab, code_of = _vocabulary(table, labels)
    v = max(len(vocab), 1)
    code = np.fromiter(map(code_of.__getitem__, labels), dtype=np.int64, count=len(labels))

    # Classes of items with an unknown label space: the labels seen on them, sorted.
    declared = np.fromiter((bool(c) for c in table.item_classes), dtype=bool, count=n_items)
    seen: dict[int, list[int]] = {}
    if len(item) and not declared.all():
        pick = ~declared[item]
        pairs = np.unique(item[pick] * v + code[pick])
        p_item, p_code = (pairs // v).tolist(), (pairs % v).tolist()
        for i, c in zip(p_item, p_code, strict=True):
            seen.setdefault(i, []).append(c)

    # Items share label spaces (one per task), so classes are stored once per space.
    dedup: dict[tuple[str, ...], tuple[str, ...]] = {}
    space_id: dict[tuple[str, ...], int] = {}
    spaces: list[tuple[str, ...]] = []
    item_space_l: list[int] = []
    for i, classes in enumerate(table.item_classes):
        g = table.gold.get(i)
        if classes:
            eff = dedup.get(classes)
            if eff is None:
                eff = dedup[classes] = tuple(dict.fromkeys(classes))
            if g is not None and g not in eff:
                eff = (*eff, g)
        else:
            cs = seen.get(i, [])
            if g is not None:
                cs = sorted({*cs, code_of[g]})
            eff = tuple(vocab[c] for c in cs)
        sid = space_id.get(eff)
        if sid is None:
            sid = space_id[eff] = len(spaces)
            spaces.append(eff)
        item_space_l.append(sid)
    item_space = np.asarray(item_space_l, dtype=np.int64)
    classes_eff = [spaces[k] for k in item_space_l]
    space_k = np.fromiter(map(len, spaces), dtype=np.int64, count=len(spaces))
    space_off = np.zeros(len(spaces) + 1, dtype=np.int64)
    np.cumsum(space_k, out=space_off[1:])
    space_codes = np.fromiter(
        (code_of[c] for cs in spaces for c in cs), dtype=np.int64, count=int(space_off[-1])
    )

    k_item = space_k[item_space] if n_items else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(k_item, out=offsets[1:])
    n_entries = int(offsets[-1])
    entry_item = np.repeat(np.arange(n_items, dtype=np.int64), k_item)
    entry_local = np.arange(n_entries, dtype=np.int64) - offsets[entry_item]
    entry_code = space_codes[space_off[item_space[entry_item]] + entry_local]
    nonempty = k_item > 0
    seg_of_item = np.cumsum(nonempty) - 1
    seg_start = offsets[:-1][nonempty]
    entry_seg = seg_of_item[entry_item]
    seg_k = k_item[nonempty].astype(np.float64)

    ekey = entry_item * v + entry_code
    order = np.argsort(ekey, kind="stable")
    skey = ekey[order]

    def lookup(items: np.ndarray, codes: np.ndarray) -> np.ndarray:
        if skey.size == 0:
            return np.full(items.shape, -1, dtype=np.int64)
        k = items * v + codes
        pos = np.minimum(np.searchsorted(skey, k), skey.size - 1)
        return np.where(skey[pos] == k, order[pos], -1)

    # Gold: every entry of a gold item is clamped, 1 at the gold class.
    gold_items = np.fromiter(table.gold.keys(), dtype=np.int64, count=len(table.gold))
    gold_codes = np.fromiter(
        (code_of[g] for g in table.gold.values()), dtype=np.int64, count=len(table.gold)
    )
    gold_hit = lookup(gold_items, gold_codes)
    is_gold_item = np.zeros(n_items, dtype=bool)
    is_gold_item[gold_items] = True
    gold_entries = np.flatnonzero(is_gold_item[entry_item])
    gold_values = np.zeros(n_entries, dtype=np.float64)
    gold_values[gold_hit] = 1.0
    gold_values = gold_values[gold_entries]
    seg_free = ~is_gold_item[nonempty]

    # Counted labels: items with at least two classes (one class says nothing).
    keep = k_item[item] >= 2
    lab_rows = np.flatnonzero(keep)
    item_k, labeler_k, code_k = item[keep], labeler[keep], code[keep]
    lab_entry = lookup(item_k, code_k)
    lab_k = k_item[item_k].astype(np.float64)

    domains = sorted(set(table.item_domain))
    dom_of = {d: j + 1 for j, d in enumerate(domains)}  # 0 is the global domain
    item_dom = np.fromiter((dom_of[d] for d in table.item_domain), dtype=np.int64, count=n_items)
    n_lab = max(len(table.labelers), 1)
    wkey = item_dom[item_k] * n_lab + labeler_k  # sorted by domain, then labeler
    ukey, lab_worker = np.unique(wkey, return_inverse=True)
    lab_worker = lab_worker.reshape(-1)
    n_w = ukey.size
    w_submitted = np.bincount(lab_worker, minlength=n_w).astype(np.float64)
    w_chance = np.bincount(lab_worker, weights=1.0 / lab_k, minlength=n_w) / np.maximum(
        w_submitted, 1
    )

    # Reviews: matched to counted labels by (item, labeler); self reviews dropped.
    rv = table.reviews if table.reviews is not None else ReviewTable.empty()
    rv_label = np.zeros(0, dtype=np.int64)
    rv_accept = np.zeros(0, dtype=bool)
    rv_reviewer = np.zeros(0, dtype=np.int64)
    if len(rv) and lab_rows.size:
        lab_index = {a: k for k, a in enumerate(table.labelers)}
        as_labeler = np.fromiter(
            (lab_index.get(r, -1) for r in rv.reviewers), dtype=np.int64, count=len(rv.reviewers)
        )
        r_item = np.asarray(rv.item, dtype=np.int64)
        r_lab = np.asarray(rv.labeler, dtype=np.int64)
        r_rev = np.asarray(rv.reviewer, dtype=np.int64)
        lkey = item_k * n_lab + labeler_k
        lorder = np.argsort(lkey, kind="stable")
        lsorted = lkey[lorder]
        rkey = r_item * n_lab + r_lab
        pos = np.minimum(np.searchsorted(lsorted, rkey), lsorted.size - 1)
        ok = (lsorted[pos] == rkey) & (as_labeler[r_rev] != r_lab)
        rv_label = lorder[pos[ok]]
        rv_accept = np.asarray(rv.verdict)[ok] > 0
        rv_reviewer = r_rev[ok]

    # A label is corroborated when something besides it speaks about its item: gold,
    # another labeler's label in the space, or a review of it. One outside the space
    # is a known error. An uncorroborated label's posterior is its labeler's own
    # accuracy, so at the EM fixed point it adds p to the correct count and 1 to the
    # count: it changes nothing but slows EM down and would overstate the evidence.
    in_space = lab_entry >= 0
    n_in = np.bincount(item_k[in_space], minlength=n_items)
    reviewed = np.zeros(item_k.size, dtype=bool)
    reviewed[rv_label] = True
    corroborated = ~in_space | is_gold_item[item_k] | (n_in[item_k] >= 2) | reviewed
    w_n = np.bincount(lab_worker, weights=corroborated, minlength=n_w).astype(np.float64)

    return _Prepared(
        domains=[GLOBAL_DOMAIN, *domains],
        item_classes=classes_eff,
        item_space=item_space,
        n_spaces=len(spaces),
        space_k=space_k,
        offsets=offsets,
        seg_start=seg_start,
        entry_seg=entry_seg,
        seg_k=seg_k,
        seg_n=k_item[nonempty],
        seg_free=seg_free,
        gold_entries=gold_entries,
        gold_values=gold_values,
        gold_hit=gold_hit,
        lab_item=item_k,
        lab_worker=lab_worker,
        lab_entry=lab_entry,
        lab_k=lab_k,
        lab_corr=corroborated.astype(np.float64),
        w_labeler=(ukey % n_lab).astype(np.int32),
        w_domain=(ukey // n_lab).astype(np.int32),
        w_n=w_n,
        w_submitted=w_submitted,
        w_chance=w_chance,
        rv_label=rv_label,
        rv_accept=rv_accept,
        rv_reviewer=rv_reviewer,
        n_reviewers=len(rv.reviewers),
    )


# --------------------------------------------------------------------------- confusion


@dataclass(eq=False)
class _Confusion:
    """Full confusion matrices for (worker, label space) units with enough labels.

    ``pi`` is flat: unit ``u``'s ``K x K`` matrix starts at ``unit_off[u]``;
    cell ``(c, l)`` is the probability of answering class ``l`` when the truth
    is ``c``. Each label of such a unit is expanded to one row per class of
    its item (``x_entry``: the item's entry of class ``c``; ``x_cell``: cell
    ``(c, l)``), so the E-step and M-step are two bincounts.
    """

    labels: np.ndarray  # counted-label indices handled by confusion matrices
    x_entry: np.ndarray
    x_cell: np.ndarray
    cell_worker: np.ndarray
    cell_diag: np.ndarray
    cell_k: np.ndarray
    cell_row: np.ndarray
    strength: float


def _confusion_units(prep: _Prepared, min_labels: int, strength: float) -> _Confusion | None:
    item_of_label = prep.lab_item
    in_space = prep.lab_entry >= 0
    n_spaces = max(prep.n_spaces, 1)
    item_space = prep.item_space
    lab_space = item_space[item_of_label]
    ukey_all = prep.lab_worker.astype(np.int64) * n_spaces + lab_space
    cand = np.flatnonzero(in_space & (prep.lab_corr > 0))
    ukeys, inv, counts = np.unique(ukey_all[cand], return_inverse=True, return_counts=True)
    big = counts >= min_labels
    if not big.any():
        return None
    sel = big[inv.reshape(-1)]
    labels = cand[sel]
    unit_keys = ukeys[big]
    unit_of = np.searchsorted(unit_keys, ukey_all[labels])
    unit_worker = unit_keys // n_spaces
    space_k = prep.space_k
    unit_k = space_k[unit_keys % n_spaces]
    unit_off = np.zeros(unit_keys.size + 1, dtype=np.int64)
    np.cumsum(unit_k * unit_k, out=unit_off[1:])
    n_cells = int(unit_off[-1])
    cell_unit = np.repeat(np.arange(unit_keys.size), unit_k * unit_k)
    within = np.arange(n_cells) - unit_off[cell_unit]
    ck = unit_k[cell_unit]
    row_c, col_l = within // ck, within % ck
    unit_rows = np.zeros(unit_keys.size + 1, dtype=np.int64)
    np.cumsum(unit_k, out=unit_rows[1:])

    item_l = item_of_label[labels]
    k_l = unit_k[unit_of]
    local = prep.lab_entry[labels] - prep.offsets[item_l]
    rep = np.repeat(np.arange(labels.size), k_l)
    starts = np.zeros(labels.size, dtype=np.int64)
    np.cumsum(k_l[:-1], out=starts[1:])
    c = np.arange(rep.size) - starts[rep]
    return _Confusion(
        labels=labels,
        x_entry=prep.offsets[item_l][rep] + c,
        x_cell=unit_off[unit_of][rep] + c * k_l[rep] + local[rep],
        cell_worker=unit_worker[cell_unit],
        cell_diag=row_c == col_l,
        cell_k=ck.astype(np.float64),
        cell_row=unit_rows[cell_unit] + row_c,
        strength=strength,
    )


# --------------------------------------------------------------------------- the EM


def _segment_softmax(prep: _Prepared, logit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax within each item's entries; also each item's log-sum-exp."""
    if logit.size == 0:
        return logit.copy(), np.zeros(0)
    m = np.maximum.reduceat(logit, prep.seg_start)
    ex = np.exp(logit - np.repeat(m, prep.seg_n))
    s = np.add.reduceat(ex, prep.seg_start)
    ex /= np.repeat(s, prep.seg_n)
    return ex, m + np.log(s)


def estimate_label_quality(
    table: LabelTable,
    *,
    prior_strength: float = 2.0,
    prior_mean: float | None = None,
    review_prior: tuple[float, float] = (2.0, 2.0),
    max_review_reliability: float = 0.9,
    confusion_min_labels: int | None = 100,
    confusion_strength: float = 10.0,
    invert_below_chance: bool = False,
    tol: float = 1e-6,
    objective_tol: float = 1e-8,
    max_iter: int = 500,
) -> LabelQuality:
    """Estimate each labeler's accuracy per domain and each item's true class.

    One-coin Dawid-Skene EM (optionally with full confusion matrices for
    labelers with many labels), with gold items clamped to their gold label,
    reviews as noisy observations of whether a label is right, and a Beta
    prior on every accuracy so that a labeler with three labels is not judged
    certain.

    Parameters
    ----------
    table : LabelTable
        Validated here.
    prior_strength : float, default 2.0
        ``s = a + b`` of the ``Beta(a, b)`` prior on each accuracy, in
        pseudo-labels. Two is Laplace's rule for binary tasks (``Beta(1, 1)``).
    prior_mean : float, optional
        Prior mean ``a / s``. Default: the row's chance level, the mean of
        ``1/K`` over its labels (``Beta(1, 1)`` on yes/no items,
        ``Beta(0.5, 1.5)`` on 4-class items). Centring at chance gives a new
        account no free credit: its labels weigh nothing in the item
        posteriors until agreement with gold and with others earns weight, so
        a farm of fresh accounts cannot outvote one proven labeler.
    review_prior : (float, float), default (2.0, 2.0)
        ``Beta`` prior on a reviewer's reliability (the probability that a
        verdict is right), centred at chance (1/2) like the labelers'.
    max_review_reliability : float, default 0.9
        Cap on the reliability used to weigh a verdict, so that one review is
        weak evidence: at most ``log(0.9/0.1) = 2.2`` nats, against 3.3 for one
        label by a 0.9-accurate labeler on a 4-class item.
    confusion_min_labels : int or None, default 100
        A (labeler, domain) gets a full confusion matrix for a label space in
        which it has at least this many labels (a label space is an item's
        tuple of classes, normally one per task); others keep the one-coin
        model. None: one-coin for all.
    confusion_strength : float, default 10.0
        Pseudo-labels per true class pulling each confusion row towards the
        labeler's one-coin row.
    invert_below_chance : bool, default False
        The accuracy that weighs a labeler's labels in the item posteriors is
        kept at or above its chance level, so a labeler estimated worse than
        chance is ignored rather than inverted (its answer would otherwise
        count *against* that class). Inverting is what the model says, but it
        hands an attacker a lever: fail the gold on purpose, then answer the
        true class on a target item to push it away from the truth. The
        reported accuracy is never clipped. True: plain Dawid-Skene.
    tol : float, default 1e-6
        Stop when no accuracy, reviewer reliability or confusion cell moves by
        ``tol`` or more in one iteration, ...
    objective_tol : float, default 1e-8
        ... or when the log posterior changes by at most
        ``objective_tol * max(1, |log posterior|)`` in one iteration. Where
        labels barely overlap the likelihood is flat and EM creeps (three
        one-label accounts agreeing on one yes/no item need 2,269 iterations
        to reach ``tol``, and stop after 188 at 0.516 against a limit of
        0.505); no estimate along such a ridge is better supported than
        another, so it stops there.
    max_iter : int, default 500
        Raise :class:`LabelQualityConvergenceError` after this many iterations.

    Returns
    -------
    LabelQuality
        Per (labeler, domain) and per labeler over all domains (domain
        ``"global"``): posterior ``Beta(alpha, beta)`` of the accuracy, label
        count, expected correct count and chance level; per item the posterior
        over its classes; per reviewer its reliability.

    Raises
    ------
    ValueError
        If the table is invalid or a parameter is out of range.
    LabelQualityConvergenceError
        If neither criterion is met within ``max_iter`` iterations.

    Notes
    -----
    Item :math:`i` has classes :math:`1..K_i` and unknown true class
    :math:`z_i`; labeler-domain :math:`w` answers right with probability
    :math:`p_w` and otherwise picks a wrong class uniformly (one coin):

    .. math::

        P(y_{wi} = l \\mid z_i = c) = p_w \\text{ if } l = c, \\quad
        \\frac{1 - p_w}{K_i - 1} \\text{ otherwise.}

    A review by :math:`r` of label :math:`y_{wi}` is right with probability
    :math:`q_r`: :math:`P(\\text{accept} \\mid z_i = y_{wi}) = q_r`,
    :math:`P(\\text{accept} \\mid z_i \\ne y_{wi}) = 1 - q_r`. With a uniform
    class prior, the E-step is, up to a per-item constant,

    .. math::

        \\log T_{ic} = \\sum_{w: y_{wi} = c} \\log\\frac{p_w (K_i - 1)}{1 - p_w}
            + \\sum_{r \\text{ on a label } c} v_r \\log\\frac{q_r}{1 - q_r}
            - \\log Z_i,

    with :math:`v_r = \\pm 1`; gold items have :math:`T_i` one-hot at the gold
    class. The M-step is the posterior mean under :math:`\\mathrm{Beta}(a_w, b_w)`
    with expected counts (equivalently the MAP under
    :math:`\\mathrm{Beta}(a_w + 1, b_w + 1)`), kept in its allowed range, which
    is the constrained maximum because the objective is unimodal in each
    parameter; so EM increases the log posterior at every step:

    .. math::

        p_w = \\max\\left(\\bar c_w, \\frac{a_w + \\sum_{i \\in C_w} T_{i, y_{wi}}}
            {a_w + b_w + |C_w|}\\right), \\quad
        q_r = \\mathrm{clip}\\left(\\frac{a_r + \\sum (\\text{verdict agrees with } T)}
            {a_r + b_r + n_r}, \\tfrac12, q_{max}\\right),

    where :math:`\\bar c_w` is the row's chance level (the mean of
    :math:`1/K_i`; no floor with ``invert_below_chance``) and :math:`C_w` the
    row's corroborated labels: on an item with gold, another labeler's label
    or a review of this label. An uncorroborated label's posterior is exactly
    :math:`p_w` (nothing else speaks about its item), so counting it would
    add :math:`p_w` correct out of 1 and leave the fixed point where it is; it
    is left out because it would slow EM down (each such label pulls the
    iteration towards where it already is) and make the estimate look
    better supported than it is. A label outside its item's declared space is
    a certain error: it counts in :math:`C_w` and not as correct. Labels on
    items with a single possible class are ignored. The EM starts from the
    gold-aware majority vote (vote shares, gold clamped). Labeler-domains are
    separate workers, so every domain has its own accuracy; the global row
    pools each labeler's expected correct counts over domains under the same
    prior rule. The reported accuracy is
    :math:`(a_w + \\sum_{C_w} T) / (a_w + b_w + |C_w|)`, unclipped.

    With a full confusion matrix :math:`\\pi_w` for a label space, the label's
    term is :math:`\\log \\pi_w[c, y_{wi}]` for every class :math:`c`, and
    :math:`\\pi_w[c, \\cdot] = (N_w[c, \\cdot] + m\\, \\rho_w[c, \\cdot]) /
    (\\sum_l N_w[c, l] + m)` where :math:`N_w` are expected counts,
    :math:`\\rho_w` the one-coin row and :math:`m` = ``confusion_strength``.
    The reported accuracy is always the expected share of right labels.

    Cost per iteration is O(labels + reviews + item-class entries) with a few
    bincounts; see ``docs/label-quality.md`` for measured times.

    References
    ----------
    .. [1] A. P. Dawid and A. M. Skene, "Maximum likelihood estimation of
       observer error-rates using the EM algorithm", Journal of the Royal
       Statistical Society C 28(1), 20-28, 1979.
    .. [2] V. C. Raykar, S. Yu, L. H. Zhao, G. H. Valadez, C. Florin, L. Bogoni
       and L. Moy, "Learning from crowds", JMLR 11, 1297-1322, 2010.
    .. [3] crowd-kit (Toloka), ``crowdkit.aggregation.DawidSkene`` and
       ``OneCoinDawidSkene``: the peer implementation.

    Examples
    --------
    >>> t = LabelTable.from_records(
    ...     [("ann", "t/1", "cat"), ("bob", "t/1", "dog"), ("ann", "t/2", "dog")],
    ...     items={"t/1": ("images", ("cat", "dog")), "t/2": ("images", ("cat", "dog"))},
    ...     gold={"t/1": "cat"},
    ... )
    >>> q = estimate_label_quality(t)
    >>> round(q.accuracy_of("ann", "images"), 3), round(q.accuracy_of("bob"), 3)
    (0.667, 0.333)
    >>> aggregate_labels(q)
    ['cat', 'dog']
    """
    if not prior_strength > 0:
        raise ValueError("prior_strength must be positive")
    if prior_mean is not None and not 0 < prior_mean < 1:
        raise ValueError("prior_mean must be in (0, 1)")
    ar, br = (float(x) for x in review_prior)
    if not (ar > 0 and br > 0):
        raise ValueError("review_prior must be two positive numbers")
    if not 0.5 <= max_review_reliability < 1:
        raise ValueError("max_review_reliability must be in [0.5, 1)")
    if confusion_min_labels is not None and confusion_min_labels < 1:
        raise ValueError("confusion_min_labels must be >= 1 or None")
    if not tol > 0 or max_iter < 1:
        raise ValueError("tol must be positive and max_iter >= 1")

    prep = _prepare(table)
    s = float(prior_strength)
    w_mean = prep.w_chance if prior_mean is None else np.full_like(prep.w_chance, prior_mean)
    a_w, b_w = s * w_mean, s * (1.0 - w_mean)
    # The accuracy the E-step weighs labels with is kept at or above chance: see
    # ``invert_below_chance``. A constrained M-step (the objective is unimodal in p).
    p_floor = np.full_like(prep.w_chance, _EPS) if invert_below_chance else prep.w_chance
    n_entries = int(prep.offsets[-1])
    n_w = prep.w_n.size

    ins = prep.lab_entry >= 0
    conf = (
        _confusion_units(prep, confusion_min_labels, confusion_strength)
        if confusion_min_labels is not None
        else None
    )
    one = ins.copy()
    if conf is not None:
        one[conf.labels] = False
    oc_entry, oc_worker = prep.lab_entry[one], prep.lab_worker[one]
    oc_logk1 = np.log(prep.lab_k[one] - 1.0)
    # Labels whose base term is log(1 - p): one-coin ones and out-of-space ones.
    n_base = np.bincount(prep.lab_worker[one | ~ins], minlength=n_w).astype(np.float64)
    const_ll = -float(oc_logk1.sum())

    rv_entry = prep.lab_entry[prep.rv_label]
    rv_in = rv_entry >= 0
    rv_e_entry, rv_e_reviewer = rv_entry[rv_in], prep.rv_reviewer[rv_in]
    rv_e_sign = np.where(prep.rv_accept[rv_in], 1.0, -1.0)
    lab_gather = np.maximum(prep.lab_entry, 0)  # with ins_f: T of the label's class, 0 outside
    ins_f = ins.astype(np.float64)
    n_r = np.bincount(prep.rv_reviewer, minlength=prep.n_reviewers).astype(np.float64)
    n_acc = np.bincount(prep.rv_reviewer[prep.rv_accept], minlength=prep.n_reviewers)
    n_rej = n_r - n_acc

    def m_step(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        tl = t[lab_gather] * ins_f if t.size else np.zeros(ins_f.size)
        correct = np.bincount(prep.lab_worker, weights=tl * prep.lab_corr, minlength=n_w)
        p = np.clip((a_w + correct) / (s + prep.w_n), p_floor, 1 - _EPS)
        tr = tl[prep.rv_label]
        agree = np.where(prep.rv_accept, tr, 1.0 - tr)
        q_mean = (ar + np.bincount(prep.rv_reviewer, weights=agree, minlength=prep.n_reviewers)) / (
            ar + br + n_r
        )
        q = np.clip(q_mean, 0.5, max_review_reliability)
        if conf is None:
            pi = np.zeros(0)
        else:
            counts = np.bincount(conf.x_cell, weights=t[conf.x_entry], minlength=conf.cell_k.size)
            rows = np.bincount(conf.cell_row, weights=counts)
            pw = p[conf.cell_worker]
            rho = np.where(conf.cell_diag, pw, (1 - pw) / (conf.cell_k - 1))
            pi = np.clip(
                (counts + conf.strength * rho) / (rows[conf.cell_row] + conf.strength),
                _EPS,
                1 - _EPS,
            )
        return p, q, pi, correct

    def e_step(p: np.ndarray, q: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, float]:
        lw = np.log(p) - np.log1p(-p)
        logit = np.bincount(oc_entry, weights=lw[oc_worker] + oc_logk1, minlength=n_entries).astype(
            np.float64, copy=False
        )  # an empty bincount is int64
        rw = np.log(q) - np.log1p(-q)
        logit += np.bincount(rv_e_entry, weights=rv_e_sign * rw[rv_e_reviewer], minlength=n_entries)
        if conf is not None:
            logit += np.bincount(conf.x_entry, weights=np.log(pi[conf.x_cell]), minlength=n_entries)
        t, lse = _segment_softmax(prep, logit)
        t[prep.gold_entries] = prep.gold_values
        ll = const_ll + float(n_base @ np.log1p(-p))
        ll += float(n_acc @ np.log1p(-q) + n_rej @ np.log(q))
        ll += float((lse - np.log(prep.seg_k))[prep.seg_free].sum())
        ll += float(logit[prep.gold_hit].sum())
        ll += float(a_w @ np.log(p) + b_w @ np.log1p(-p))
        ll += float(ar * np.log(q).sum() + br * np.log1p(-q).sum())
        return t, ll

    # Gold-aware majority vote: vote shares per item, uniform without votes.
    votes = np.bincount(prep.lab_entry[ins], minlength=n_entries).astype(np.float64)
    if n_entries:
        tot = np.add.reduceat(votes, prep.seg_start)[prep.entry_seg]
        k_e = prep.seg_k[prep.entry_seg]
        t = np.where(tot > 0, votes / np.where(tot > 0, tot, 1.0), 1.0 / k_e)
        t[prep.gold_entries] = prep.gold_values
    else:
        t = np.zeros(0)

    p, q, pi, _ = m_step(t)
    history: list[float] = []
    residual = 0.0
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        t, ll = e_step(p, q, pi)
        history.append(ll)
        p2, q2, pi2, _ = m_step(t)
        residual = max(
            float(np.abs(p2 - p).max(initial=0.0)),
            float(np.abs(q2 - q).max(initial=0.0)),
            float(np.abs(pi2 - pi).max(initial=0.0)),
        )
        p, q, pi = p2, q2, pi2
        if residual < tol:
            break
        # A flat likelihood (little agreement: items labeled once or twice) makes EM
        # creep towards its limit while the posteriors have stopped changing.
        if len(history) > 1 and abs(history[-1] - history[-2]) <= objective_tol * max(
            1.0, abs(history[-1])
        ):
            break
    else:
        raise LabelQualityConvergenceError(max_iter, residual)
    t, ll = e_step(p, q, pi)
    _, _, _, correct = m_step(t)

    # Rows: per domain, then one pooled row per labeler (domain 0, listed first).
    n_lab = len(table.labelers)
    g_n = np.bincount(prep.w_labeler, weights=prep.w_n, minlength=n_lab)
    g_sub = np.bincount(prep.w_labeler, weights=prep.w_submitted, minlength=n_lab)
    g_correct = np.bincount(prep.w_labeler, weights=correct, minlength=n_lab)
    g_chance = np.bincount(
        prep.w_labeler, weights=prep.w_chance * prep.w_submitted, minlength=n_lab
    ) / np.maximum(g_sub, 1)
    has = np.flatnonzero(g_sub > 0)
    g_mean = g_chance[has] if prior_mean is None else np.full(has.size, prior_mean)
    n_all = np.concatenate([g_n[has], prep.w_n])
    correct_all = np.concatenate([g_correct[has], correct])
    mean_all = np.concatenate([g_mean, w_mean])
    tr = _label_t(prep, t)
    agree_r = np.bincount(
        prep.rv_reviewer, weights=np.where(prep.rv_accept, tr, 1.0 - tr), minlength=prep.n_reviewers
    )
    rv_names = table.reviews.reviewers if table.reviews is not None else []
    return LabelQuality(
        labelers=list(table.labelers),
        domains=prep.domains,
        labeler=np.concatenate([has, prep.w_labeler]).astype(np.int32),
        domain=np.concatenate([np.zeros(has.size), prep.w_domain]).astype(np.int32),
        n_labels=n_all.astype(np.int64),
        n_submitted=np.concatenate([g_sub[has], prep.w_submitted]).astype(np.int64),
        correct=correct_all,
        chance=np.concatenate([g_chance[has], prep.w_chance]),
        alpha=s * mean_all + correct_all,
        beta=s * (1.0 - mean_all) + n_all - correct_all,
        items=list(table.items),
        item_classes=prep.item_classes,
        item_offsets=prep.offsets,
        posterior=t,
        reviewers=list(rv_names),
        reviewer_reliability=(ar + agree_r) / (ar + br + n_r),
        reviewer_reviews=n_r.astype(np.int64),
        iterations=iterations,
        residual=residual,
        objective=np.asarray(history),
    )


def _label_t(prep: _Prepared, t: np.ndarray) -> np.ndarray:
    """Posterior probability that each matched review's label is right."""
    e = prep.lab_entry[prep.rv_label]
    return np.where(e >= 0, t[np.maximum(e, 0)] if t.size else 0.0, 0.0)


# --------------------------------------------------------------------------- aggregation


def aggregate_labels(quality: LabelQuality) -> list[str | None]:
    """The most probable class of each item (argmax of its posterior).

    Gold items get their gold label. Exact ties go to the class that sorts
    first as a string; an item with no classes gets None.

    Parameters
    ----------
    quality : LabelQuality

    Returns
    -------
    list of (str or None), one per item.
    """
    out: list[str | None] = [None] * len(quality.items)
    post = quality.posterior
    if post.size == 0:
        return out
    k = np.diff(quality.item_offsets)
    entry_item = np.repeat(np.arange(k.size), k)
    local = np.arange(post.size) - quality.item_offsets[entry_item]
    # Rank of each entry's class name among all names, for string-order tie-breaks.
    spaces = set(quality.item_classes)
    rank_of = {c: r for r, c in enumerate(sorted({c for cs in spaces for c in cs}))}
    ranks_of = {cs: [rank_of[c] for c in cs] for cs in spaces}
    name_rank = np.fromiter(
        (r for cs in quality.item_classes for r in ranks_of[cs]), dtype=np.int64, count=post.size
    )
    order = np.lexsort((name_rank, -post, entry_item))
    first = np.ones(order.size, dtype=bool)
    first[1:] = entry_item[order][1:] != entry_item[order][:-1]
    best = order[first]
    for i, c in zip(entry_item[best].tolist(), local[best].tolist(), strict=True):
        out[i] = quality.item_classes[i][c]
    return out


def majority_vote(table: LabelTable) -> list[str | None]:
    """Plain majority vote per item: the baseline the evaluation compares against.

    Every label counts once, whatever its labeler, and gold and reviews are
    not used. Ties go to the label that sorts first as a string; an item with
    no labels gets None.

    Parameters
    ----------
    table : LabelTable

    Returns
    -------
    list of (str or None), one per item.

    Examples
    --------
    >>> t = LabelTable.from_records([("a", "x", "no"), ("b", "x", "yes"), ("c", "x", "yes")])
    >>> majority_vote(t)
    ['yes']
    """
    out: list[str | None] = [None] * len(table.items)
    if len(table) == 0:
        return out
    labels = table.label.tolist() if isinstance(table.label, np.ndarray) else list(table.label)
    vocab = sorted(set(labels))
    code_of = {s: k for k, s in enumerate(vocab)}
    code = np.fromiter(map(code_of.__getitem__, labels), dtype=np.int64, count=len(labels))
    v = len(vocab)
    key = np.asarray(table.item, dtype=np.int64) * v + code
    pairs, counts = np.unique(key, return_counts=True)
    items, codes = pairs // v, pairs % v
    order = np.lexsort((codes, -counts, items))
    first = np.ones(order.size, dtype=bool)
    first[1:] = items[order][1:] != items[order][:-1]
    for i, c in zip(items[order][first].tolist(), codes[order][first].tolist(), strict=True):
        out[i] = vocab[c]
    return out
