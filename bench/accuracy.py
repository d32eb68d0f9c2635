"""Accuracy evaluation (issue 3): does Renown rank attackers low, aggregate labels well,
and keep sybil farms small? Against baselines, on simulated worlds whose truth is known.

    python bench/accuracy.py [--sizes small,default] [--seeds 1,2,3,4,5] [--quick]
                             [--jobs 2] [--json results.json]

For each scenario x size x seed one world is generated (``simulate``), its Kafka messages
are applied to a fresh temporary SQLite database with ``ingest.apply.BatchApplier`` (the
ingest code path minus the consumer: no Kafka is needed), and one scoring epoch is run
with ``renown.bootstrap.run_scoring`` and ``Settings(database_url=..., seeds=<the world's
moderators>)``, every other setting at its default. The global scores are read back with
``storage.scoring_repo.top_scores``. In the same run, on the same world:

Ranking (accounts: the non-seed honest accounts against the scenario's attackers)

* AUC: the probability that a random honest account scores above a random attacker
  (Mann-Whitney U / (n_honest x n_attackers), ties count one half). An account with no
  score counts as 0. Renown ranks by global trust (the score is a monotone function of
  it, clipped at 0 and 100, so trust breaks the ties the score would make);
* top 10 %: of all non-seed accounts of the world ranked by the method, the share of the
  top 10 % (rounded, at least 1) that is malicious (``GroundTruth.malicious()``); ties at
  the cut count in proportion (the expected share under random tie-breaking).

Methods compared for ranking

* ``Renown``: the stored global trust (seeded propagation, label quality, the
  closed-group cut, two-pass distrust);
* ``no distrust``: the same model on the same edges without the distrust edges (an
  ablation, to show what distrust adds);
* ``PageRank``: unseeded PageRank on the same trust edges (Renown's, after label quality,
  decay and diminishing returns): ``TrustMatrix`` with uniform teleport over every account
  and the same alpha;
* ``votes``: raw count of +1 votes and endorsements received, from the messages (a vote
  on content counts once for each of its authors, a label vote for the labeler).

Label accuracy (items: every labeled item; truth: the simulator's gold for every item)

On items whose gold the poster did NOT reveal (the model never saw their answer; the
headline), and on all items (revealed gold is clamped by Renown, so it is right there by
construction). Methods: ``majority`` (``scoring.label_quality.majority_vote``);
``Renown`` (``aggregate_labels(estimate_label_quality(load_labels(...)))``: gold and
reviews); ``Renown gold only`` (the same table without reviews); ``Renown labels only``
(no gold, no reviews); crowd-kit 1.4 ``DS`` (``DawidSkene(n_iter=100)``, no gold) and ``DS
+ gold`` (``true_labels`` = the revealed gold Renown sees), fitted once per label space,
and ``OneCoin DS`` (``OneCoinDawidSkene(n_iter=100)``; it takes no gold), fitted once over
all items, each on a pandas DataFrame worker/task/label of the same labels (see
``_crowdkit`` for why ``DawidSkene`` is split by label space). crowd-kit sees no reviews:
Renown's full column has more information, the ``gold only`` and ``labels only`` columns
are the like-for-like comparisons with ``DS + gold`` and ``DS`` / ``OneCoin DS``.

Sybil resistance (the ``default`` world, or the last of ``--sizes``, with no other
attackers): the sybil region's total share of trust, as the number of attack edges varies
(1, 2, 5, 10, 20 with 20 sybils) and as the number of sybils varies (10, 20, 50, 100
with 3 attack edges), per method, with the trust added per attack edge and per sybil.

Targets of the issue, checked and printed as met / NOT MET at the end:

1. AUC >= 0.95 on every scenario (row) where raw vote counts reach <= 0.6;
2. label accuracy on unrevealed items >= the best crowd-kit Dawid-Skene variant - 0.005;
3. sybil trust grows with attack edges (mean at 20 edges >= 2 x mean at 1 edge) and not
   with sybil count (mean at 100 sybils <= 1.25 x mean at 10 sybils).

Ablations and proposals (printed last): the same AUC and sybil share with one part of
the model changed (``ablation_trust``: the previous model, no closed-group cut, one
distrust pass, teleport 0.3), with how much of the honest order each keeps (Spearman
against Renown) and the share of honest accounts and attackers put in closed groups; and
label accuracy with the aggregation prior ``AGG_PRIOR`` proposes.

``--quick`` (about a minute): small worlds, seeds 1 and 2, sweeps at 1 / 5 / 20 attack
edges and 10 / 50 sybils; it overrides ``--sizes`` and ``--seeds``.

Every number is a mean over seeds +- the sample standard deviation; the target checks use
the means and also print the worst seed. Results are deterministic for given seeds (the
simulator and every model are seeded or deterministic); timings are not.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `python bench/accuracy.py` puts bench/ first on sys.path, where bench/scoring.py would
# shadow the `scoring` package: put the repository root there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterable, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene  # noqa: E402
from scipy.stats import rankdata, spearmanr  # noqa: E402

from ingest.apply import BatchApplier, Message  # noqa: E402
from renown import bootstrap  # noqa: E402
from renown.settings import Settings  # noqa: E402
from scoring.collusion import closed_groups  # noqa: E402
from scoring.evidence import SignedEdges, signed_edges  # noqa: E402
from scoring.label_quality import (  # noqa: E402
    LabelTable,
    aggregate_labels,
    estimate_label_quality,
    majority_vote,
)
from scoring.label_trust import apply_label_quality  # noqa: E402
from scoring.model import GLOBAL_DOMAIN, score_accounts  # noqa: E402
from scoring.propagation import TrustMatrix  # noqa: E402
from simulate.world import (  # noqa: E402
    EVENT_PREFIX,
    LABELS_CONTRACT,
    PRESETS,
    GroundTruth,
    World,
    WorldConfig,
    generate,
)
from storage import migrate  # noqa: E402
from storage.db import make_engine, make_session_factory  # noqa: E402
from storage.scoring_repo import (  # noqa: E402
    latest_event_id,
    load_evidence,
    load_labels,
    top_scores,
)
from storage.uow import UnitOfWork  # noqa: E402

TOPIC = "renown.events"
BATCH = 1000
RANK_METHODS = ("Renown", "no distrust", "PageRank", "votes")
LABEL_METHODS = (
    "majority",
    "DS",
    "DS + gold",
    "OneCoin DS",
    "Renown",
    "Renown gold only",
    "Renown labels only",
)
CROWDKIT = ("DS", "DS + gold", "OneCoin DS")
# Ablations of the model, measured next to it (ablation_trust).
PROPOSALS = ("previous model", "no closed-group cut", "1-pass distrust", "alpha 0.3")
# Label aggregation with an above-chance prior (mean 0.7, four pseudo-labels) instead of
# the chance-centred one, for the item posteriors only ("..., prior 0.7" columns).
AGG_PRIOR = {"prior_mean": 0.7, "prior_strength": 4.0}
EDGE_SWEEP = (1, 2, 5, 10, 20)  # attack edges, with SWEEP_SYBILS sybils
SWEEP_SYBILS = 20
SYBIL_SWEEP = (10, 20, 50, 100)  # sybils, with SWEEP_EDGES attack edges
SWEEP_EDGES = 3
AUC_TARGET = 0.95
VOTES_WEAK = 0.6  # the AUC target applies where raw vote counts are at most this
LABEL_MARGIN = 0.005
EDGE_GROWTH = 2.0  # trust at the most attack edges / at the fewest, at least
SYBIL_GROWTH = 1.25  # trust at the most sybils / at the fewest, at most


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


def _clean(p: WorldConfig) -> WorldConfig:
    """The size's honest marketplace with no attacker at all."""
    return dataclasses.replace(
        p, spammers=0, sybils=0, attack_edges=0, ring=0, serial_voters=0, camouflage=0
    )


