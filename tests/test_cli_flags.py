"""`renown flags ...` and `renown history` as a moderator and a contributor use them."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from bench.accuracy import _clean
from renown.cli import main
from simulate.world import PRESETS
from storage import migrate
from storage.db import make_engine
from tests.worlds import apply_config


@pytest.fixture
def world_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A scored small world with a serial voter and a ring, and two moderators."""
    for key in list(os.environ):
        if key.startswith("RENOWN_"):
            monkeypatch.delenv(key)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    cfg = dataclasses.replace(_clean(PRESETS["small"]), serial_voters=1, ring=4, seed=3)
    world = apply_config(url, cfg)
    monkeypatch.setenv("RENOWN_DATABASE_URL", url)
    monkeypatch.setenv("RENOWN_SEEDS", ",".join(world.truth.seeds))
    monkeypatch.setenv("RENOWN_MODERATORS", "alice,bob")
    # The detectors' accuracy is tested elsewhere; here a known queue of two flags.
    monkeypatch.setenv("RENOWN_DETECTORS", "serial_voting,vote_ring")
    return {
        "voter": world.truth.serial_voters[0],
        "target": world.truth.serial_targets[0],
        "ring": ",".join(world.truth.ring),
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_moderator_works_the_queue_and_a_contributor_reads_the_history(
    world_db: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "score")
    assert code == 0 and "detectors: 2 new flag(s)" in out
    code, out, _ = run(capsys, "flags", "list", "--json")
    listed = json.loads(out)
    assert listed["total"] == 2
    by_kind = {f["kind"]: f for f in listed["flags"]}
    serial = by_kind["serial_voting"]
    assert serial["flagged"] == [world_db["voter"]]
    assert serial["beneficiaries"] == [world_db["target"]]
    assert set(by_kind["vote_ring"]["flagged"]) == set(world_db["ring"].split(","))
    code, out, _ = run(capsys, "flags", "list", "--kind", "vote_ring")
    assert code == 0 and "vote_ring" in out and "serial_voting" not in out

    sid = str(serial["id"])
    code, out, _ = run(capsys, "flags", "show", sid)
    assert code == 0
    assert "evidence:" in out and f"target: {world_db['target']}" in out
    assert "window start: 20" in out  # the *_ns timestamp rendered as a date

    # Illegal steps: one line on stderr, exit 2, nothing changed.
    code, _, err = run(capsys, "flags", "appeal", sid, "--account", world_db["voter"],
                       "--statement", "x")  # fmt: skip
    assert code == 2 and "cannot appeal a flag that is open" in err
    code, _, err = run(capsys, "flags", "confirm", sid, "--moderator", "mallory", "--reason", "x")
    assert code == 2 and "not a moderator" in err
    code, _, err = run(capsys, "flags", "show", "999")
    assert code == 2 and "no flag #999" in err

    code, out, _ = run(capsys, "flags", "confirm", sid, "--moderator", "alice",
                       "--reason", "54 votes in a day")  # fmt: skip
    assert code == 0 and "confirmed" in out and "outgoing trust x0" in out
    code, out, _ = run(capsys, "score")
    assert f"confirmed flags applied: #{sid}" in out and "0 new flag(s)" in out
    code, out, _ = run(capsys, "explain", world_db["voter"])
    assert code == 0
    assert f"Moderation: flag #{sid} (serial_voting) is confirmed against this account" in out
    assert "passes on 0% of its trust" in out and "54 votes in a day" in out
    code, out, _ = run(capsys, "flags", "appeal", sid, "--account", world_db["voter"],
                       "--statement", "I am a fan")  # fmt: skip
    assert code == 0 and "appealed" in out
    code, _, err = run(capsys, "flags", "decide", sid, "uphold", "--moderator", "alice",
                       "--reason", "x")  # fmt: skip
    assert code == 2 and "another moderator" in err
    code, out, _ = run(capsys, "flags", "decide", sid, "uphold", "--moderator", "bob",
                       "--reason", "a real fan")  # fmt: skip
    assert code == 0 and "overturned" in out
    run(capsys, "score")

    # The target's history shows the reversal and the restoration, with the reasons.
    code, out, _ = run(capsys, "history", world_db["target"])
    assert code == 0
    assert f"epoch 2: reversal: what {world_db['voter']} gave this account no longer counts" in out
    assert "54 votes in a day" in out
    assert "epoch 3: restored:" in out and "a real fan" in out
    code, out, _ = run(capsys, "history", world_db["voter"], "--json")
    epochs = json.loads(out)["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert [ev["meaning"] for ev in epochs[1]["events"]] == ["sanction"]
    code, _, err = run(capsys, "history", "nobody.near")
    assert code == 2 and "unknown account" in err

    # The audit log: every step, oldest first.
    code, out, _ = run(capsys, "flags", "audit", "--flag", sid, "--json")
    assert [(e["actor"], e["action"]) for e in json.loads(out)] == [
        ("detector", "raise"),
        ("alice", "confirm"),
        (world_db["voter"], "appeal"),
        ("bob", "uphold"),
    ]
    # A hand-raised flag, dismissed.
    code, out, _ = run(capsys, "flags", "raise", "--moderator", "bob", "--account",
                       world_db["target"], "--reason", "too lucky", "--json")  # fmt: skip
    raised = json.loads(out)
    assert code == 0 and raised["status"] == "open" and raised["raised_by"] == "bob"
    code, out, _ = run(capsys, "flags", "dismiss", str(raised["id"]), "--moderator", "alice",
                       "--reason", "votes were real")  # fmt: skip
    assert code == 0 and "dismissed" in out


def test_moderation_needs_moderators(
    world_db: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "score")
    monkeypatch.delenv("RENOWN_MODERATORS")
    code, _, err = run(capsys, "flags", "confirm", "1", "--moderator", "alice", "--reason", "x")
    assert code == 2 and "not a moderator" in err
    monkeypatch.setenv("RENOWN_DETECTORS", "serial_voting,nonsense")
    code, _, err = run(capsys, "flags", "list")
    assert code == 2 and "unknown detectors ['nonsense']" in err
