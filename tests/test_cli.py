"""The `renown` command as a user meets it: clear errors, exit codes, the pipeline end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import networkx as nx
import pytest
from sqlalchemy import select

from renown.broker import EmbeddedBroker
from renown.cli import main
from storage.db import make_engine
from storage.models import Account, Score
from tests.messages import encode, endorse, vote


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("RENOWN_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_db_upgrade_and_current(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, out, _ = run(capsys, "--database-url", url, "db", "current")
    assert code == 0 and "needs `renown db upgrade`" in out
    code, out, _ = run(capsys, "--database-url", url, "db", "upgrade")
    assert code == 0 and "(head)" in out
    code, out, _ = run(capsys, "--database-url", url, "db", "current")
    assert code == 0 and "up to date" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ingest"], "renown db upgrade"),  # default SQLite file, not migrated
        (
            ["--database-url", "postgresql://nobody@127.0.0.1:1/none", "ingest"],
            "cannot reach the database",
        ),
        (["score"], "no seed accounts configured"),
        (["produce", "missing.jsonl"], "no Kafka configured"),
        (["--database-url", "mysql://a@b/c", "scores"], "only sqlite:// and postgresql://"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_ingest_without_kafka_after_migration(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, _, err = run(capsys, "ingest")
    assert code == 2 and "RENOWN_KAFKA_BOOTSTRAP" in err


def test_pipeline_scores_equal_networkx_pagerank(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events through Kafka and the database give the personalized PageRank of the graph."""
    edges = [
        ("seed.near", "alice.near", "vote"),
        ("seed.near", "bob.near", "endorse"),
        ("alice.near", "carol.near", "vote"),
        ("bob.near", "carol.near", "vote"),
        ("carol.near", "alice.near", "endorse"),
        ("bob.near", "dave.near", "vote"),
        ("sybil1.near", "sybil2.near", "vote"),
        ("sybil2.near", "sybil1.near", "endorse"),
    ]
    lines = []
    for src, dst, kind in edges:
        msg = vote(src, dst) if kind == "vote" else endorse(src, dst)
        lines.append(f'{{"key": "{src}", "value": {encode(msg).decode()}}}')
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    topic = f"cli-{uuid.uuid4().hex[:8]}"
    for key, value in {
        "RENOWN_DATABASE_URL": db_url,
        "RENOWN_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RENOWN_TOPIC": topic,
        "RENOWN_SEEDS": "seed.near",
        "RENOWN_SESSION_TIMEOUT_MS": "3000",
        "RENOWN_HEARTBEAT_INTERVAL_MS": "1000",
    }.items():
        monkeypatch.setenv(key, value)

    assert run(capsys, "produce", str(events))[0] == 0
    code, out, _ = run(capsys, "ingest", "--max-messages", str(len(edges)), "--idle-exit", "20")
    assert code == 0, out
    code, out, _ = run(capsys, "score")
    assert code == 0 and "epoch 1" in out

    # The reference: networkx on the same graph, endorsements weighing 2, votes 1, less
    # the edges inside the closed pair alice <-> carol (they send their trust only to each
    # other, and no seed is among them): the closed-group cut (scoring.collusion) sends
    # what they pass each other back to the seed, exactly as if they were dangling.
    graph = nx.DiGraph()
    for src, dst, kind in edges:
        graph.add_edge(src, dst, weight=2.0 if kind == "endorse" else 1.0)
    graph.remove_edges_from([("alice.near", "carol.near"), ("carol.near", "alice.near")])
    seeds = {n: (1.0 if n == "seed.near" else 0.0) for n in graph}
    expected = nx.pagerank(
        graph, alpha=0.85, personalization=seeds, dangling=seeds, tol=1e-15, max_iter=10_000
    )
    engine = make_engine(db_url)
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                select(Account.account_id, Score.trust)
                .join(Score, Score.account_id == Account.id)
                .where(Score.epoch == 1, Score.domain == "global")
            )
            .all()
        )
    engine.dispose()
    assert set(stored) == set(expected)
    for account, trust in expected.items():
        assert stored[account] == pytest.approx(trust, abs=1e-9), account
    assert stored["sybil1.near"] == 0.0 and stored["sybil2.near"] == 0.0

    # Every score is explained: carol's trust comes from bob.near, and the explanation
    # says why alice.near's endorsement does not count.
    code, out, _ = run(capsys, "explain", "carol.near")
    assert code == 0, out
    assert "bob.near" in out and "alice.near" not in out.split("Closed group")[0]
    assert "Confidence" in out and "account votes" in out
    assert "Closed group: this account is one of 2 accounts that kept 100%" in out
    code, _, err = run(capsys, "explain", "nobody.near")
    assert code == 2 and "nobody.near has no score" in err

    # A second epoch starts from the first one's trust and lands on the same answer.
    code, out, _ = run(capsys, "score")
    assert code == 0 and "epoch 2" in out
    engine = make_engine(db_url)
    with engine.connect() as conn:
        second = dict(
            conn.execute(
                select(Account.account_id, Score.trust)
                .join(Score, Score.account_id == Account.id)
                .where(Score.epoch == 2, Score.domain == "global")
            ).all()
        )
    engine.dispose()
    assert second.keys() == stored.keys()
    for account, trust in stored.items():
        assert second[account] == pytest.approx(trust, abs=1e-9), account

    code, out, _ = run(capsys, "scores", "--top", "3")
    assert code == 0 and out.splitlines()[3].split()[1] in {"seed.near", "alice.near", "carol.near"}
    code, _, err = run(capsys, "scores", "nobody.near")
    assert code == 1 and "nobody.near: no score" in err


def test_demo_runs_on_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOWN_")}
    proc = subprocess.run(
        [sys.executable, "-m", "renown.cli", "demo", "--preset", "small"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for needle in (
        "embedded Kafka-protocol broker",
        "How the malicious groups rank",
        "sybils",
        "vote ring",
        "label spammers",
        "serial voters",
        "Database:",
    ):
        assert needle in out, needle
    assert (tmp_path / "renown.db").is_file()
    assert (tmp_path / "demo-out" / "world.truth.json").is_file()
    # The sybil region has no path from the seeds but its few attack edges: none in the top 10%.
    sybil_row = next(line for line in out.splitlines() if line.startswith("sybils"))
    assert sybil_row.split()[-1] == "0"