Groups = Callable[[GroundTruth], dict[str, list[str]]]


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    world: Callable[[WorldConfig], WorldConfig]  # the size's preset -> this scenario's config
    groups: Groups  # row label -> the attackers scored against the honest accounts
    what: str  # one line, printed before the tables


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "sybil region",
        lambda p: dataclasses.replace(_clean(p), sybils=p.sybils, attack_edges=p.attack_edges),
        lambda t: {"sybils": t.sybils},
        "the preset's sybils and attack edges (small 8 / 2, default 20 / 3), nothing else",
    ),
    Scenario(
        "vote ring",
        lambda p: dataclasses.replace(_clean(p), ring=p.ring),
        lambda t: {"ring": t.ring},
        "the preset's vote ring (small 4, default 6 members)",
    ),
    Scenario(
        "serial voter",
        lambda p: dataclasses.replace(_clean(p), serial_voters=3),
        lambda t: {"serial voters": t.serial_voters},
        "3 serial voters, each pushing one honest target",
    ),
    Scenario(
        "label spammers",
        lambda p: dataclasses.replace(_clean(p), spammers=p.spammers),
        lambda t: {"spammers": t.spammers},
        "the preset's label spammers (small 4, default 10)",
    ),
    Scenario(
        "camouflage",
        lambda p: dataclasses.replace(
            _clean(p), camouflage=p.spammers, sybils=p.sybils // 2, attack_edges=0
        ),
        lambda t: {"camouflaged": t.camouflaged, "their sybils": t.sybils},
        "camouflaged accounts (small 4, default 10) feeding half the preset's sybils, "
        "with no honest attack edge",
    ),
    Scenario(
        "mixed",
        lambda p: p,
        lambda t: {
            "all malicious": sorted(t.malicious()),
            "sybils": t.sybils,
            "ring": t.ring,
            "spammers": t.spammers,
            "serial voters": t.serial_voters,
        },
        "the preset itself: spammers, sybils, ring and a serial voter together",
    ),
)


