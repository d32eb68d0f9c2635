"""Detector evaluation: precision and recall of each abuse detector on simulated worlds,
its false-positive rate on honest-only worlds, and what confirming its true flags does to
the ranking.

    python -m bench.detection [--sizes small,default] [--seeds 1,2,3] [--workers 2]
                              [--json results.json]

For each scenario x size x seed one world is generated (``simulate``), applied through the
ingest code path to a fresh temporary SQLite database (``ingest.apply.BatchApplier``, as
``bench/accuracy.py`` does: no Kafka) and scored with ``renown.bootstrap.run_scoring`` and
``Settings(database_url=..., seeds=<the world's moderators>, moderators=["bench"])``,
every other setting at its default: every detector registered in
``scoring.detect.DETECTORS`` runs and its new findings are stored as flags. The flags are
read back with ``moderation.service.list_flags``.

Scenarios: ``honest only`` (the size's preset with every attacker removed,
``bench.accuracy._clean``), the scenarios of ``bench.accuracy.SCENARIOS`` (sybil region,
vote ring, serial voter, label spammers, camouflage, mixed) and ``burst`` (the honest
world with ``WorldConfig.bursts`` = 2 crews of fresh accounts, when the simulator has the
field).

Measurements (account level; a detector's *flagged set* is the union of the flagged
accounts of its flags; beneficiaries, such as a serial voter's target, are not flagged):

* precision = |flagged & positives| / |flagged|, recall = |flagged & positives| /
  |positives|, of each detector on its own scenario, whose positives are
  ``serial_voting``: the serial voters, ``vote_ring``: the ring, ``sybil_cluster``: the
  sybils, ``label_spam``: the spammers, ``burst``: the burst crews' accounts;
* false-positive rate on honest-only worlds: flagged honest accounts / honest accounts,
  per detector and for all detectors together;
* on every scenario, the honest accounts each detector flags (cross-scenario false
  positives), and on ``mixed`` each detector's precision against all malicious accounts;
* the effect of confirming the true flags: after epoch 1, every open flag whose flagged
  accounts are all malicious is confirmed (moderator ``bench``; the kind's default
  sanction, ``scoring.sanctions.DEFAULT_FACTORS``), every other one dismissed, and a second
  epoch is scored; the AUC of each attacker group of ``bench.accuracy.SCENARIOS`` against
  the honest non-seed accounts (global trust, an account with no score counts as 0) and
  the malicious share of the top 10 %, at epoch 1 (before) and epoch 2 (after); and the
  same confirmations with a score factor of 0 (the flagged accounts' own trust removed too,
  ``renown flags confirm --score-factor 0``) on a copy of the epoch-1 database.

Detectors not registered when the benchmark runs are reported as ``not built``; a
detector that raises is reported with its error (``EpochSummary.detector_errors``).

Targets (checked on the mean over seeds of each size, printed as met / NOT MET; the exit
code is 0 either way, this is a measurement): precision >= 0.9 and recall >= 0.8 of each
detector on its own scenario; false-positive rate <= 1 % on honest-only worlds.

Every number is a mean over seeds ± the sample standard deviation; a precision is
undefined for a world where the detector flags nobody (left out of the mean, and counted
in the ``no flags`` column). Results are deterministic for given seeds; timings are not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from bench.accuracy import (
    BATCH,
    SCENARIOS,
    Scenario,
    _clean,
    _messages,
    auc,
    by,
    fmt,
    mean_sd,
    percentile_among,
    table,
    top_share,
)
from ingest.apply import BatchApplier
from moderation import service
from moderation.service import FlagView
from renown import bootstrap
from renown.settings import Settings
from scoring.detect import DETECTORS
from scoring.model import GLOBAL_DOMAIN
from simulate.world import PRESETS, GroundTruth, World, WorldConfig, generate
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.scoring_repo import top_scores
from storage.uow import UnitOfWork

MODERATOR = "bench"
CONFIRM_REASON = "bench: true flag"
DISMISS_REASON = "bench: not all flagged accounts are malicious"
PAGE = 1000
PRECISION_TARGET = 0.9
RECALL_TARGET = 0.8
FP_TARGET = 0.01
BURSTS = 2  # burst crews in the burst scenario
HONEST = "honest only"
BURST = "burst"
ALL = "all detectors"


def _burst_accounts(t: GroundTruth) -> list[str]:
    return list(getattr(t, "burst_accounts", []))


def _burst_targets(t: GroundTruth) -> list[str]:
    return list(getattr(t, "burst_targets", []))


#: Each detector kind -> (its own scenario, its positives there).
OWN: dict[str, tuple[str, Callable[[GroundTruth], list[str]]]] = {
    "serial_voting": ("serial voter", lambda t: t.serial_voters),
    "vote_ring": ("vote ring", lambda t: t.ring),
    "sybil_cluster": ("sybil region", lambda t: t.sybils),
    "label_spam": ("label spammers", lambda t: t.spammers),
    "burst": (BURST, _burst_accounts),
}
KINDS = tuple(OWN)


def has_bursts() -> bool:
    """Whether the simulator can generate bursts (``WorldConfig.bursts``)."""
    return "bursts" in {f.name for f in dataclasses.fields(WorldConfig)}


def malicious(t: GroundTruth) -> set[str]:
    return t.malicious() | set(_burst_accounts(t))


def scenarios() -> tuple[Scenario, ...]:
    """Honest only, bench.accuracy's scenarios, and the burst scenario when it exists."""
    out = [
        Scenario(HONEST, _clean, lambda t: {}, "the preset with every attacker removed"),
        *SCENARIOS,
    ]
    if has_bursts():
        out.append(
            Scenario(
                BURST,
                lambda p: dataclasses.replace(_clean(p), bursts=BURSTS),
                lambda t: {"burst accounts": _burst_accounts(t)},
                f"{BURSTS} burst crews of fresh accounts, each pushing one honest target",
            )
        )
    return tuple(out)


