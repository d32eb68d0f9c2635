"""Smoke test of bench/detection.py: one small world, in-process, end to end."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench import detection
from simulate.world import PRESETS


def _job(name: str, size: str = "small", seed: int = 1) -> dict[str, object]:
    sc = detection.scenario(name)
    return {
        "scenario": name,
        "size": size,
        "config": dataclasses.replace(sc.world(PRESETS[size]), seed=seed),
    }


def _unit(x: float) -> bool:
    return math.isnan(x) or 0.0 <= x <= 1.0


def test_serial_voter_world() -> None:
    r = detection.run_world(_job("serial voter"))
    assert r["scenario"] == "serial voter" and r["size"] == "small" and r["seed"] == 1
    assert r["messages"] > 0 and r["events"] > 0 and r["accounts"] > 0
    assert set(r["detectors"]) == set(r["registered"])
    assert set(r["kinds"]) == {*r["detectors"], detection.ALL}
    for kind, m in r["kinds"].items():
        assert m["flagged"] >= m["malicious"] and m["flagged"] >= m["honest"], kind
        for key in ("precision", "recall", "precision_malicious", "fp_rate"):
            if key in m:
                assert _unit(m[key]), (kind, key, m[key])
    serial = r["kinds"]["serial_voting"]
    assert serial["own"] and serial["positives"] == 3
    assert serial["recall"] == 1.0
    assert serial["precision"] == 1.0
    # Confirming the true flags, then a second epoch.
    assert r["decisions"]["serial_voting"]["confirmed"] == 3
    assert r["sanctions"] >= 3
    for when in ("before", "after"):
        assert set(r[when]["auc"]) == {"serial voters"}
        assert 0.0 <= r[when]["auc"]["serial voters"] <= 1.0
        assert 0.0 <= r[when]["target_pct"] <= 100.0


def test_report_prints_tables(capsys: pytest.CaptureFixture[str]) -> None:
    r = detection.run_world(_job("honest only", size="tiny"))
    assert "before" not in r  # nothing malicious: no second epoch
    assert r["kinds"][detection.ALL]["fp_rate"] >= 0.0
    detection.report([r], ["tiny"], [1])
    out = capsys.readouterr().out
    assert "## False-positive rate on honest-only worlds" in out
    assert "## Targets" in out