# --------------------------------------------------------------------------------------
# One world: simulate -> apply -> score -> measure
# --------------------------------------------------------------------------------------


def _messages(world: World) -> list[Message]:
    return [
        Message(TOPIC, 0, i, m.key.encode(), json.dumps(m.value, separators=(",", ":")).encode())
        for i, m in enumerate(world.messages)
    ]


def vote_counts(world: World) -> Counter[str]:
    """+1 votes and endorsements received, straight from the messages."""
    authors: dict[str, list[str]] = {}
    votes: list[dict[str, Any]] = []
    got: Counter[str] = Counter()
    for m in world.messages:
        env = json.loads(m.value["log"][len(EVENT_PREFIX) :])
        if env["standard"] != "renown":
            continue
        for it in env["data"]:
            if env["event"] == "content_authored":
                authors.setdefault(it["content_id"], it["authors"])
            elif env["event"] == "endorsed":
                got[it["endorsee"]] += 1
            elif env["event"] == "vote_cast" and it["value"] == 1:
                votes.append(it)
    for it in votes:
        kind, target = it["target_kind"], it["target"]
        if kind == "account":
            got[target] += 1
        elif kind == "label":
            got[target.split("/")[2]] += 1
        else:
            for a in authors.get(target, []):
                got[a] += 1
    return got


def auc(honest: Sequence[float], attackers: Sequence[float]) -> float:
    """P(honest > attacker) + P(tie) / 2, by ranks (Mann-Whitney U)."""
    if not honest or not attackers:
        return math.nan
    ranks = rankdata(np.concatenate([np.asarray(honest), np.asarray(attackers)]))
    n0, n1 = len(honest), len(attackers)
    u = float(ranks[:n0].sum()) - n0 * (n0 + 1) / 2
    return u / (n0 * n1)


def top_share(scores: dict[str, float], population: Sequence[str], bad: set[str]) -> float:
    """Expected share of ``bad`` accounts in the top 10 % of ``population``."""
    k = max(1, round(0.1 * len(population)))
    values = sorted(((scores.get(a, 0.0), a in bad) for a in population), reverse=True)
    cut = values[k - 1][0]
    above = [b for s, b in values if s > cut]
    tied = [b for s, b in values if s == cut]
    take = k - len(above)
    return (sum(above) + take * sum(tied) / len(tied)) / k


def percentile_among(scores: dict[str, float], who: str, population: Sequence[str]) -> float:
    """100 x share of ``population`` scoring below ``who``, ties counted one half."""
    s = scores.get(who, 0.0)
    below = sum(scores.get(a, 0.0) < s for a in population)
    same = sum(scores.get(a, 0.0) == s for a in population)
    return 100.0 * (below + 0.5 * same) / len(population)