def scenario(name: str) -> Scenario:
    return next(sc for sc in scenarios() if sc.name == name)


# --------------------------------------------------------------------------------------
# One world: simulate -> apply -> score (epoch 1) -> confirm -> score (epoch 2) -> measure
# --------------------------------------------------------------------------------------


def _ingest(world: World, url: str) -> int:
    """Apply the world's messages to the (new) database at ``url``; events applied."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        applier = BatchApplier(make_session_factory(engine, writer=True), "detection-bench")
        msgs = _messages(world)
        applied = 0
        for i in range(0, len(msgs), BATCH):
            res = applier.apply(msgs[i : i + BATCH])
            if res.dead or res.skipped:
                raise RuntimeError(f"{len(res.dead)} dead letters, {res.skipped} skipped")
            applied += res.events
        return applied
    finally:
        engine.dispose()


def all_flags(db: bootstrap.Database) -> list[FlagView]:
    """Every flag in the database, page by page."""
    out: list[FlagView] = []
    while True:
        page, total = service.list_flags(db.writer_sessions, limit=PAGE, offset=len(out))
        out.extend(page)
        if not page or len(out) >= total:
            return out


def global_trust(db: bootstrap.Database, epoch: int) -> dict[str, float]:
    with UnitOfWork(db.sessions) as uow:
        rows = top_scores(uow.session, epoch, GLOBAL_DOMAIN, 10**9)
    return {r.account: r.trust for r in rows}


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _role(t: GroundTruth, account: str) -> str:
    if account in t.seeds:
        return "seed"
    if account in t.serial_targets:
        return "serial target"
    if account in _burst_targets(t):
        return "burst target"
    return "honest"


def measure_flags(
    flags: Sequence[FlagView], truth: GroundTruth, scenario_name: str, kinds: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Per detector kind: flags, flagged accounts, honest ones (named), precision against
    all malicious accounts, and on its own scenario precision and recall."""
    honest, bad = set(truth.honest), malicious(truth)
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        mine = [f for f in flags if f.kind == kind]
        flagged = {a for f in mine for a in f.flagged}
        hit = sorted(flagged & honest)
        m: dict[str, Any] = {
            "flags": len(mine),
            "flagged": len(flagged),
            "malicious": len(flagged & bad),
            "other": len(flagged - honest - bad),
            "honest": len(hit),
            "honest_accounts": {a: _role(truth, a) for a in hit},
            "fp_rate": _ratio(len(hit), len(honest)),
            "precision_malicious": _ratio(len(flagged & bad), len(flagged)),
        }
        if kind in OWN:
            positives = set(OWN[kind][1](truth))
            m["positives"] = len(positives)
            m["precision"] = _ratio(len(flagged & positives), len(flagged))
            m["recall"] = _ratio(len(flagged & positives), len(positives))
            m["own"] = OWN[kind][0] == scenario_name
        out[kind] = m
    flagged_all = {a for f in flags for a in f.flagged}
    out[ALL] = {
        "flags": len(flags),
        "flagged": len(flagged_all),
        "malicious": len(flagged_all & bad),
        "honest": len(flagged_all & honest),
        "fp_rate": _ratio(len(flagged_all & honest), len(honest)),
        "precision_malicious": _ratio(len(flagged_all & bad), len(flagged_all)),
        "recall_malicious": _ratio(len(flagged_all & bad), len(bad)),
    }
    return out


