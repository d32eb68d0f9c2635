"""Simulated worlds applied to a test database (no Kafka), and scored: the shared setup of
the snapshot and publisher tests."""

from __future__ import annotations

import dataclasses
import json

from ingest.apply import BatchApplier, Message
from renown import bootstrap
from renown.settings import Settings
from simulate.world import PRESETS, World, WorldConfig, generate
from storage.db import make_engine, make_session_factory


def apply_world(url: str, *, preset: str = "tiny", seed: int = 3) -> list[str]:
    """Apply a simulated world's messages to the database at ``url``; its seeds."""
    return apply_config(url, dataclasses.replace(PRESETS[preset], seed=seed)).truth.seeds


def apply_config(url: str, config: WorldConfig) -> World:
    """Generate the world of ``config`` and apply its messages to the (migrated) database
    at ``url`` through the ingest code path; the world, for its ground truth."""
    world = generate(config)
    msgs = [
        Message("t", 0, i, m.key.encode(), json.dumps(m.value).encode())
        for i, m in enumerate(world.messages)
    ]
    engine = make_engine(url)
    applier = BatchApplier(make_session_factory(engine, writer=True), "test-world")
    for i in range(0, len(msgs), 500):
        res = applier.apply(msgs[i : i + 500])
        assert not res.dead and not res.skipped
    engine.dispose()
    return world


def score(url: str, seeds: list[str], epochs: int = 1) -> bootstrap.EpochSummary:
    """Run ``epochs`` scoring epochs; the last one's summary."""
    settings = Settings(database_url=url, seeds=seeds)
    db = bootstrap.open_database(settings)
    try:
        summary = bootstrap.run_scoring(settings, db)
        for _ in range(epochs - 1):
            summary = bootstrap.run_scoring(settings, db)
        return summary
    finally:
        db.close()