def _crowdkit(table: LabelTable) -> dict[str, list[str | None]]:
    """crowd-kit's aggregations of the same labels.

    ``DawidSkene`` (a full confusion matrix per worker) is fitted once per label space
    (the items of tasks with the same tuple of classes): fitted once over the union of
    every task's classes it swaps classes between spaces (an item labeled "dog" three
    times comes out "positive"), which is a misuse, not the method; that pooled fit is
    kept as ``DS pooled`` for the record. ``OneCoinDawidSkene`` (one accuracy per
    worker) is fitted once over all items, as Renown's one-coin model is.
    """
    df = pd.DataFrame(
        {
            "worker": [table.labelers[i] for i in table.labeler],
            "task": [table.items[i] for i in table.item],
            "label": [str(x) for x in table.label],
        }
    )
    # One key per label space ("" when the task declared none).
    space = pd.Series(["\x1f".join(table.item_classes[i]) for i in table.item], index=df.index)
    gold = {table.items[i]: g for i, g in table.gold.items()}
    preds: dict[str, dict[str, str]] = {"DS": {}, "DS + gold": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas FutureWarnings from inside crowd-kit
        for _, part in df.groupby(space, sort=True):
            part = part.reset_index(drop=True)
            g = {k: v for k, v in gold.items() if k in set(part["task"])}
            preds["DS"].update(DawidSkene(n_iter=100).fit_predict(part).to_dict())
            fitted = DawidSkene(n_iter=100).fit_predict(part, pd.Series(g, dtype=object))
            preds["DS + gold"].update(fitted.to_dict())
        preds["OneCoin DS"] = OneCoinDawidSkene(n_iter=100).fit_predict(df).to_dict()
        preds["DS pooled"] = DawidSkene(n_iter=100).fit_predict(df).to_dict()
    return {name: [p.get(item) for item in table.items] for name, p in preds.items()}


def label_accuracy(table: LabelTable, truth: GroundTruth) -> dict[str, Any]:
    prefix = f"{LABELS_CONTRACT}/"
    right: list[str] = []
    for key in table.items:
        task, item = key[len(prefix) :].split("/")
        right.append(truth.gold[task][item])
    labeled = np.zeros(len(table.items), dtype=bool)
    labeled[np.asarray(table.item, dtype=np.int64)] = True
    hidden = np.array([i not in table.gold for i in range(len(table.items))]) & labeled
    preds: dict[str, list[str | None]] = {
        "majority": majority_vote(table),
        "Renown": aggregate_labels(estimate_label_quality(table)),
        "Renown gold only": aggregate_labels(
            estimate_label_quality(dataclasses.replace(table, reviews=None))
        ),
        "Renown labels only": aggregate_labels(
            estimate_label_quality(dataclasses.replace(table, gold={}, reviews=None))
        ),
        # Proposal: an above-chance prior for aggregation only (see AGG_PRIOR).
        "Renown, prior 0.7": aggregate_labels(estimate_label_quality(table, **AGG_PRIOR)),
        "Renown gold only, prior 0.7": aggregate_labels(
            estimate_label_quality(dataclasses.replace(table, reviews=None), **AGG_PRIOR)
        ),
        "Renown labels only, prior 0.7": aggregate_labels(
            estimate_label_quality(dataclasses.replace(table, gold={}, reviews=None), **AGG_PRIOR)
        ),
        **_crowdkit(table),
    }
    out: dict[str, Any] = {"n_hidden": int(hidden.sum()), "n_all": int(labeled.sum())}
    for name, pred in preds.items():
        ok = np.array([p == r for p, r in zip(pred, right, strict=True)])
        out[f"hidden/{name}"] = float(ok[hidden].mean()) if hidden.any() else math.nan
        out[f"all/{name}"] = float(ok[labeled].mean())
    return out


def ablation_trust(
    signed: SignedEdges, seed_names: Sequence[str], settings: Settings
) -> dict[str, dict[str, float]]:
    """Global trust with one part of the model changed, on the same edges and seeds.

    * ``previous model``: the model before the closed-group cut and the second distrust
      pass (``group_retention=None, distrust_passes=1``: issue 3's first evaluation);
    * ``no closed-group cut``: ``group_retention=None``;
    * ``1-pass distrust``: ``distrust_passes=1``;
    * ``no distrust``: no distrust edges (the cut stays);
    * ``alpha 0.3``: teleport 0.3 instead of 0.15, everything else as Renown.
    """
    base: dict[str, Any] = {
        "alpha": settings.teleport,
        "tol": settings.tolerance,
        "max_iter": settings.max_iterations,
        "distrust": signed.distrust,
        "beta": settings.distrust_weight,
        "group_retention": settings.closed_group_retention or None,
        "distrust_passes": settings.distrust_passes,
    }
    variants: dict[str, dict[str, Any]] = {
        "previous model": {"group_retention": None, "distrust_passes": 1},
        "no closed-group cut": {"group_retention": None},
        "1-pass distrust": {"distrust_passes": 1},
        "no distrust": {"distrust": None},
        "alpha 0.3": {"alpha": 0.3},
    }
    out: dict[str, dict[str, float]] = {}
    for name, change in variants.items():
        rows = score_accounts(signed.trust, seed_names, **(base | change))
        out[name] = {r.account: r.trust for r in rows if r.domain == GLOBAL_DOMAIN}
    return out


def closed_group_members(
    signed: SignedEdges, seed_names: Sequence[str], settings: Settings
) -> set[str]:
    """Accounts the closed-group cut puts in a closed group of the global graph."""
    t = signed.trust
    n = len(t.accounts)
    if not settings.closed_group_retention:
        return set()
    index = {a: i for i, a in enumerate(t.accounts)}
    seeds = np.array(sorted({index[a] for a in seed_names if a in index}), dtype=np.int64)
    trust = TrustMatrix.from_edges(n, t.src, t.dst, t.weight).propagate(
        seeds, alpha=settings.teleport, tol=settings.tolerance
    ).trust
    groups = closed_groups(
        n, t.src, t.dst, t.weight, trust, seeds, retention=settings.closed_group_retention
    )
    return {t.accounts[i] for i in np.flatnonzero(groups.group >= 0).tolist()}


def run_world(job: dict[str, Any]) -> dict[str, Any]:
    """Everything measured on one world (runs in a worker process)."""
    started = time.perf_counter()
    cfg: WorldConfig = job["config"]
    world = generate(cfg)
    truth = world.truth
    with tempfile.TemporaryDirectory(prefix="renown-accuracy-") as tmp:
        url = f"sqlite:///{tmp}/renown.db"
        engine = make_engine(url)
        migrate.upgrade(engine)
        applier = BatchApplier(make_session_factory(engine, writer=True), "accuracy-bench")
        msgs = _messages(world)
        applied = 0
        for i in range(0, len(msgs), BATCH):
            res = applier.apply(msgs[i : i + BATCH])
            if res.dead or res.skipped:
                raise RuntimeError(f"{len(res.dead)} dead letters, {res.skipped} skipped")
            applied += res.events
        engine.dispose()
        settings = Settings(database_url=url, seeds=truth.seeds)
        db = bootstrap.open_database(settings)
        try:
            summary = bootstrap.run_scoring(settings, db)
            with UnitOfWork(db.sessions) as uow:
                rows = top_scores(uow.session, summary.epoch, GLOBAL_DOMAIN, 10**9)
                through = latest_event_id(uow.session)
                evidence = load_evidence(uow.session, through)
                table = load_labels(uow.session, through)
        finally:
            db.close()
    scored = time.perf_counter()

    # The same trust edges run_scoring built, for the ablation and unseeded PageRank.
    quality = estimate_label_quality(table)
    signed = signed_edges(
        apply_label_quality(evidence, table, quality),
        half_life_days=settings.decay_half_life_days,
    )
    edges = signed.trust
    n = len(edges.accounts)
    matrix = TrustMatrix.from_edges(n, edges.src, edges.dst, edges.weight)
    kw = {"alpha": settings.teleport, "tol": settings.tolerance}
    unseeded = matrix.propagate(np.arange(n), **kw).trust
    votes = vote_counts(world)
    proposals = ablation_trust(signed, truth.seeds, settings)
    scores: dict[str, dict[str, float]] = {
        "Renown": {r.account: r.trust for r in rows},
        "no distrust": proposals["no distrust"],
        "PageRank": dict(zip(edges.accounts, unseeded.tolist(), strict=True)),
        "votes": {a: float(v) for a, v in votes.items()},
    }

    seeds = set(truth.seeds)
    honest = [a for a in truth.honest if a not in seeds]
    bad = truth.malicious()
    population = honest + sorted(bad)
    out: dict[str, Any] = {
        "kind": job["kind"],
        "scenario": job.get("scenario"),
        "size": job.get("size"),
        "seed": cfg.seed,
        "point": job.get("point"),
        "messages": len(world.messages),
        "events": applied,
        "accounts": len(rows),
        "edges": summary.edges,
    }
    total = {m: sum(s.values()) for m, s in scores.items()}
    total.update({m: sum(s.values()) for m, s in proposals.items()})
    out["sybil_share"] = {
        m: sum(s.get(a, 0.0) for a in truth.sybils) / total[m] if total[m] else 0.0
        for m, s in (scores | proposals).items()
    }
    renown = scores["Renown"]
    out["sybil_trust"] = sum(renown.get(a, 0.0) for a in truth.sybils)
    out["honest_mean_trust"] = statistics.fmean(renown.get(a, 0.0) for a in honest)
    if job["kind"] == "scenario":
        groups = next(sc for sc in SCENARIOS if sc.name == job["scenario"]).groups(truth)
        out["auc"] = {
            g: {
                m: auc([s.get(a, 0.0) for a in honest], [s.get(a, 0.0) for a in members])
                for m, s in scores.items()
            }
            for g, members in groups.items()
        }
        out["top10"] = {m: top_share(s, population, bad) for m, s in scores.items()}
        out["proposal_auc"] = {
            g: {
                m: auc([s.get(a, 0.0) for a in honest], [s.get(a, 0.0) for a in members])
                for m, s in (proposals | {"Renown": renown}).items()
            }
            for g, members in groups.items()
        }
        grouped = closed_group_members(signed, truth.seeds, settings)
        out["closed_group"] = {
            "honest": statistics.fmean(a in grouped for a in honest),
            "malicious": statistics.fmean(a in grouped for a in bad) if bad else math.nan,
        }
        base = [renown.get(a, 0.0) for a in honest]
        out["proposal_honest_order"] = {
            m: float(spearmanr(base, [s.get(a, 0.0) for a in honest]).statistic)
            for m, s in proposals.items()
        }
        if truth.serial_targets:
            out["serial_target_pct"] = {
                m: statistics.fmean(percentile_among(s, t, honest) for t in truth.serial_targets)
                for m, s in scores.items()
            }
        if truth.camouflaged:
            est = [quality.accuracy_of(a) for a in truth.camouflaged]
            hon = [quality.accuracy_of(a) for a in honest]
            out["camouflage_quality"] = {
                "estimated": statistics.fmean(x for x in est if x is not None),
                "true": statistics.fmean(truth.skill[a] for a in truth.camouflaged),
                "honest estimated (median)": statistics.median(x for x in hon if x is not None),
            }
        out["labels"] = label_accuracy(table, truth)
    out["seconds"] = {"score": scored - started, "total": time.perf_counter() - started}
    return out


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return math.nan, math.nan
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def fmt(values: Iterable[float], digits: int = 3, scale: float = 1.0) -> str:
    m, s = mean_sd(values)
    if math.isnan(m):
        return "-"
    return f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(r) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def by(results: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in results if all(r.get(k) == v for k, v in match.items())]


def report(results: list[dict[str, Any]], sizes: Sequence[str], seeds: Sequence[int]) -> bool:
    worlds = [r for r in results if r["kind"] == "scenario"]
    print("\nScenarios (each the size's preset with every attacker removed, then these added):")
    for sc in SCENARIOS:
        print(f"  {sc.name}: {sc.what}")
    print(f"\nSeeds {', '.join(map(str, seeds))}; every cell is mean ± sd over seeds.\n")

    # ---- ranking
    print("## AUC: honest (non-seed) above attackers; 1 = perfect, 0.5 = chance\n")
    auc_rows, auc_fail = [], []
    for size in sizes:
        for sc in SCENARIOS:
            rs = by(worlds, scenario=sc.name, size=size)
            if not rs:
                continue
            for group in rs[0]["auc"]:
                cells = {m: [r["auc"][group][m] for r in rs] for m in RANK_METHODS}
                auc_rows.append(
                    [f"{sc.name}: {group}", size, *(fmt(cells[m]) for m in RANK_METHODS)]
                )
                votes_m = mean_sd(cells["votes"])[0]
                renown_m = mean_sd(cells["Renown"])[0]
                if votes_m <= VOTES_WEAK:
                    ok = renown_m >= AUC_TARGET
                    auc_fail.append(
                        (
                            f"{sc.name}: {group} ({size})",
                            renown_m,
                            min(cells["Renown"]),
                            votes_m,
                            ok,
                        )
                    )
    print(table(["scenario: attackers", "size", *RANK_METHODS], auc_rows))

    print("\n## Share of the top 10 % (all non-seed accounts) that is malicious\n")
    rows = []
    for size in sizes:
        for sc in SCENARIOS:
            rs = by(worlds, scenario=sc.name, size=size)
            if rs:
                rows.append(
                    [sc.name, size, *(fmt([r["top10"][m] for r in rs]) for m in RANK_METHODS)]
                )
    print(table(["scenario", "size", *RANK_METHODS], rows))

    rows = []
    for size in sizes:
        rs = [r for r in by(worlds, size=size) if "serial_target_pct" in r]
        for sc in SCENARIOS:
            part = [r for r in rs if r["scenario"] == sc.name]
            if part:
                rows.append(
                    [
                        sc.name,
                        size,
                        *(fmt([r["serial_target_pct"][m] for r in part], 1) for m in RANK_METHODS),
                    ]
                )
    if rows:
        print("\n## Serial voters' targets (honest): percentile among non-seed honest accounts\n")
        print(table(["scenario", "size", *RANK_METHODS], rows))

    rows = []
    for size in sizes:
        for r in by(worlds, scenario="camouflage", size=size):
            q = r["camouflage_quality"]
            rows.append(
                [
                    size,
                    str(r["seed"]),
                    f"{q['true']:.3f}",
                    f"{q['estimated']:.3f}",
                    f"{q['honest estimated (median)']:.3f}",
                ]
            )
    if rows:
        print("\n## Camouflaged labelers: Renown's accuracy estimate against their agreement\n")
        header = ["size", "seed", "true agreement", "estimated", "honest estimated (median)"]
        print(table(header, rows))

    # ---- labels
    label_fail = []
    for which, title in (
        ("hidden", "items whose gold was NOT revealed to the model"),
        ("all", "all labeled items (revealed gold is clamped by Renown)"),
    ):
        print(f"\n## Label accuracy: {title}\n")
        rows = []
        for size in sizes:
            for sc in SCENARIOS:
                rs = by(worlds, scenario=sc.name, size=size)
                if not rs:
                    continue
                n = statistics.fmean(r["labels"][f"n_{which}"] for r in rs)
                cells = {m: [r["labels"][f"{which}/{m}"] for r in rs] for m in LABEL_METHODS}
                rows.append([sc.name, size, f"{n:.0f}", *(fmt(cells[m]) for m in LABEL_METHODS)])
                if which == "hidden":
                    best = max(CROWDKIT, key=lambda m: mean_sd(cells[m])[0])
                    ours, theirs = mean_sd(cells["Renown"])[0], mean_sd(cells[best])[0]
                    diff = [a - b for a, b in zip(cells["Renown"], cells[best], strict=True)]
                    ok = ours >= theirs - LABEL_MARGIN
                    label_fail.append((f"{sc.name} ({size})", ours, theirs, best, ok, diff))
        print(table(["scenario", "size", "items", *LABEL_METHODS], rows))
        pooled = [r["labels"][f"{which}/DS pooled"] for r in worlds]
        print(
            f"\n(crowd-kit DawidSkene fitted once over every label space, not per space: "
            f"{fmt(pooled)} over all these worlds; see the docstring of _crowdkit.)"
        )

    # ---- sybils
    sweeps = [r for r in results if r["kind"] != "scenario"]
    sybil_ok: list[tuple[str, bool, str]] = []
    for kind, label, xs, fixed in (
        ("edges", "attack edges", EDGE_SWEEP, f"{SWEEP_SYBILS} sybils"),
        ("sybils", "sybils", SYBIL_SWEEP, f"{SWEEP_EDGES} attack edges"),
    ):
        rs_all = [r for r in sweeps if r["kind"] == kind]
        if not rs_all:
            continue
        xs = [x for x in xs if by(rs_all, point=x)]
        print(f"\n## Sybil region's share of all trust (%), {label} varied, {fixed}\n")
        rows = []
        for x in xs:
            rs = by(rs_all, point=x)
            equiv = [r["sybil_trust"] / r["honest_mean_trust"] for r in rs]
            rows.append(
                [
                    str(x),
                    *(fmt([r["sybil_share"][m] for r in rs], 3, 100) for m in RANK_METHODS),
                    fmt(equiv, 2),
                ]
            )
        print(table([label, *RANK_METHODS, "Renown: in honest accounts"], rows))
        print(f"\nAdded share of trust (percentage points) per added {label[:-1]}:\n")
        rows = []
        for a, b in itertools.pairwise(xs):
            cells = []
            for m in RANK_METHODS:
                da = statistics.fmean(r["sybil_share"][m] for r in by(rs_all, point=a))
                db_ = statistics.fmean(r["sybil_share"][m] for r in by(rs_all, point=b))
                cells.append(f"{100 * (db_ - da) / (b - a):+.4f}")
            rows.append([f"{a} -> {b}", *cells])
        print(table([label, *RANK_METHODS], rows))
        lo = statistics.fmean(r["sybil_share"]["Renown"] for r in by(rs_all, point=xs[0]))
        hi = statistics.fmean(r["sybil_share"]["Renown"] for r in by(rs_all, point=xs[-1]))
        ratio = hi / lo if lo else math.inf
        if kind == "edges":
            ok = ratio >= EDGE_GROWTH
            sybil_ok.append(
                (
                    f"grows with attack edges ({xs[-1]} vs {xs[0]}: x{ratio:.2f}, "
                    f"target >= x{EDGE_GROWTH})",
                    ok,
                    kind,
                )
            )
        else:
            ok = ratio <= SYBIL_GROWTH
            sybil_ok.append(
                (
                    f"does not grow with sybil count ({xs[-1]} vs {xs[0]}: x{ratio:.2f}, "
                    f"target <= x{SYBIL_GROWTH})",
                    ok,
                    kind,
                )
            )

    # ---- targets
    print("\n## Targets\n")
    all_ok = True
    print(f"1. AUC >= {AUC_TARGET} wherever raw vote counts reach <= {VOTES_WEAK}:")
    if not auc_fail:
        print("   (no row where votes are that weak)")
    for name, m, worst, votes_m, ok in auc_fail:
        all_ok &= ok
        verdict = "met" if ok else "NOT MET"
        print(
            f"   {verdict:7} {name}: Renown {m:.3f} (worst seed {worst:.3f}), votes {votes_m:.3f}"
        )
    print(f"2. label accuracy (unrevealed items) >= best crowd-kit DS - {LABEL_MARGIN}:")
    for name, ours, theirs, best, ok, diff in label_fail:
        all_ok &= ok
        verdict = "met" if ok else "NOT MET"
        print(
            f"   {verdict:7} {name}: Renown {ours:.3f}, {best} {theirs:.3f} "
            f"(paired difference per seed {fmt(diff)})"
        )
    print("3. sybil trust:")
    for text, ok, _ in sybil_ok:
        all_ok &= ok
        print(f"   {'met' if ok else 'NOT MET':7} {text}")
    report_proposals(worlds, sweeps, sizes)
    return all_ok


def report_proposals(
    worlds: list[dict[str, Any]], sweeps: list[dict[str, Any]], sizes: Sequence[str]
) -> None:
    print("\n## Ablations: Renown with one part changed (see ablation_trust)\n")
    print("AUC, as above:\n")
    cols = ("Renown", *PROPOSALS)
    rows = []
    for size in sizes:
        for sc in SCENARIOS:
            rs = by(worlds, scenario=sc.name, size=size)
            for group in rs[0]["proposal_auc"] if rs else ():
                cells = [fmt([r["proposal_auc"][group][m] for r in rs]) for m in cols]
                rows.append([f"{sc.name}: {group}", size, *cells])
        rs = by(worlds, size=size)
        if rs:
            cells = [fmt([r["proposal_honest_order"][m] for r in rs]) for m in PROPOSALS]
            rows.append(["honest order kept (Spearman vs Renown)", size, "1", *cells])
            honest_in = fmt([r["closed_group"]["honest"] for r in rs])
            bad_in = fmt([r["closed_group"]["malicious"] for r in rs])
            rows.append(["honest accounts in closed groups", size, honest_in, "", "", "", ""])
            rows.append(["attackers in closed groups", size, bad_in, "", "", "", ""])
    print(table(["scenario: attackers", "size", *cols], rows))
    for kind, label in (("edges", "attack edges"), ("sybils", "sybils")):
        rs_all = [r for r in sweeps if r["kind"] == kind]
        if not rs_all:
            continue
        points = sorted({r["point"] for r in rs_all})
        print(f"\nSybil region's share of all trust (%), {label} varied:\n")
        rows = [
            [
                str(x),
                *(fmt([r["sybil_share"][m] for r in by(rs_all, point=x)], 3, 100) for m in cols),
            ]
            for x in points
        ]
        print(table([label, *cols], rows))
    print(
        "\nLabel accuracy on unrevealed items, with an aggregation prior of mean 0.7, weight 4:\n"
    )
    cols_l = (
        "Renown",
        "Renown, prior 0.7",
        "Renown gold only",
        "Renown gold only, prior 0.7",
        "Renown labels only",
        "Renown labels only, prior 0.7",
        "OneCoin DS",
    )
    rows = []
    for size in sizes:
        for sc in SCENARIOS:
            rs = by(worlds, scenario=sc.name, size=size)
            if rs:
                rows.append(
                    [
                        sc.name,
                        size,
                        *(fmt([r["labels"][f"hidden/{m}"] for r in rs]) for m in cols_l),
                    ]
                )
    print(table(["scenario", "size", *cols_l], rows))


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def jobs_for(
    sizes: Sequence[str],
    seeds: Sequence[int],
    sweep_size: str,
    edge_sweep: Sequence[int],
    sybil_sweep: Sequence[int],
) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for size in sizes:
        for sc in SCENARIOS:
            for seed in seeds:
                cfg = dataclasses.replace(sc.world(PRESETS[size]), seed=seed)
                jobs.append({"kind": "scenario", "scenario": sc.name, "size": size, "config": cfg})
    base = _clean(PRESETS[sweep_size])
    for seed in seeds:
        for e in edge_sweep:
            cfg = dataclasses.replace(base, seed=seed, sybils=SWEEP_SYBILS, attack_edges=e)
            jobs.append({"kind": "edges", "size": sweep_size, "point": e, "config": cfg})
        for k in sybil_sweep:
            cfg = dataclasses.replace(base, seed=seed, sybils=k, attack_edges=SWEEP_EDGES)
            jobs.append({"kind": "sybils", "size": sweep_size, "point": k, "config": cfg})
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="small,default", help="presets, comma-separated")
    ap.add_argument("--seeds", default="1,2,3,4,5", help="world seeds, comma-separated")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small worlds, seeds 1,2, sweeps 1/5/20 edges and 10/50 sybils (about a minute)",
    )
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", help="also write every per-world result to this file")
    args = ap.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    edge_sweep, sybil_sweep = EDGE_SWEEP, SYBIL_SWEEP
    if args.quick:
        sizes, seeds, edge_sweep, sybil_sweep = ["small"], [1, 2], (1, 5, 20), (10, 50)
    for s in sizes:
        if s not in PRESETS or s == "tiny":
            raise SystemExit(f"unknown or too small size {s!r}: use small, default or large")
    jobs = jobs_for(sizes, seeds, sizes[-1], edge_sweep, sybil_sweep)
    started = time.perf_counter()
    print(
        f"{len(jobs)} worlds: {len(SCENARIOS)} scenarios x sizes {','.join(sizes)} x seeds "
        f"{','.join(map(str, seeds))}, plus sybil sweeps on {sizes[-1]}; {args.jobs} processes. "
        "Messages are applied with BatchApplier to temporary SQLite files: no Kafka."
    )
    results: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for r in pool.map(run_world, jobs):
            results.append(r)
            where = r["scenario"] or f"{r['kind']}={r['point']}"
            print(
                f"  [{time.perf_counter() - started:6.1f} s] {where} {r['size']} seed {r['seed']}: "
                f"{r['messages']:,} messages, {r['accounts']} scored, "
                f"{r['seconds']['total']:.1f} s",
                flush=True,
            )
    ok = report(results, sizes, seeds)
    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} worlds in {elapsed:.0f} s; all targets met: {'yes' if ok else 'no'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
