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
and the number of findings. Nothing here is attacked on purpose: the findings on such a
structureless graph are false positives by construction, or random labelers for the
label-spam detector.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence

import numpy as np

from bench.scoring import _reset_peak, _trim, make_rows, peak_mb, rss_mb
from bench.tables import markdown_table
from scoring.detect import DETECTORS, DetectorInput
from scoring.events import ENDORSE, VOTE_ACCOUNT
from scoring.evidence import KINDS, Evidence, signed_edges
from scoring.label_quality import LabelTable, ReviewTable, estimate_label_quality

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


def labels_of(accounts: list[str], n_labels: int, seed: int = 9) -> LabelTable:
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
    return LabelTable(
        labelers=[accounts[i] for i in labeler_ids.tolist()],
        items=[f"task/{i}" for i in range(n_items)],
        item_domain=["general"] * n_items,
        item_classes=classes,
        item=item.astype(np.int32),
        labeler=who.astype(np.int32),
        label=[classes[i][a] for i, a in zip(item.tolist(), answer.tolist(), strict=True)],
        gold={int(i): classes[int(i)][int(truth[i])] for i in gold_items.tolist()},
        reviews=ReviewTable.empty(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--rows-per-account", type=int, default=10)
    args = p.parse_args(argv)
    body: list[list[str]] = []
    for n in [int(x) for x in args.sizes.split(",")]:
        ev, seeds = evidence_of(n, args.rows_per_account)
        edges = signed_edges(ev, half_life_days=180).trust
        labels = labels_of(ev.accounts, n // 2)
        t0 = time.perf_counter()
        quality = estimate_label_quality(labels)
        q_s = time.perf_counter() - t0
        inp = DetectorInput(evidence=ev, labels=labels, quality=quality, edges=edges, seeds=seeds)
        print(
            f"N={n:,}: {len(ev):,} evidence rows, {edges.n_edges:,} trust edges, "
            f"{len(labels):,} labels (quality estimate {q_s:.1f} s)",
            flush=True,
        )
        total = 0.0
        for kind in sorted(DETECTORS):
            gc.collect()
            _trim()
            before = rss_mb()
            _reset_peak()
            t0 = time.perf_counter()
            found = DETECTORS[kind](inp)
            s = time.perf_counter() - t0
            total += s
            accounts = len({a for f in found for a in f.accounts})
            body.append(
                [
                    f"{n:,}",
                    kind,
                    f"{s:.2f}",
                    f"{max(0.0, peak_mb() - before):.0f}",
                    str(len(found)),
                    str(accounts),
                ]
            )
            print(f"  {kind}: {s:.2f} s, {len(found)} findings", flush=True)
        body.append([f"{n:,}", "all", f"{total:.2f}", "", "", ""])
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
            ],
            body,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
