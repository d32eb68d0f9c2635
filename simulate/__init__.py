"""Seeded world simulator for Renown.

Generates a crowdsourced data-labeling marketplace on NEAR, honest contributors
and attackers alike, as the exact Kafka messages of ``shared/EVENTS.md`` plus
the ground truth, so scoring and detectors can be measured. Pure and
deterministic; see :mod:`simulate.world` and ``docs/simulate.md``.
"""

from simulate.world import (
    ACCOUNT_ID_RE,
    EVENT_PREFIX,
    PRESETS,
    RENOWN_EVENTS,
    GroundTruth,
    SimMessage,
    World,
    WorldConfig,
    generate,
    read_messages,
    read_truth,
    truth_path_for,
    write_world,
)

__all__ = [
    "ACCOUNT_ID_RE",
    "EVENT_PREFIX",
    "PRESETS",
    "RENOWN_EVENTS",
    "GroundTruth",
    "SimMessage",
    "World",
    "WorldConfig",
    "generate",
    "read_messages",
    "read_truth",
    "truth_path_for",
    "write_world",
]