def decide_flags(
    db: bootstrap.Database,
    flags: Sequence[FlagView],
    bad: set[str],
    score_factor: float | None = None,
) -> dict[str, dict[str, int]]:
    """Confirm every open flag whose flagged accounts are all malicious (with the kind's
    default factors, and ``score_factor`` when given), dismiss the rest; per kind, how
    many of each."""
    out: dict[str, dict[str, int]] = {}
    for f in flags:
        if f.status != "open":
            continue
        counts = out.setdefault(f.kind, {"confirmed": 0, "dismissed": 0})
        if f.flagged and set(f.flagged) <= bad:
            service.confirm(
                db.writer_sessions,
                f.id,
                moderator=MODERATOR,
                reason=CONFIRM_REASON,
                moderators=[MODERATOR],
                score_factor=score_factor,
            )
            counts["confirmed"] += 1
        else:
            service.dismiss(
                db.writer_sessions,
                f.id,
                moderator=MODERATOR,
                reason=DISMISS_REASON,
                moderators=[MODERATOR],
            )
            counts["dismissed"] += 1
    return out


def ranking(
    scores: dict[str, float], truth: GroundTruth, groups: dict[str, list[str]]
) -> dict[str, Any]:
    """AUC of each group against the honest non-seed accounts, each group's share of all
    trust, the top 10 % share, and the beneficiaries' (serial and burst targets')
    percentile among the honest non-seed accounts."""
    seeds = set(truth.seeds)
    honest = [a for a in truth.honest if a not in seeds]
    bad = malicious(truth)
    base = [scores.get(a, 0.0) for a in honest]
    total = sum(scores.values()) or 1.0
    targets = [*truth.serial_targets, *_burst_targets(truth)]
    return {
        "auc": {
            g: auc(base, [scores.get(a, 0.0) for a in members]) for g, members in groups.items()
        },
        "share": {
            g: sum(scores.get(a, 0.0) for a in members) / total for g, members in groups.items()
        },
        "top10": top_share(scores, honest + sorted(bad), bad) if bad else math.nan,
        "target_pct": (
            statistics.fmean(percentile_among(scores, t, honest) for t in targets)
            if targets
            else math.nan
        ),
    }


def run_world(job: dict[str, Any]) -> dict[str, Any]:
    """Everything measured on one world (runs in a worker process, or in-process)."""
    started = time.perf_counter()
    cfg: WorldConfig = job["config"]
    sc = scenario(job["scenario"])
    world = generate(cfg)
    truth = world.truth
    bad = malicious(truth)
    groups = {g: list(m) for g, m in sc.groups(truth).items() if m}
    out: dict[str, Any] = {
        "scenario": sc.name,
        "size": job["size"],
        "seed": cfg.seed,
        "messages": len(world.messages),
        "honest": len(truth.honest),
        "malicious": len(bad),
        "registered": sorted(DETECTORS),
    }
    with tempfile.TemporaryDirectory(prefix="renown-detection-") as tmp:
        url = f"sqlite:///{tmp}/renown.db"
        out["events"] = _ingest(world, url)
        settings = Settings(database_url=url, seeds=truth.seeds, moderators=[MODERATOR])
        out["detectors"] = list(settings.detectors)
        db = bootstrap.open_database(settings)
        try:
            first = bootstrap.run_scoring(settings, db)
            flags = all_flags(db)
            before = global_trust(db, first.epoch)
            out["accounts"] = first.accounts
            out["detector_errors"] = dict(first.detector_errors)
            out["kinds"] = measure_flags(flags, truth, sc.name, settings.detectors)
        finally:
            db.close()
        scored = time.perf_counter()
        if bad:
            # The same epoch-1 database twice: the true flags confirmed with the default
            # factors (what a flag gives is taken), and with a score factor of 0 too.
            shutil.copyfile(f"{tmp}/renown.db", f"{tmp}/held.db")
            out["before"] = ranking(before, truth, groups)
            for key, db_file, held in (("after", "renown.db", None), ("held", "held.db", 0.0)):
                s = settings.model_copy(update={"database_url": f"sqlite:///{tmp}/{db_file}"})
                db = bootstrap.open_database(s)
                try:
                    decisions = decide_flags(db, flags, bad, held)
                    second = bootstrap.run_scoring(s, db)
                    out[key] = ranking(global_trust(db, second.epoch), truth, groups)
                finally:
                    db.close()
                if held is None:
                    out["decisions"] = decisions
                    out["new_flags_epoch2"] = len(second.flags_raised)
                    out["sanctions"] = len(second.sanctions)
    out["seconds"] = {"epoch1": scored - started, "total": time.perf_counter() - started}
    return out


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _values(rs: Sequence[dict[str, Any]], kind: str, key: str) -> list[float]:
    return [float(r["kinds"][kind][key]) for r in rs if kind in r["kinds"]]


