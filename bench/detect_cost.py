"""What the abuse detectors cost per epoch at scale (issue 5).

    python -m bench.detect_cost [--sizes 100000,1000000] [--rows-per-account 10]

Per size N: N accounts and 10 x N evidence rows from the scoring benchmark's synthetic
power-law graph (``bench.scoring.make_rows``: account votes 80 %, endorsements 20 %, a year
of timestamps, 5 % downvotes), the trust edges the epoch would build from them
(``signed_edges``), and a synthetic label table of N / 2 labels (N / 6 items of 2-4 classes,
3 labels each, labelers drawn from the accounts, 10 % of the items with gold, answers right
with probability 0.8 and 2 % of the labelers answering at random), with its
labeler-quality estimate. Then every registered detector (``scoring.detect.DETECTORS``)
runs once on that epoch's ``DetectorInput``, timed (wall clock) with its peak RSS growth
and the number of findings; the vote-ring detector twice: alone (its own propagation and
Louvain) and as ``run_scoring`` runs it, handed the model's closed-group step (timed
separately: the model runs it anyway). Nothing here is attacked on purpose: the findings
on such a structureless graph are false positives by construction, except the label-spam
detector's random labelers (counted).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from bench.scoring import _reset_peak, _trim, make_rows, peak_mb, rss_mb
from bench.tables import markdown_table
from scoring.collusion import GraphGroups, closed_groups
from scoring.detect import DETECTORS, LABEL_SPAM, VOTE_RING, DetectorInput, Finding
from scoring.events import ENDORSE, VOTE_ACCOUNT
from scoring.evidence import KINDS, Evidence, signed_edges
from scoring.graph import EdgeTable
from scoring.label_quality import LabelTable, ReviewTable, estimate_label_quality
from scoring.propagation import TrustMatrix

RANDOM_LABELERS = 0.02


def evidence_of(n: int, per_account: int) -> tuple[Evidence, list[str]]:
    rows = make_rows(n * per_account, per_account)
    accounts = [f"acct{i:08d}.near" for i in range(1, rows.accounts + 1)]
    kind_map = np.array([KINDS.index(VOTE_ACCOUNT), KINDS.index(ENDORSE)], dtype=np.int8)
    ev = Evidence(
        accounts=accounts,
        domains=["general", "images", "text"],
        src=(rows.src - 1).astype(np.int32),
        dst=(rows.dst - 1).astype(np.int32),
        kind=kind_map[rows.kind],
        value=rows.value.astype(np.int8),
        weight=rows.weight,
        ts_ns=rows.ts_ns.astype(np.int64),
        domain=rows.domain.astype(np.int32),
    )
    seeds = [accounts[i] for i in np.random.default_rng(5).choice(len(accounts), 100, False)]
    return ev, seeds


def labels_of(accounts: list[str], n_labels: int, seed: int = 9) -> tuple[LabelTable, set[str]]:
    """The label table, and the labelers answering at random in it."""
    rng = np.random.default_rng(seed)
    n_items = max(1, n_labels // 3)
    k = rng.integers(2, 5, n_items)
    classes = [tuple(f"c{j}" for j in range(int(c))) for c in k.tolist()]
    truth = (rng.random(n_items) * k).astype(np.int64)
    n_lab = max(10, len(accounts) // 20)
    labeler_ids = rng.choice(len(accounts), n_lab, replace=False)
    random_lab = rng.random(n_lab) < RANDOM_LABELERS
    item = np.repeat(np.arange(n_items), 3)
    who = rng.integers(0, n_lab, item.size)
    keep = np.unique(item * n_lab + who, return_index=True)[1]  # one label per (item, labeler)
    item, who = item[keep], who[keep]
    right = (rng.random(item.size) < 0.8) & ~random_lab[who]
    guess = (rng.random(item.size) * k[item]).astype(np.int64)
    answer = np.where(right, truth[item], guess)
    gold_items = np.flatnonzero(rng.random(n_items) < 0.1)
    names = [accounts[i] for i in labeler_ids.tolist()]
    table = LabelTable(
        labelers=names,
        items=[f"task/{i}" for i in range(n_items)],
        item_domain=["general"] * n_items,
        item_classes=classes,
        item=item.astype(np.int32),
        labeler=who.astype(np.int32),
        label=[classes[i][a] for i, a in zip(item.tolist(), answer.tolist(), strict=True)],
        gold={int(i): classes[int(i)][int(truth[i])] for i in gold_items.tolist()},
        reviews=ReviewTable.empty(),
    )
    return table, {names[i] for i in np.flatnonzero(random_lab).tolist()}


def _model_groups(edges: EdgeTable, seeds: list[str]) -> GraphGroups:
    """The global graph's closed-group step as ``score_accounts`` runs it."""
    index = {a: i for i, a in enumerate(edges.accounts)}
    seed_idx = np.array(sorted(index[s] for s in seeds), dtype=np.int64)
    n = len(edges.accounts)
    src, dst, w = edges.src.astype(np.int64), edges.dst.astype(np.int64), edges.weight
    trust = TrustMatrix.from_edges(n, src, dst, w).propagate(seed_idx).trust
    groups = closed_groups(n, src, dst, w, trust, seed_idx)
    return GraphGroups(list(edges.accounts), src, dst, w, trust, groups)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--rows-per-account", type=int, default=10)
    args = p.parse_args(argv)
    body: list[list[str]] = []
    for n in [int(x) for x in args.sizes.split(",")]:
        ev, seeds = evidence_of(n, args.rows_per_account)
        edges = signed_edges(ev, half_life_days=180).trust
        labels, random_labelers = labels_of(ev.accounts, n // 2)
        t0 = time.perf_counter()
        quality = estimate_label_quality(labels)
        q_s = time.perf_counter() - t0
        inp = DetectorInput(evidence=ev, labels=labels, quality=quality, edges=edges, seeds=seeds)
        # The model's closed-group step, which an epoch runs anyway (not a detector cost):
        # handed to the vote-ring detector as run_scoring does.
        t0 = time.perf_counter()
        graph = _model_groups(edges, seeds)
        groups_s = time.perf_counter() - t0
        runs: list[tuple[str, Callable[[], list[Finding]]]] = [
            (kind, partial(DETECTORS[kind], inp)) for kind in sorted(DETECTORS)
        ]
        runs.append(
            (
                "vote_ring, model's groups",
                partial(DETECTORS[VOTE_RING], dataclasses.replace(inp, groups=graph)),
            )
        )
        print(
            f"N={n:,}: {len(ev):,} evidence rows, {edges.n_edges:,} trust edges, "
            f"{len(labels):,} labels (quality estimate {q_s:.1f} s)",
            flush=True,
        )
        print(f"  the model's closed-group step (global graph): {groups_s:.1f} s", flush=True)
        total = 0.0
        for kind, run in runs:
            gc.collect()
            _trim()
            before = rss_mb()
            _reset_peak()
            t0 = time.perf_counter()
            found = run()
            s = time.perf_counter() - t0
            if kind != VOTE_RING:  # run_scoring hands the model's groups over
                total += s
            flagged = {a for f in found for a in f.accounts}
            note = ""
            if kind == LABEL_SPAM:
                hit = len(flagged & random_labelers)
                note = (
                    f"{hit} of {len(random_labelers)} random labelers, {len(flagged) - hit} others"
                )
            body.append(
                [
                    f"{n:,}",
                    kind,
                    f"{s:.2f}",
                    f"{max(0.0, peak_mb() - before):.0f}",
                    str(len(found)),
                    str(len(flagged)),
                    note,
                ]
            )
            print(f"  {kind}: {s:.2f} s, {len(found)} findings {note}", flush=True)
        body.append([f"{n:,}", "all, as run_scoring runs them", f"{total:.2f}", "", "", "", ""])
        body.append([f"{n:,}", "(model's closed-group step)", f"{groups_s:.2f}", "", "", "", ""])
    print()
    print(
        markdown_table(
            [
                "accounts",
                "detector",
                "seconds",
                "peak RSS growth (MB)",
                "findings",
                "accounts flagged",
                "note",
            ],
            body,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