def _no_flags(rs: Sequence[dict[str, Any]], kind: str) -> int:
    return sum(1 for r in rs if kind in r["kinds"] and r["kinds"][kind]["flagged"] == 0)


def _pct(values: Iterable[float]) -> str:
    return fmt(values, 2, 100)


def _status(results: Sequence[dict[str, Any]], kind: str) -> str | None:
    """None when the detector ran in every world, else why it has no numbers."""
    if not any(kind in r["kinds"] for r in results):
        return "not built"
    errors = sorted({r["detector_errors"][kind] for r in results if kind in r["detector_errors"]})
    if errors:
        return "error: " + "; ".join(errors)
    return None


def report(results: list[dict[str, Any]], sizes: Sequence[str], seeds: Sequence[int]) -> bool:
    registered = sorted({k for r in results for k in r["registered"]})
    kinds = [*KINDS, *(k for k in registered if k not in KINDS)]
    print("\nScenarios (each the size's preset with every attacker removed, then these added):")
    for sc in scenarios():
        print(f"  {sc.name}: {sc.what}")
    if not has_bursts():
        print(f"  {BURST}: no scenario (the simulator has no WorldConfig.bursts)")
    print(
        f"\nDetectors registered: {', '.join(registered) or 'none'}; not built: "
        f"{', '.join(k for k in KINDS if k not in registered) or 'none'}."
    )
    print(f"Seeds {', '.join(map(str, seeds))}; every cell is mean ± sd over seeds.\n")
    verdicts: list[tuple[str, bool | None, str]] = []

    # ---- own scenario
    print("## Precision and recall of each detector on its own scenario (accounts)\n")
    rows = []
    for kind in kinds:
        own = OWN[kind][0] if kind in OWN else None
        for size in sizes:
            rs = by(results, scenario=own, size=size) if own else []
            why = _status(results, kind)
            if own is None:
                why = why or "no scenario of its own"
            elif own == BURST and not has_bursts():
                why = "no scenario"
            if why or not rs:
                rows.append([kind, own or "-", size, why or "no worlds", "", "", "", "", ""])
                verdicts.append((f"{kind} ({size})", None, why or "no worlds"))
                continue
            prec, rec = _values(rs, kind, "precision"), _values(rs, kind, "recall")
            rows.append(
                [
                    kind,
                    own,
                    size,
                    fmt(_values(rs, kind, "flags"), 1),
                    fmt(_values(rs, kind, "flagged"), 1),
                    fmt(_values(rs, kind, "positives"), 1),
                    fmt(prec),
                    fmt(rec),
                    str(_no_flags(rs, kind)),
                ]
            )
            p, r_ = mean_sd(prec)[0], mean_sd(rec)[0]
            p_ok = not math.isnan(p) and p >= PRECISION_TARGET
            r_ok = not math.isnan(r_) and r_ >= RECALL_TARGET
            worst_p = min((x for x in prec if not math.isnan(x)), default=math.nan)
            worst_r = min((x for x in rec if not math.isnan(x)), default=math.nan)
            verdicts.append(
                (
                    f"{kind} precision on {own} ({size})",
                    p_ok,
                    f"{p:.3f} (worst seed {worst_p:.3f}), target >= {PRECISION_TARGET}",
                )
            )
            verdicts.append(
                (
                    f"{kind} recall on {own} ({size})",
                    r_ok,
                    f"{r_:.3f} (worst seed {worst_r:.3f}), target >= {RECALL_TARGET}",
                )
            )
    print(
        table(
            [
                "detector",
                "scenario",
                "size",
                "flags",
                "flagged accounts",
                "positives",
                "precision",
                "recall",
                "worlds with no flags",
            ],
            rows,
        )
    )

    # ---- honest worlds
    print("\n## False-positive rate on honest-only worlds (% of honest accounts flagged)\n")
    rows = []
    for size in sizes:
        rs = by(results, scenario=HONEST, size=size)
        if not rs:
            continue
        cells = []
        for kind in [*kinds, ALL]:
            why = _status(results, kind) if kind != ALL else None
            if why:
                cells.append(why)
                continue
            rates = _values(rs, kind, "fp_rate")
            cells.append(_pct(rates))
            mean, worst = mean_sd(rates)[0], max(rates, default=math.nan)
            verdicts.append(
                (
                    f"{kind} false-positive rate on honest worlds ({size})",
                    not math.isnan(mean) and mean <= FP_TARGET,
                    f"{100 * mean:.2f} % (worst seed {100 * worst:.2f} %), "
                    f"target <= {100 * FP_TARGET:.0f} %",
                )
            )
        honest_n = fmt([r["honest"] for r in rs], 0)
        rows.append([size, honest_n, *cells])
    print(table(["size", "honest accounts", *kinds, ALL], rows))

    # ---- honest accounts flagged on every scenario
    print("\n## Honest accounts flagged, per scenario and detector (count per world)\n")
    rows = []
    for size in sizes:
        for sc in scenarios():
            rs = by(results, scenario=sc.name, size=size)
            if not rs:
                continue
            cells = [_status(results, k) or fmt(_values(rs, k, "honest"), 1) for k in kinds]
            cells.append(fmt(_values(rs, ALL, "honest"), 1))
            rows.append([sc.name, size, *cells])
    print(table(["scenario", "size", *kinds, ALL], rows))

    # ---- mixed
    print("\n## Mixed preset: precision against all malicious accounts (flagged accounts)\n")
    rows = []
    for size in sizes:
        rs = by(results, scenario="mixed", size=size)
        if not rs:
            continue
        cells = []
        for kind in [*kinds, ALL]:
            why = _status(results, kind) if kind != ALL else None
            if why:
                cells.append(why)
                continue
            cells.append(
                f"{fmt(_values(rs, kind, 'precision_malicious'))} "
                f"({statistics.fmean(_values(rs, kind, 'flagged')):.1f})"
            )
        rows.append([size, *cells])
        own_cells = []
        for kind in kinds:
            why = _status(results, kind)
            own_cells.append("" if why or kind not in OWN else fmt(_values(rs, kind, "recall")))
        recall_all = fmt(_values(rs, ALL, "recall_malicious"))
        rows.append([f"{size}: recall of its own attackers", *own_cells, recall_all])
    print(table(["size", *kinds, ALL], rows))
    print(
        "\n(The last column's second row: recall against all malicious accounts; camouflaged "
        "accounts have no detector of their own.)"
    )

    # ---- confirming
    print("\n## AUC before -> after confirming the true flags (epoch 1 -> epoch 2)\n")
    print(
        "Confirmed with the kind's default factors (the flagged accounts' outgoing trust "
        "removed, labels too for spam and sybils); the last AUC column confirms the same "
        "flags with a score factor of 0 as well (their own trust removed), on a copy of "
        "the same epoch-1 database.\n"
    )
    rows = []
    for size in sizes:
        for sc in scenarios():
            rs = [r for r in by(results, scenario=sc.name, size=size) if "before" in r]
            if not rs:
                continue
            for group in rs[0]["before"]["auc"]:
                b = [r["before"]["auc"][group] for r in rs]
                a = [r["after"]["auc"][group] for r in rs]
                h = [r["held"]["auc"][group] for r in rs]
                d = [y - x for x, y in zip(b, a, strict=True)]
                decided = [r["decisions"] for r in rs]
                conf = [sum(v["confirmed"] for v in dd.values()) for dd in decided]
                dism = [sum(v["dismissed"] for v in dd.values()) for dd in decided]
                rows.append(
                    [
                        f"{sc.name}: {group}",
                        size,
                        fmt(b),
                        fmt(a),
                        f"{mean_sd(d)[0]:+.3f}",
                        fmt(h),
                        fmt(conf, 1),
                        fmt(dism, 1),
                    ]
                )
    print(
        table(
            [
                "scenario: attackers",
                "size",
                "AUC before",
                "AUC after",
                "change",
                "AUC after, own score x0",
                "flags confirmed",
                "flags dismissed",
            ],
            rows,
        )
    )
    print(
        "\nThe attackers' share of all trust (%), and the beneficiaries' (serial and burst "
        "targets') percentile among honest non-seed accounts, before -> after:\n"
    )
    rows = []
    for size in sizes:
        for sc in scenarios():
            rs = [r for r in by(results, scenario=sc.name, size=size) if "before" in r]
            if not rs:
                continue
            for group in rs[0]["before"]["share"]:
                b = [r["before"]["share"][group] for r in rs]
                a = [r["after"]["share"][group] for r in rs]
                rows.append([f"{sc.name}: {group}", size, "trust share %", _pct(b), _pct(a)])
            b = [r["before"]["target_pct"] for r in rs]
            if not all(math.isnan(x) for x in b):
                a = [r["after"]["target_pct"] for r in rs]
                rows.append([f"{sc.name}: targets", size, "percentile", fmt(b, 1), fmt(a, 1)])
            b = [r["before"]["top10"] for r in rs]
            a = [r["after"]["top10"] for r in rs]
            rows.append([f"{sc.name}", size, "top 10 % malicious", fmt(b), fmt(a)])
    print(table(["scenario: who", "size", "measure", "before", "after"], rows))

    # ---- who
    print("\n## Honest accounts flagged (who, per world)\n")
    lines = 0
    for r in results:
        for kind, m in sorted(r["kinds"].items()):
            if kind == ALL or not m.get("honest_accounts"):
                continue
            who = ", ".join(f"{a} ({role})" for a, role in m["honest_accounts"].items())
            print(f"* {r['scenario']} {r['size']} seed {r['seed']}, {kind}: {who}")
            lines += 1
    if not lines:
        print("(none)")
    errors = [(r, k, e) for r in results for k, e in r["detector_errors"].items()]
    if errors:
        print("\nDetector errors:")
        for r, k, e in errors:
            print(f"* {r['scenario']} {r['size']} seed {r['seed']}, {k}: {e}")

    # ---- targets
    print("\n## Targets\n")
    all_ok = True
    for what, ok, detail in verdicts:
        if ok is None:
            all_ok = False
            print(f"   {'-':7} {what}: {detail}")
        else:
            all_ok &= ok
            print(f"   {'met' if ok else 'NOT MET':7} {what}: {detail}")
    return all_ok


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def jobs_for(sizes: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {
            "scenario": sc.name,
            "size": size,
            "config": dataclasses.replace(sc.world(PRESETS[size]), seed=seed),
        }
        for size in sizes
        for sc in scenarios()
        for seed in seeds
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--sizes", default="small,default", help="presets, comma-separated")
    ap.add_argument("--seeds", default="1,2,3", help="world seeds, comma-separated")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", help="also write every per-world result to this file")
    args = ap.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    for s in sizes:
        if s not in PRESETS:
            raise SystemExit(f"unknown size {s!r}: use {', '.join(PRESETS)}")
    jobs = jobs_for(sizes, seeds)
    started = time.perf_counter()
    print(
        f"{len(jobs)} worlds: {len(scenarios())} scenarios x sizes {','.join(sizes)} x seeds "
        f"{','.join(map(str, seeds))}; {args.workers} processes. Messages are applied with "
        "BatchApplier to temporary SQLite files: no Kafka."
    )
    results: list[dict[str, Any]] = []
    # The biggest worlds first, so that no worker is left with one at the end.
    order = sorted(range(len(jobs)), key=lambda i: -sizes.index(jobs[i]["size"]))
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = {pool.submit(run_world, jobs[i]): i for i in order}
        done: dict[int, dict[str, Any]] = {}
        for fut in as_completed(futures):
            r = fut.result()
            done[futures[fut]] = r
            flagged = r["kinds"][ALL]["flagged"]
            print(
                f"  [{time.perf_counter() - started:6.1f} s] {r['scenario']} {r['size']} "
                f"seed {r['seed']}: {r['messages']:,} messages, {flagged} accounts flagged, "
                f"{r['seconds']['total']:.1f} s",
                flush=True,
            )
    results = [done[i] for i in range(len(jobs))]
    ok = report(results, sizes, seeds)
    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} worlds in {elapsed:.0f} s; all targets met: {'yes' if ok else 'no'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
