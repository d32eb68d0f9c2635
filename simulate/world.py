"""Seeded world simulator: a crowdsourced data-labeling marketplace on NEAR.

Why this exists: Renown's scoring (label quality, trust propagation, the abuse
detectors) can only be judged against a world whose truth is known. This module
builds such a world from a seed and emits it as the very Kafka messages the
chain side would produce (see ``shared/EVENTS.md``), together with the ground
truth (who is honest, who attacks, the gold labels, every labeler's true skill).

Design rules, each with its reason:

* **Pure.** :func:`generate` does no I/O; it returns data. Callers (the CLI,
  ``renown demo``, tests, benchmarks) decide whether to write a file or produce
  to Kafka, so the generator is trivially testable and reusable.
* **Deterministic.** Every random choice comes from ``random.Random`` streams seeded
  from the seed (one for the world, two for the sybil region and its attack edges, so
  that the number of sybils changes nothing else), consumed in a fixed order; no set or
  hash-ordered iteration feeds an output.
  The same :class:`WorldConfig` gives byte-identical JSONL on the same Python
  version, so a bug seen in a world can be reproduced from its seed alone.
* **Causal.** A label comes after its task, a review or vote after the label, a
  retraction after everything on that content, gold after the task's labels. The
  messages are then sorted by time so event kinds interleave as they would on
  chain; block heights and timestamps are derived from that time (1 block per
  second, a little jitter inside the block), so both are monotone.
* **Fast.** Linear in the number of messages; the default world is ~10k
  messages and well under a second, the ``large`` preset ~200k.

The account names reveal the roles (``syb007.near``); they are for humans
reading the data. Detectors must never look at names, and nothing in Renown may.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ACCOUNT_ID_RE",
    "CONTENT_CONTRACT",
    "EVENT_PREFIX",
    "LABELS_CONTRACT",
    "NFT_CONTRACT",
    "PRESETS",
    "RENOWN_EVENTS",
    "VOTES_CONTRACT",
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

# --------------------------------------------------------------------------
# Interface constants (shared/EVENTS.md)
# --------------------------------------------------------------------------

STANDARD = "renown"
VERSION = "1.0.0"
NFT_STANDARD = "nep171"
NFT_VERSION = "1.0.0"
EVENT_PREFIX = "EVENT_JSON:"

#: The ``renown`` standard's event names, as in the EVENTS.md table.
RENOWN_EVENTS: tuple[str, ...] = (
    "task_posted",
    "label_submitted",
    "label_reviewed",
    "gold_revealed",
    "vote_cast",
    "endorsed",
    "content_authored",
    "content_attested",
    "content_retracted",
)

#: NEAR account id rule (named accounts) or a 64-hex implicit account.
ACCOUNT_ID_RE = re.compile(
    r"^(?:(?=.{2,64}$)(?:(?:[a-z\d]+[-_])*[a-z\d]+\.)*(?:[a-z\d]+[-_])*[a-z\d]+|[0-9a-f]{64})$"
)
_DOMAIN_RE = re.compile(r"^[a-z0-9:_-]{1,64}$")

# The emitting contracts. Splitting by concern mirrors how a marketplace would
# deploy them, and gives consumers more than one contract_id to handle.
LABELS_CONTRACT = "labels.market.near"
VOTES_CONTRACT = "votes.market.near"
CONTENT_CONTRACT = "content.market.near"
NFT_CONTRACT = "nft.market.near"

# --------------------------------------------------------------------------
# Chain timing
# --------------------------------------------------------------------------

START_HEIGHT = 140_000_000  # first block height; plausible for mainnet in 2025
BLOCK_MS = 1_000  # one block per second of simulated time
BLOCK_NS = 1_000_000_000
MAX_JITTER_NS = 150_000_000  # block timestamps wobble inside the second, never past it
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

# --------------------------------------------------------------------------
# Behaviour rates. Constants, not config: they shape the world's texture, and
# keeping them fixed keeps presets comparable. Each says what it models.
# --------------------------------------------------------------------------

MAX_ITEMS_PER_LOG = 10  # a batch call emits at most this many data items per log
SPLIT_LOG_P = 0.25  # a batch call emits one log per item (several logs per receipt)
CONTENT_PER_ACCOUNT = 3.0  # mean content items per honest account (times its activity)
CONTENT_VOTES_MEAN = 5.0  # mean votes on an honest content item of an average author
CONTENT_VOTES_CAP = 80.0  # the most-popular authors do not get unbounded votes
CONTENT_UPVOTE_P = 0.92  # honest votes on honest content are mostly +1
ATTESTATIONS_MEAN = 1.2  # mean attestations per honest content item
AUTHENTIC_P = 0.97  # honest attestations of honest content: authentic (rarely disputed)
COAUTHOR_P = 0.15  # content with 2 or 3 authors
DERIVED_P = 0.15  # content derived from earlier content
RETRACT_P = 0.02  # content later retracted by one of its authors
ACCOUNT_VOTES_MEAN = 2.0  # account upvotes per honest account (times activity)
ACCOUNT_UPVOTE_P = 0.95
ENDORSE_MEAN = 2.0  # endorsements per honest account (times activity)
SEED_EXTRA_ENDORSE = 3  # moderators vouch for a few more peers
REVIEW_P = 0.5  # share of labels that get one review
ACCEPT_CORRECT_P = 0.95  # reviewer accepts a correct label
REJECT_WRONG_P = 0.85  # reviewer rejects a wrong label
LABEL_VOTE_P = 0.35  # share of labels that get votes (1 or 2)
LABEL_UPVOTE_CORRECT_P = 0.9
LABEL_DOWNVOTE_WRONG_P = 0.75
GOLD_REVEAL_P = 0.5  # share of tasks whose poster reveals (part of) the gold
SPAM_ITEM_FRACTION = 0.1  # share of all items each spammer labels ...
SPAM_ITEMS_MIN, SPAM_ITEMS_MAX = 5, 100  # ... clamped to this range
SPAM_DOWNVOTES_MEAN = 3.0  # honest account downvotes per spammer
RING_ITEM_FRACTION = 0.03  # share of all items each ring member labels ...
RING_ITEMS_MIN, RING_ITEMS_MAX = 3, 40
RING_SKILL = (0.55, 0.8)  # ring members label, but without care
RING_ACCOUNT_VOTES = (3, 6)  # repeated account upvotes per ordered ring pair
SYBIL_DENSITY = 0.8  # share of the other sybils each sybil endorses ...
SYBIL_ENDORSE_MAX = 15  # ... at most this many
SYBIL_CONTENT_VOTERS = 12  # sybil upvoters per sybil content item, at most
SYBIL_ACCOUNT_VOTES = 5
SYBIL_CAMOUFLAGE_VOTES = 2  # upvotes a sybil gives honest content to look normal
SYBIL_DISPUTE_P = 0.4  # sybil content disputed by a moderator or honest account
SYBIL_PLAGIARISM_P = 0.2  # sybil content reusing an honest item's content_hash
SERIAL_VOTES = (40, 60)  # upvotes each serial voter gives its target ...
SERIAL_WINDOW_MS = 2 * HOUR_MS  # ... inside this window
SERIAL_CAMOUFLAGE_MEAN = 4.0
# Camouflaged attackers (``WorldConfig.camouflage``): honest-looking labelers who
# sabotage items they expect never to be checked, and vouch for colluders.
CAMO_SKILL = (0.85, 0.97)  # careful labelers wherever it is safe to be
CAMO_ITEM_FRACTION = 0.1  # share of all items in the group's shared pool ...
CAMO_ITEMS_MIN, CAMO_ITEMS_MAX = 5, 100  # ... clamped to this range
CAMO_LABEL_P = 0.5  # each member labels each pool item with this probability
CAMO_SABOTAGE_P = 0.6  # unrevealed pool items the whole group answers with one wrong label
CAMO_TRUST_IN = 2.0  # mean honest upvotes, and mean honest endorsements, each member gets
CAMO_COVER_VOTES = 3.0  # mean upvotes (at least 1) each member gives honest content and labels
CAMO_COLLUDE = 2  # colluders each member endorses, and colluders it upvotes
# Bursts (``WorldConfig.bursts``): a crew of fresh accounts acting on one target at once.
BURST_CREW = (10, 20)  # fresh accounts per burst
BURST_WINDOW_MS = HOUR_MS  # the crew acts on the target within this window ...
BURST_LEAD_MS = 3 * DAY_MS  # ... and first appears at most this long before it
BURST_FROM, BURST_TO = 0.5, 0.9  # the window starts in this part of the world
BURST_WARMUP = (0, 2)  # upvotes on random honest content when a crew account appears

#: Label spaces per known domain; other domains use the generic ones.
_LABEL_SPACES: dict[str, tuple[tuple[str, ...], ...]] = {
    "general": (("yes", "no"), ("yes", "no", "unsure"), ("relevant", "irrelevant")),
    "images": (("cat", "dog", "bird", "other"), ("car", "truck", "bike", "bus", "none")),
    "text": (("positive", "negative", "neutral"), ("spam", "ham"), ("en", "es", "fr", "de")),
}
_GENERIC_SPACES: tuple[tuple[str, ...], ...] = (("a", "b"), ("a", "b", "c"), ("a", "b", "c", "d"))

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Byte -> base58 character; `b % 58` is slightly biased, which is fine for ids
# that only need to look like NEAR's and be unique. bytes.translate is ~50x
# faster than real base58 big-integer division, which matters at 200k receipts.
_B58_TABLE = bytes(ord(_B58[b % 58]) for b in range(256))


# --------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of the simulated marketplace. Every field has a safe default.

    Fields after ``start_ns`` (``days``, ``nft_mints``, ``camouflage``,
    ``bursts``) are extensions of the agreed API; they default to the behaviour
    described in ``docs/simulate.md``. ``camouflage`` and ``bursts`` default to
    0, and a world without camouflaged attackers or bursts is byte-identical to
    one generated before the field existed (those phases draw nothing when 0).
    Invalid combinations raise :class:`ValueError` at construction, so a CLI
    reports them before spending time generating.
    """

    seed: int = 7
    honest: int = 200
    seeds: int = 5
    spammers: int = 10
    sybils: int = 20
    attack_edges: int = 3
    ring: int = 6
    serial_voters: int = 1
    tasks: int = 20
    items_per_task: int = 10
    labels_per_item: int = 3
    domains: tuple[str, ...] = ("general", "images", "text")
    start_ns: int = 1_764_000_000_000_000_000
    days: float = 21.0
    nft_mints: int = 2
    camouflage: int = 0
    bursts: int = 0

    def __post_init__(self) -> None:
        counts = {
            "honest": self.honest,
            "seeds": self.seeds,
            "spammers": self.spammers,
            "sybils": self.sybils,
            "attack_edges": self.attack_edges,
            "ring": self.ring,
            "serial_voters": self.serial_voters,
            "tasks": self.tasks,
            "items_per_task": self.items_per_task,
            "labels_per_item": self.labels_per_item,
            "nft_mints": self.nft_mints,
            "camouflage": self.camouflage,
            "bursts": self.bursts,
        }
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        # Five honest accounts guarantee that "someone other than these (at most
        # three) authors" always exists, so the pickers below always terminate.
        if self.honest < max(5, self.labels_per_item + 1):
            raise ValueError("honest must be >= 5 and > labels_per_item")
        if not 1 <= self.seeds <= self.honest:
            raise ValueError("seeds must be between 1 and honest (they are honest moderators)")
        if self.items_per_task < 1 or self.labels_per_item < 1:
            raise ValueError("items_per_task and labels_per_item must be >= 1")
        if self.ring == 1:
            raise ValueError("a vote ring needs 0 or at least 2 members")
        if self.attack_edges > self.honest * self.sybils:
            raise ValueError("attack_edges cannot exceed honest * sybils distinct pairs")
        if self.serial_voters > self.honest:
            raise ValueError("serial_voters cannot exceed honest (one target each)")
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ValueError("domains must be a non-empty tuple without duplicates")
        for d in self.domains:
            if not isinstance(d, str) or not _DOMAIN_RE.match(d):
                raise ValueError(f"domain {d!r} is not lower-case [a-z0-9:_-]{{1,64}}")
        if self.start_ns <= 0:
            raise ValueError("start_ns must be positive nanoseconds since the epoch")
        if not self.days > 0:
            raise ValueError("days must be positive")

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (the domains tuple becomes a list).

        ``camouflage`` and ``bursts`` are left out when 0, so truth files of worlds
        without them stay byte-identical to those written before the fields existed.
        """
        out = asdict(self)
        out["domains"] = list(self.domains)
        if not self.camouflage:
            del out["camouflage"]
        if not self.bursts:
            del out["bursts"]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorldConfig:
        """Inverse of :meth:`to_json`; unknown keys are ignored for forward compatibility."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "domains" in kwargs:
            kwargs["domains"] = tuple(kwargs["domains"])
        return cls(**kwargs)


@dataclass(frozen=True)
class SimMessage:
    """One Kafka record: ``key`` is the subject (acting) account, ``value`` the
    EVENTS.md message dict, to be JSON-encoded by the producer."""

    key: str
    value: dict[str, Any]


@dataclass(frozen=True)
class GroundTruth:
    """What the simulator knows and Renown must infer.

    ``serial_targets[i]`` is the author pushed by ``serial_voters[i]``; targets
    are drawn from the non-moderator honest accounts and behave honestly, so
    they are in ``honest`` and not in :meth:`malicious` (their inflated score is
    the attack's effect, not their fault). ``skill`` holds every account that
    can label: honest (drawn), ring (drawn, mediocre) and spammers (their
    expected agreement with gold when answering uniformly at random, i.e. the
    mean of 1/|label space| over the items they labeled) and camouflaged
    attackers (the share of their labels that agree with gold).
    ``camouflaged`` is empty in truth files written before the field existed.
    ``burst_accounts`` are the fresh accounts of every burst crew (malicious);
    ``burst_targets[i]`` is the honest account burst ``i`` acted on (honest, not
    malicious, like a serial voter's target); both empty without bursts.
    """

    honest: list[str]
    seeds: list[str]
    spammers: list[str]
    sybils: list[str]
    ring: list[str]
    serial_voters: list[str]
    serial_targets: list[str]
    gold: dict[str, dict[str, str]] = field(default_factory=dict)
    skill: dict[str, float] = field(default_factory=dict)
    camouflaged: list[str] = field(default_factory=list)
    burst_accounts: list[str] = field(default_factory=list)
    burst_targets: list[str] = field(default_factory=list)

    def malicious(self) -> set[str]:
        """Accounts whose behaviour is an attack: the positives for detectors."""
        return (
            set(self.spammers)
            | set(self.sybils)
            | set(self.ring)
            | set(self.serial_voters)
            | set(self.camouflaged)
            | set(self.burst_accounts)
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-safe dict; see ``docs/simulate.md`` for the format
        (``camouflaged``, ``burst_accounts`` and ``burst_targets`` appear only when
        non-empty)."""
        return {
            "honest": list(self.honest),
            "seeds": list(self.seeds),
            "spammers": list(self.spammers),
            "sybils": list(self.sybils),
            "ring": list(self.ring),
            "serial_voters": list(self.serial_voters),
            "serial_targets": list(self.serial_targets),
            "gold": {t: dict(items) for t, items in self.gold.items()},
            "skill": dict(self.skill),
            # Only when there are any: older readers and older files stay as they were.
            **({"camouflaged": list(self.camouflaged)} if self.camouflaged else {}),
            **({"burst_accounts": list(self.burst_accounts)} if self.burst_accounts else {}),
            **({"burst_targets": list(self.burst_targets)} if self.burst_targets else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroundTruth:
        """Inverse of :meth:`to_json`; extra keys (e.g. ``config``) are ignored."""
        return cls(
            honest=list(data["honest"]),
            seeds=list(data["seeds"]),
            spammers=list(data["spammers"]),
            sybils=list(data["sybils"]),
            ring=list(data["ring"]),
            serial_voters=list(data["serial_voters"]),
            serial_targets=list(data["serial_targets"]),
            gold={
                str(t): {str(i): str(lab) for i, lab in items.items()}
                for t, items in data["gold"].items()
            },
            skill={str(a): float(s) for a, s in data["skill"].items()},
            camouflaged=list(data.get("camouflaged", [])),
            burst_accounts=list(data.get("burst_accounts", [])),
            burst_targets=list(data.get("burst_targets", [])),
        )


@dataclass(frozen=True)
class World:
    """A generated world: messages in block order, the truth, and its config."""

    messages: list[SimMessage]
    truth: GroundTruth
    config: WorldConfig

    def event_counts(self) -> dict[str, int]:
        """Data items per event name (``nep171:nft_mint`` for NFT mints), for
        summaries; parses every log, so call it once, not in a loop."""
        counts: dict[str, int] = {}
        for m in self.messages:
            env = json.loads(m.value["log"][len(EVENT_PREFIX) :])
            name = env["event"]
            if env["standard"] != STANDARD:
                name = f"{env['standard']}:{name}"
            counts[name] = counts.get(name, 0) + len(env["data"])
        return dict(sorted(counts.items()))


#: Named sizes for the CLI (``renown simulate --preset NAME``) and tests.
PRESETS: dict[str, WorldConfig] = {
    # ~500 messages: fast unit and integration tests.
    "tiny": WorldConfig(
        honest=8,
        seeds=2,
        spammers=2,
        sybils=3,
        attack_edges=1,
        ring=3,
        serial_voters=1,
        tasks=3,
        items_per_task=4,
        labels_per_item=3,
        days=7.0,
    ),
    # ~2.5k messages: quick demos.
    "small": WorldConfig(
        honest=60,
        seeds=3,
        spammers=4,
        sybils=8,
        attack_edges=2,
        ring=4,
        serial_voters=1,
        tasks=8,
        items_per_task=10,
        labels_per_item=3,
        days=14.0,
    ),
    "default": WorldConfig(),
    # ~200k messages: benchmarks and load tests.
    "large": WorldConfig(
        honest=5000,
        seeds=25,
        spammers=60,
        sybils=200,
        attack_edges=15,
        ring=12,
        serial_voters=5,
        tasks=500,
        items_per_task=10,
        labels_per_item=3,
        days=28.0,
    ),
}


# --------------------------------------------------------------------------
# Internal model
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    """One receipt: a function call by ``actor`` on ``contract`` at time ``t``
    (ms since the world's start), emitting one or more logs."""

    t: int
    seq: int
    contract: str
    actor: str
    logs: list[tuple[str, str, str, list[dict[str, Any]]]]  # standard, version, event, data


@dataclass(slots=True)
class _Task:
    task_id: str
    poster: str
    domain: str
    labels: list[str]
    t: int
    gold: dict[str, str]
    last_t: int = 0  # time of the task's latest label


@dataclass(slots=True)
class _Label:
    task: _Task
    item_id: str
    labeler: str
    label: str
    t: int

    @property
    def target(self) -> str:
        return f"{self.task.task_id}/{self.item_id}/{self.labeler}"


@dataclass(slots=True)
class _Content:
    kind: str  # "honest", "ring" or "sybil"
    authors: list[str]
    t: int
    domain: str | None  # None: the event omits domain (so it is "general")
    content_id: str = ""
    content_hash: str = ""
    last_t: int = 0


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson sample by inversion (Knuth); lambdas here stay small (< 100)."""
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation keeps the loop short for big lambdas
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class _Sim:
    """Builds one world. Methods run in a fixed order; each consumes the shared
    RNG, so reordering them changes every later choice (and the output)."""

    def __init__(self, config: WorldConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        # The sybil region draws from streams of its own, so that the rest of a world (and
        # which honest accounts are duped) does not change with the number of sybils: the
        # sybil sweeps of bench/accuracy.py then compare like with like.
        self.srng = random.Random(f"{config.seed}/sybils")
        self.arng = random.Random(f"{config.seed}/attack-edges")
        self.span = int(config.days * DAY_MS)
        self.calls: list[_Call] = []
        self.tasks: list[_Task] = []
        self.labels: list[_Label] = []
        self.contents: list[_Content] = []
        # Filled without drawing from the RNG, for the camouflage phase (which
        # runs last): when each task's gold is revealed and which items, and
        # when honest content is retracted.
        self.revealed: dict[str, tuple[int, frozenset[str]]] = {}
        self.retracted: set[str] = set()
        # Bursts draw from a stream of their own (and run last), so a world without
        # them is exactly the world generated before they existed.
        self.brng = random.Random(f"{config.seed}/bursts")
        self.burst_crew: list[str] = []
        self.burst_targets: list[str] = []

    # ---- primitives -------------------------------------------------------

    @contextlib.contextmanager
    def _stream(self, rng: random.Random) -> Iterator[None]:
        """Draw from ``rng`` (primitives included) inside the block."""
        main, self.rng = self.rng, rng
        try:
            yield
        finally:
            self.rng = main

    def _u(self, lo_ms: int, hi_ms: int) -> int:
        return self.rng.randrange(lo_ms, hi_ms)

    def _split(self, n_items: int) -> bool:
        return n_items > 1 and self.rng.random() < SPLIT_LOG_P

    def _emit(
        self,
        t: int,
        contract: str,
        actor: str,
        event: str,
        items: list[dict[str, Any]],
        *,
        split: bool = False,
        standard: str = STANDARD,
        version: str = VERSION,
    ) -> None:
        """Record one receipt. ``split`` gives one log per item (several logs in
        the receipt); otherwise items share logs, ``MAX_ITEMS_PER_LOG`` at most."""
        if split:
            logs = [(standard, version, event, [it]) for it in items]
        else:
            logs = [
                (standard, version, event, items[i : i + MAX_ITEMS_PER_LOG])
                for i in range(0, len(items), MAX_ITEMS_PER_LOG)
            ]
        self.calls.append(_Call(t, len(self.calls), contract, actor, logs))

    def _pick_pop(self, exclude: Sequence[str] = ()) -> str:
        """An honest account, popular ones more often (who gets voted for)."""
        while True:
            a = self.rng.choices(self.honest, cum_weights=self.pop_cum)[0]
            if a not in exclude:
                return a

    def _pick_act(self, exclude: Sequence[str] = ()) -> str:
        """An honest account, active ones more often (who does the voting)."""
        while True:
            a = self.rng.choices(self.honest, cum_weights=self.act_cum)[0]
            if a not in exclude:
                return a

    def _pick_moderator(self, exclude: Sequence[str] = ()) -> str:
        cands = [s for s in self.seeds if s not in exclude]
        return self.rng.choice(cands) if cands else self._pick_act(exclude)

    def _wrong(self, space: list[str], right: str) -> str:
        other = self.rng.choice(space[:-1])
        return space[-1] if other == right else other

    def _vote(
        self, voter: str, kind: str, target: str, value: int, domain: str | None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "voter": voter,
            "target_kind": kind,
            "target": target,
            "value": value,
        }
        if domain is not None:
            item["domain"] = domain
        return item

    # ---- phases ------------------------------------------------------------

    def accounts(self) -> None:
        c, rng = self.cfg, self.rng
        self.seeds = [f"mod{i:03d}.market.near" for i in range(c.seeds)]
        self.honest = self.seeds + [f"h{i:04d}.market.near" for i in range(c.honest - c.seeds)]
        self.spammers = [f"sp{i:03d}.near" for i in range(c.spammers)]
        self.sybils = [f"syb{i:03d}.near" for i in range(c.sybils)]
        self.ring = [f"ring{i:02d}.near" for i in range(c.ring)]
        self.serial = [f"sv{i:02d}.near" for i in range(c.serial_voters)]
        self.camo = [f"cam{i:03d}.near" for i in range(c.camouflage)]
        self.skill: dict[str, float] = {}
        self.home: dict[str, str] = {}
        self.pop: dict[str, float] = {}
        self.act: dict[str, float] = {}
        for a in self.honest:
            # Beta(5, 2) on [0.6, 0.98]: mostly good labelers, a tail of weaker ones.
            self.skill[a] = round(0.6 + 0.38 * rng.betavariate(5, 2), 4)
            self.home[a] = rng.choice(c.domains)
            self.pop[a] = min(rng.paretovariate(1.5), 50.0)  # heavy-tailed fame
            self.act[a] = rng.lognormvariate(0.0, 0.6)  # how busy the account is
        self.pop_cum = list(itertools.accumulate(self.pop[a] for a in self.honest))
        self.act_cum = list(itertools.accumulate(self.act[a] for a in self.honest))
        self.mean_pop = self.pop_cum[-1] / len(self.honest)
        for a in self.ring:
            self.skill[a] = round(rng.uniform(*RING_SKILL), 4)
        non_seed = self.honest[c.seeds :] or self.honest
        k = c.serial_voters
        if k <= len(non_seed):
            self.targets = rng.sample(non_seed, k)
        else:
            self.targets = [rng.choice(non_seed) for _ in range(k)]
        # Sybils arrive together some time into the world, as a region would.
        srng = self.srng
        self.sybil_from = {s: srng.randrange(self.span // 5, self.span // 2) for s in self.sybils}

    def labeling(self) -> None:
        """Tasks, honest crews, spammers' and ring members' labels."""
        c, rng = self.cfg, self.rng
        item_ids = [f"item-{k:03d}" for k in range(c.items_per_task)]
        lpi = c.labels_per_item
        crew_size = min(len(self.honest) - 1, max(lpi + 1, math.ceil(c.items_per_task * lpi / 3)))
        for j in range(c.tasks):
            domain = rng.choice(c.domains)
            poster = rng.choice(self.seeds) if rng.random() < 0.3 else self._pick_act()
            spaces = _LABEL_SPACES.get(domain, _GENERIC_SPACES)
            space = list(rng.choice(spaces))
            t = rng.randrange(0, int(self.span * 0.75))
            gold = {i: rng.choice(space) for i in item_ids}
            task = _Task(f"task-{j:04d}", poster, domain, space, t, gold, t)
            self.tasks.append(task)
            self._emit(
                t,
                LABELS_CONTRACT,
                poster,
                "task_posted",
                [{"task_id": task.task_id, "poster": poster, "domain": domain, "labels": space}],
            )
            # A crew of workers each takes a few items (so labelers overlap on
            # items, which label-quality estimation needs).
            crew = [a for a in rng.sample(self.honest, crew_size + 1) if a != poster][:crew_size]
            per: dict[str, list[str]] = {a: [] for a in crew}
            for item in item_ids:
                for a in rng.sample(crew, lpi):
                    per[a].append(item)
            for a, items in per.items():
                if items:
                    self._submit(task, a, sorted(items), self.skill[a], 60_000, 3 * DAY_MS)
        if not self.tasks:
            return
        total = c.tasks * c.items_per_task
        for s in self.spammers:
            n = min(total, SPAM_ITEMS_MAX, max(SPAM_ITEMS_MIN, round(SPAM_ITEM_FRACTION * total)))
            expected = self._extra_labels(s, n, None, 60_000, 6 * HOUR_MS)
            self.skill[s] = round(expected, 4)
        for r in self.ring:
            n = min(total, RING_ITEMS_MAX, max(RING_ITEMS_MIN, round(RING_ITEM_FRACTION * total)))
            self._extra_labels(r, n, self.skill[r], HOUR_MS, 4 * DAY_MS)

    def _extra_labels(self, who: str, n: int, skill: float | None, lo: int, hi: int) -> float:
        """Labels beyond the honest crews; ``skill`` None answers uniformly at
        random. Returns the expected agreement with gold (for spammers' truth)."""
        c = self.cfg
        picks = sorted(self.rng.sample(range(c.tasks * c.items_per_task), n))
        by_task: dict[int, list[str]] = {}
        for p in picks:
            by_task.setdefault(p // c.items_per_task, []).append(f"item-{p % c.items_per_task:03d}")
        chance = 0.0
        for ti, items in by_task.items():
            task = self.tasks[ti]
            chance += len(items) / len(task.labels)
            self._submit(task, who, items, skill, lo, hi)
        return chance / n

    def _submit(
        self, task: _Task, who: str, items: list[str], skill: float | None, lo: int, hi: int
    ) -> None:
        rng = self.rng
        t = task.t + self._u(lo, hi)
        data = []
        for item in items:
            right = task.gold[item]
            if skill is None:
                label = rng.choice(task.labels)
            else:
                label = right if rng.random() < skill else self._wrong(task.labels, right)
            data.append({"task_id": task.task_id, "item_id": item, "labeler": who, "label": label})
            self.labels.append(_Label(task, item, who, label, t))
        task.last_t = max(task.last_t, t)
        self._emit(t, LABELS_CONTRACT, who, "label_submitted", data, split=self._split(len(data)))

    def reviews_and_label_votes(self) -> None:
        rng = self.rng
        groups: dict[tuple[str, str], list[_Label]] = {}
        for lab in self.labels:
            if rng.random() >= REVIEW_P:
                continue
            r = rng.random()
            if r < 0.4 and lab.task.poster != lab.labeler:
                reviewer = lab.task.poster
            elif r < 0.7:
                reviewer = self._pick_moderator(exclude=(lab.labeler,))
            else:
                reviewer = self._pick_act(exclude=(lab.labeler,))
            groups.setdefault((reviewer, lab.task.task_id), []).append(lab)
        for (reviewer, _), labs in groups.items():
            t = max(lab.t for lab in labs) + self._u(10 * MINUTE_MS, 2 * DAY_MS)
            data = []
            for lab in labs:
                if lab.label == lab.task.gold[lab.item_id]:
                    verdict = "accept" if rng.random() < ACCEPT_CORRECT_P else "reject"
                else:
                    verdict = "reject" if rng.random() < REJECT_WRONG_P else "accept"
                data.append(
                    {
                        "task_id": lab.task.task_id,
                        "item_id": lab.item_id,
                        "labeler": lab.labeler,
                        "reviewer": reviewer,
                        "verdict": verdict,
                    }
                )
            self._emit(
                t, LABELS_CONTRACT, reviewer, "label_reviewed", data, split=self._split(len(data))
            )
        for lab in self.labels:
            if rng.random() >= LABEL_VOTE_P:
                continue
            correct = lab.label == lab.task.gold[lab.item_id]
            for _ in range(1 if rng.random() < 0.6 else 2):
                voter = self._pick_act(exclude=(lab.labeler,))
                if correct:
                    value = 1 if rng.random() < LABEL_UPVOTE_CORRECT_P else -1
                else:
                    value = -1 if rng.random() < LABEL_DOWNVOTE_WRONG_P else 1
                domain = lab.task.domain if rng.random() < 0.5 else None
                t = lab.t + self._u(5 * MINUTE_MS, 3 * DAY_MS)
                self._emit(
                    t,
                    VOTES_CONTRACT,
                    voter,
                    "vote_cast",
                    [self._vote(voter, "label", lab.target, value, domain)],
                )

    def gold(self) -> None:
        rng = self.rng
        for task in self.tasks:
            if rng.random() >= GOLD_REVEAL_P:
                continue
            items = list(task.gold)
            k = max(1, round(len(items) * rng.uniform(0.3, 1.0)))
            shown = sorted(rng.sample(items, k))
            t = task.last_t + self._u(HOUR_MS, DAY_MS)
            self.revealed[task.task_id] = (t, frozenset(shown))
            self._emit(
                t,
                LABELS_CONTRACT,
                task.poster,
                "gold_revealed",
                [
                    {
                        "task_id": task.task_id,
                        "poster": task.poster,
                        "gold": {i: task.gold[i] for i in shown},
                    }
                ],
            )

    def plan_content(self) -> None:
        """Decide every content item (who, when) first, then number them in time
        order, so ids do not reveal which population authored them."""
        c, rng = self.cfg, self.rng
        targets = set(self.targets)
        plan: list[_Content] = []
        for a in self.honest:
            n = _poisson(rng, CONTENT_PER_ACCOUNT * self.act[a])
            early = 0
            if a in targets:  # a serial voter's target must have content to push
                early, n = 2, max(n, 2)
            for k in range(n):
                hi = int(self.span * (0.6 if k < early else 0.9))
                authors = [a]
                if rng.random() < COAUTHOR_P:
                    for _ in range(rng.randint(1, 2)):
                        authors.append(self._pick_pop(exclude=authors))
                domain = self.home[a] if rng.random() < 0.7 else rng.choice(c.domains)
                plan.append(
                    _Content(
                        "honest",
                        authors,
                        rng.randrange(0, hi),
                        domain if rng.random() < 0.8 else None,
                    )
                )
        for r in self.ring:
            for _ in range(_poisson(rng, 2.0) + 1):
                t = rng.randrange(self.span // 10, int(self.span * 0.9))
                plan.append(_Content("ring", [r], t, rng.choice(c.domains)))
        srng = self.srng
        for s in self.sybils:
            for _ in range(_poisson(srng, 3.0) + 1):
                t = srng.randrange(self.sybil_from[s], int(self.span * 0.95))
                plan.append(_Content("sybil", [s], t, srng.choice(c.domains)))
        plan.sort(key=lambda x: x.t)
        seen: dict[str, list[_Content]] = {"honest": [], "ring": [], "sybil": []}
        for n, ct in enumerate(plan):
            ct.content_id = f"post-{n:06d}"
            ct.last_t = ct.t
            earlier = seen[ct.kind]
            draw = self.srng if ct.kind == "sybil" else rng
            if ct.kind == "sybil" and seen["honest"] and draw.random() < SYBIL_PLAGIARISM_P:
                ct.content_hash = draw.choice(seen["honest"]).content_hash
            else:
                raw = f"{c.seed}:{ct.content_id}:{draw.getrandbits(64)}".encode()
                ct.content_hash = hashlib.sha256(raw).hexdigest()
            item: dict[str, Any] = {
                "content_id": ct.content_id,
                "authors": ct.authors,
                "content_hash": ct.content_hash,
            }
            derived_p = {"honest": DERIVED_P, "sybil": 0.3, "ring": 0.0}[ct.kind]
            if earlier and draw.random() < derived_p:
                parents = draw.sample(earlier, min(len(earlier), draw.randint(1, 2)))
                item["derived_from"] = [p.content_id for p in parents]
            if ct.domain is not None:
                item["domain"] = ct.domain
            self._emit(ct.t, CONTENT_CONTRACT, ct.authors[0], "content_authored", [item])
            earlier.append(ct)
        self.contents = plan

    def honest_interactions(self) -> None:
        """Votes and attestations on honest and ring content, account votes,
        endorsements, spammer downvotes, retractions."""
        rng = self.rng
        for ct in self.contents:
            if ct.kind == "sybil":
                continue
            if ct.kind == "ring":  # rings get little outside attention
                lam = 0.5
            else:
                fame = self.pop[ct.authors[0]] / self.mean_pop
                lam = min(CONTENT_VOTES_CAP, CONTENT_VOTES_MEAN * fame)
            dom = ct.domain or "general"
            for _ in range(_poisson(rng, lam)):
                voter = self._pick_act(exclude=ct.authors)
                value = 1 if rng.random() < CONTENT_UPVOTE_P else -1
                t = ct.t + self._u(MINUTE_MS, 4 * DAY_MS)
                ct.last_t = max(ct.last_t, t)
                self._emit(
                    t,
                    VOTES_CONTRACT,
                    voter,
                    "vote_cast",
                    [
                        self._vote(
                            voter,
                            "content",
                            ct.content_id,
                            value,
                            dom if rng.random() < 0.5 else None,
                        )
                    ],
                )
            for _ in range(_poisson(rng, ATTESTATIONS_MEAN)):
                if rng.random() < 0.3:
                    attester = self._pick_moderator(exclude=ct.authors)
                else:
                    attester = self._pick_act(exclude=ct.authors)
                verdict = "authentic" if rng.random() < AUTHENTIC_P else "disputed"
                t = ct.t + self._u(10 * MINUTE_MS, 5 * DAY_MS)
                ct.last_t = max(ct.last_t, t)
                self._emit(
                    t,
                    CONTENT_CONTRACT,
                    attester,
                    "content_attested",
                    [{"attester": attester, "content_id": ct.content_id, "verdict": verdict}],
                )
        for a in self.honest:
            for _ in range(_poisson(rng, ACCOUNT_VOTES_MEAN * self.act[a])):
                target = self._pick_pop(exclude=(a,))
                value = 1 if rng.random() < ACCOUNT_UPVOTE_P else -1
                vote_dom = self.home[target] if rng.random() < 0.3 else None
                self._emit(
                    rng.randrange(0, self.span),
                    VOTES_CONTRACT,
                    a,
                    "vote_cast",
                    [self._vote(a, "account", target, value, vote_dom)],
                )
        for a in self.honest:
            n = _poisson(rng, ENDORSE_MEAN * self.act[a])
            if a in self.seeds:
                n += SEED_EXTRA_ENDORSE
            chosen: list[str] = [a]
            data = []
            for _ in range(min(n, len(self.honest) - 1)):
                e = self._pick_pop(exclude=chosen)
                chosen.append(e)
                item: dict[str, Any] = {"endorser": a, "endorsee": e}
                if rng.random() < 0.5:
                    item["domain"] = self.home[e]
                if rng.random() < 0.3:
                    item["weight"] = round(rng.uniform(0.2, 1.0), 2)
                data.append(item)
            if data:
                self._emit(
                    rng.randrange(0, self.span),
                    VOTES_CONTRACT,
                    a,
                    "endorsed",
                    data,
                    split=self._split(len(data)),
                )
        first_label: dict[str, int] = {}
        for lab in self.labels:
            if lab.labeler not in first_label or lab.t < first_label[lab.labeler]:
                first_label[lab.labeler] = lab.t
        for s in self.spammers:
            start = first_label.get(s, 0)
            for _ in range(_poisson(rng, SPAM_DOWNVOTES_MEAN) + 1):
                voter = self._pick_moderator() if rng.random() < 0.4 else self._pick_act()
                self._emit(
                    start + self._u(HOUR_MS, 5 * DAY_MS),
                    VOTES_CONTRACT,
                    voter,
                    "vote_cast",
                    [self._vote(voter, "account", s, -1, None)],
                )

    def sybil_region(self) -> None:
        """Dense mutual endorsement and upvoting, a few disputes from outside,
        camouflage votes on honest content, and exactly ``attack_edges`` honest
        accounts duped into trusting a sybil (the region's own random streams)."""
        with self._stream(self.srng):
            self._sybil_region()

    def _sybil_region(self) -> None:
        c, rng = self.cfg, self.rng
        n = len(self.sybils)
        eligible = [ct for ct in self.contents if ct.kind == "honest" and ct.t < self.span * 0.9]
        for s in self.sybils:
            others = [o for o in self.sybils if o != s]
            start = self.sybil_from[s]
            k = min(len(others), SYBIL_ENDORSE_MAX, round(SYBIL_DENSITY * len(others)))
            if k:
                data = [
                    {"endorser": s, "endorsee": e, "weight": 1.0} for e in rng.sample(others, k)
                ]
                self._emit(
                    start + self._u(MINUTE_MS, 3 * DAY_MS),
                    VOTES_CONTRACT,
                    s,
                    "endorsed",
                    data,
                    split=self._split(len(data)),
                )
            for e in rng.sample(others, min(len(others), SYBIL_ACCOUNT_VOTES)):
                t = rng.randrange(start, self.span)
                self._emit(
                    t, VOTES_CONTRACT, s, "vote_cast", [self._vote(s, "account", e, 1, None)]
                )
            for ct in rng.sample(eligible, min(len(eligible), SYBIL_CAMOUFLAGE_VOTES)):
                t = max(ct.t, start) + self._u(HOUR_MS, 3 * DAY_MS)
                ct.last_t = max(ct.last_t, t)  # a retraction comes after every vote
                self._emit(
                    t,
                    VOTES_CONTRACT,
                    s,
                    "vote_cast",
                    [self._vote(s, "content", ct.content_id, 1, None)],
                )
        for ct in self.contents:
            if ct.kind != "sybil":
                continue
            others = [o for o in self.sybils if o not in ct.authors]
            k = min(len(others), SYBIL_CONTENT_VOTERS, round(0.6 * (n - 1)))
            for v in rng.sample(others, k):
                t = ct.t + self._u(MINUTE_MS, DAY_MS)
                self._emit(
                    t,
                    VOTES_CONTRACT,
                    v,
                    "vote_cast",
                    [self._vote(v, "content", ct.content_id, 1, ct.domain)],
                )
            for v in rng.sample(others, min(len(others), rng.randint(2, 3))):
                t = ct.t + self._u(MINUTE_MS, DAY_MS)
                self._emit(
                    t,
                    CONTENT_CONTRACT,
                    v,
                    "content_attested",
                    [{"attester": v, "content_id": ct.content_id, "verdict": "authentic"}],
                )
            if rng.random() < SYBIL_DISPUTE_P:
                who = self._pick_moderator() if rng.random() < 0.6 else self._pick_act()
                t = ct.t + self._u(HOUR_MS, 4 * DAY_MS)
                self._emit(
                    t,
                    CONTENT_CONTRACT,
                    who,
                    "content_attested",
                    [{"attester": who, "content_id": ct.content_id, "verdict": "disputed"}],
                )
        # Attack edges: distinct (honest, sybil) pairs, each one trust-carrying
        # event (an endorsement or an account upvote), after the sybil exists.
        if c.attack_edges:
            # Ordinary members get duped, not moderators (unless there are too
            # few ordinary members for the requested number of distinct pairs).
            dupes = self.honest[c.seeds :]
            if c.attack_edges > len(dupes) * n:
                dupes = self.honest
            # The duped honest accounts come first and from their own stream, so that
            # they are the same whatever the number of sybils (distinct accounts, hence
            # distinct pairs, when there are enough of them).
            arng = self.arng
            if c.attack_edges <= len(dupes):
                duped = arng.sample(dupes, c.attack_edges)
                pairs = [(h, self.sybils[arng.randrange(n)]) for h in duped]
            else:
                picks = arng.sample(range(len(dupes) * n), c.attack_edges)
                pairs = [(dupes[p // n], self.sybils[p % n]) for p in picks]
            for h, s in pairs:
                t = self.sybil_from[s] + arng.randrange(DAY_MS, 5 * DAY_MS)
                if arng.random() < 0.5:
                    self._emit(t, VOTES_CONTRACT, h, "endorsed", [{"endorser": h, "endorsee": s}])
                else:
                    self._emit(
                        t, VOTES_CONTRACT, h, "vote_cast", [self._vote(h, "account", s, 1, None)]
                    )

    def vote_ring(self) -> None:
        """Each ring member repeatedly upvotes every other member's account, and
        upvotes (sometimes twice) their labels and content."""
        rng = self.rng
        for a in self.ring:
            for b in self.ring:
                if a == b:
                    continue
                left = rng.randint(*RING_ACCOUNT_VOTES)
                while left:
                    burst = 2 if left >= 2 and rng.random() < 0.3 else 1
                    t = rng.randrange(self.span // 20, int(self.span * 0.95))
                    votes = [self._vote(a, "account", b, 1, None) for _ in range(burst)]
                    self._emit(t, VOTES_CONTRACT, a, "vote_cast", votes, split=True)
                    left -= burst
        ring = set(self.ring)
        for lab in self.labels:
            if lab.labeler not in ring:
                continue
            for a in self.ring:
                if a != lab.labeler and rng.random() < 0.8:
                    for _ in range(rng.randint(1, 2)):
                        t = lab.t + self._u(MINUTE_MS, DAY_MS)
                        self._emit(
                            t,
                            VOTES_CONTRACT,
                            a,
                            "vote_cast",
                            [self._vote(a, "label", lab.target, 1, lab.task.domain)],
                        )
        for ct in self.contents:
            if ct.kind != "ring":
                continue
            for a in self.ring:
                if a in ct.authors:
                    continue
                for _ in range(rng.randint(1, 2)):
                    t = ct.t + self._u(MINUTE_MS, DAY_MS)
                    self._emit(
                        t,
                        VOTES_CONTRACT,
                        a,
                        "vote_cast",
                        [self._vote(a, "content", ct.content_id, 1, ct.domain)],
                    )
                if rng.random() < 0.5:
                    t = ct.t + self._u(MINUTE_MS, DAY_MS)
                    item = {"attester": a, "content_id": ct.content_id, "verdict": "authentic"}
                    self._emit(t, CONTENT_CONTRACT, a, "content_attested", [item])

    def serial_voting(self) -> None:
        """Each serial voter fires 40-60 upvotes at its target's content, labels
        and account inside a two-hour window, plus a few unrelated votes."""
        rng = self.rng
        honest_content = [ct for ct in self.contents if ct.kind == "honest"]
        for voter, target in zip(self.serial, self.targets, strict=True):
            w = rng.randrange(int(self.span * 0.7), int(self.span * 0.85))
            contents = [ct for ct in honest_content if target in ct.authors and ct.t < w]
            labels = [lab for lab in self.labels if lab.labeler == target and lab.t < w]
            n = rng.randint(*SERIAL_VOTES)
            times = sorted(w + self._u(0, SERIAL_WINDOW_MS) for _ in range(n))
            i = 0
            while i < len(times):
                burst = min(len(times) - i, rng.choice((1, 1, 1, 2, 3)))
                data = []
                for _ in range(burst):
                    r = rng.random()
                    if contents and r < 0.55:
                        ct = rng.choice(contents)
                        ct.last_t = max(ct.last_t, times[i])
                        data.append(self._vote(voter, "content", ct.content_id, 1, None))
                    elif labels and r < 0.85:
                        data.append(self._vote(voter, "label", rng.choice(labels).target, 1, None))
                    else:
                        data.append(self._vote(voter, "account", target, 1, None))
                self._emit(times[i], VOTES_CONTRACT, voter, "vote_cast", data, split=True)
                i += burst
            for _ in range(_poisson(rng, SERIAL_CAMOUFLAGE_MEAN)):
                if not honest_content:
                    break
                ct = rng.choice(honest_content)
                if voter in ct.authors:
                    continue
                t = ct.t + self._u(HOUR_MS, 4 * DAY_MS)
                ct.last_t = max(ct.last_t, t)
                self._emit(
                    t,
                    VOTES_CONTRACT,
                    voter,
                    "vote_cast",
                    [self._vote(voter, "content", ct.content_id, 1, None)],
                )

    def retractions_and_nfts(self) -> None:
        rng = self.rng
        for ct in self.contents:
            if ct.kind == "honest" and rng.random() < RETRACT_P:
                self.retracted.add(ct.content_id)
                by = rng.choice(ct.authors)
                self._emit(
                    ct.last_t + self._u(HOUR_MS, 2 * DAY_MS),
                    CONTENT_CONTRACT,
                    by,
                    "content_retracted",
                    [{"content_id": ct.content_id, "by": by}],
                )
        token = 0
        for _ in range(self.cfg.nft_mints):
            owner = self._pick_act()
            ids = []
            for _ in range(rng.randint(1, 3)):
                ids.append(f"tok-{token:05d}")
                token += 1
            self._emit(
                rng.randrange(0, self.span),
                NFT_CONTRACT,
                owner,
                "nft_mint",
                [{"owner_id": owner, "token_ids": ids}],
                standard=NFT_STANDARD,
                version=NFT_VERSION,
            )

    def camouflage(self) -> None:
        """Camouflaged attackers: honest on some items, malicious on others.

        The group shares a pool of items. On items whose gold will be revealed
        they label carefully (they know which those are: the worst case, an
        attacker who can tell the checks apart); on a share of the others, chosen
        once per item, every member gives the same wrong label. Honest accounts
        review, vote on and vouch for them like anyone else; they upvote honest
        content and correct honest labels as cover, and endorse and upvote their
        colluders: the sybils if there are any, else the vote ring, else each
        other. No content of their own (content ids are numbered in time order
        when content is planned, so later content would stand out).

        Runs after every other phase and returns before touching the RNG when
        ``camouflage`` is 0, so a world without camouflage is exactly the world
        generated before this phase existed, and a world with it contains every
        data item of the same config without it.
        """
        if not self.camo or not self.honest:
            return
        c, rng = self.cfg, self.rng
        total = c.tasks * c.items_per_task
        labels: list[_Label] = []
        if total:
            k = min(total, CAMO_ITEMS_MAX, max(CAMO_ITEMS_MIN, round(CAMO_ITEM_FRACTION * total)))
            pool = sorted(rng.sample(range(total), k))
            sabotaged = set()
            for p in pool:
                task = self.tasks[p // c.items_per_task]
                item = f"item-{p % c.items_per_task:03d}"
                checked = item in self.revealed.get(task.task_id, (0, frozenset()))[1]
                if not checked and rng.random() < CAMO_SABOTAGE_P:
                    sabotaged.add(p)
            for who in self.camo:
                skill = rng.uniform(*CAMO_SKILL)
                mine = [p for p in pool if rng.random() < CAMO_LABEL_P] or [rng.choice(pool)]
                by_task: dict[int, list[int]] = {}
                for p in mine:
                    by_task.setdefault(p // c.items_per_task, []).append(p)
                right_count = 0
                for ti, ps in by_task.items():
                    task = self.tasks[ti]
                    reveal = self.revealed.get(task.task_id)
                    # Before the task's gold is revealed, as honest crews label.
                    hi = reveal[0] - task.t if reveal else 3 * DAY_MS
                    t = task.t + self._u(MINUTE_MS, max(hi, MINUTE_MS + 1))
                    data = []
                    for p in ps:
                        item = f"item-{p % c.items_per_task:03d}"
                        right = task.gold[item]
                        if p in sabotaged:  # one agreed wrong label per item
                            label = task.labels[(task.labels.index(right) + 1) % len(task.labels)]
                        elif rng.random() < skill:
                            label = right
                        else:
                            label = self._wrong(task.labels, right)
                        right_count += label == right
                        row = {"task_id": task.task_id, "item_id": item, "labeler": who}
                        data.append({**row, "label": label})
                        labels.append(_Label(task, item, who, label, t))
                    split = self._split(len(data))
                    self._emit(t, LABELS_CONTRACT, who, "label_submitted", data, split=split)
                self.skill[who] = round(right_count / len(mine), 4)
        # Reviews and votes on their labels, exactly as honest labels get them.
        groups: dict[tuple[str, str], list[_Label]] = {}
        for lab in labels:
            if rng.random() >= REVIEW_P:
                continue
            r = rng.random()
            if r < 0.4:
                reviewer = lab.task.poster
            elif r < 0.7:
                reviewer = self._pick_moderator()
            else:
                reviewer = self._pick_act()
            groups.setdefault((reviewer, lab.task.task_id), []).append(lab)
        for (reviewer, _), labs in groups.items():
            t = max(lab.t for lab in labs) + self._u(10 * MINUTE_MS, 2 * DAY_MS)
            data = []
            for lab in labs:
                if lab.label == lab.task.gold[lab.item_id]:
                    verdict = "accept" if rng.random() < ACCEPT_CORRECT_P else "reject"
                else:
                    verdict = "reject" if rng.random() < REJECT_WRONG_P else "accept"
                data.append(
                    {
                        "task_id": lab.task.task_id,
                        "item_id": lab.item_id,
                        "labeler": lab.labeler,
                        "reviewer": reviewer,
                        "verdict": verdict,
                    }
                )
            self._emit(
                t, LABELS_CONTRACT, reviewer, "label_reviewed", data, split=self._split(len(data))
            )
        for lab in labels:
            if rng.random() >= LABEL_VOTE_P:
                continue
            correct = lab.label == lab.task.gold[lab.item_id]
            for _ in range(1 if rng.random() < 0.6 else 2):
                voter = self._pick_act()
                if correct:
                    value = 1 if rng.random() < LABEL_UPVOTE_CORRECT_P else -1
                else:
                    value = -1 if rng.random() < LABEL_DOWNVOTE_WRONG_P else 1
                self._emit(
                    lab.t + self._u(5 * MINUTE_MS, 3 * DAY_MS),
                    VOTES_CONTRACT,
                    voter,
                    "vote_cast",
                    [self._vote(voter, "label", lab.target, value, lab.task.domain)],
                )
        # Honest accounts vouch for them like for an average colleague.
        for who in self.camo:
            for _ in range(_poisson(rng, CAMO_TRUST_IN)):
                voter = self._pick_act()
                self._emit(
                    rng.randrange(0, self.span),
                    VOTES_CONTRACT,
                    voter,
                    "vote_cast",
                    [self._vote(voter, "account", who, 1, None)],
                )
            for _ in range(_poisson(rng, CAMO_TRUST_IN)):
                endorser = self._pick_act()
                self._emit(
                    rng.randrange(0, self.span),
                    VOTES_CONTRACT,
                    endorser,
                    "endorsed",
                    [{"endorser": endorser, "endorsee": who}],
                )
        # Cover: upvotes on honest content (never on retracted content, whose
        # retraction must stay its last event) and on correct honest labels.
        content = [
            ct
            for ct in self.contents
            if ct.kind == "honest" and ct.content_id not in self.retracted
        ]
        honest = set(self.honest)
        good = [
            lab
            for lab in self.labels
            if lab.labeler in honest and lab.label == lab.task.gold[lab.item_id]
        ]
        colluders = self.sybils or self.ring
        for who in self.camo:
            # At least one: a camouflaged account always shows some honest activity.
            for _ in range(1 + _poisson(rng, CAMO_COVER_VOTES - 1)):
                if content and (not good or rng.random() < 0.5):
                    ct = rng.choice(content)
                    t = ct.t + self._u(HOUR_MS, 4 * DAY_MS)
                    vote = self._vote(who, "content", ct.content_id, 1, None)
                elif good:
                    lab = rng.choice(good)
                    t = lab.t + self._u(5 * MINUTE_MS, 3 * DAY_MS)
                    vote = self._vote(who, "label", lab.target, 1, None)
                else:
                    break
                self._emit(t, VOTES_CONTRACT, who, "vote_cast", [vote])
            # The attack: vouching for colluders (after they exist).
            pool_c = [a for a in (colluders or self.camo) if a != who]
            for e in rng.sample(pool_c, min(len(pool_c), CAMO_COLLUDE)):
                t = self.sybil_from.get(e, 0) + self._u(HOUR_MS, 5 * DAY_MS)
                self._emit(t, VOTES_CONTRACT, who, "endorsed", [{"endorser": who, "endorsee": e}])
            for e in rng.sample(pool_c, min(len(pool_c), CAMO_COLLUDE)):
                t = self.sybil_from.get(e, 0) + self._u(HOUR_MS, 5 * DAY_MS)
                self._emit(
                    t, VOTES_CONTRACT, who, "vote_cast", [self._vote(who, "account", e, 1, None)]
                )

    def bursts(self) -> None:
        """Bursts: each a crew of fresh accounts acting on one honest target at once.

        For each burst, a target (an honest non-moderator account, a different one per
        burst while there are enough) and a crew of ``BURST_CREW`` fresh accounts
        ``bst000.near``...; the window starts between ``BURST_FROM`` and ``BURST_TO``
        of the world. Each crew account first appears within ``BURST_LEAD_MS`` before
        the window (0-2 upvotes on random honest content, else its first act is the
        burst), then, inside ``BURST_WINDOW_MS``, upvotes or endorses the target's
        account and upvotes one or two of its content items (never retracted ones, and
        only items authored before the window).

        Runs after every other phase, from a random stream of its own, and returns
        before touching it when ``bursts`` is 0: a world without bursts is exactly the
        world generated before this phase existed, and a world with bursts contains
        every data item of the same config without them.
        """
        if not self.cfg.bursts or not self.honest:
            return
        with self._stream(self.brng):
            self._bursts()

    def _bursts(self) -> None:
        c, rng = self.cfg, self.rng
        pool = self.honest[c.seeds :] or self.honest
        if c.bursts <= len(pool):
            targets = rng.sample(pool, c.bursts)
        else:
            targets = [rng.choice(pool) for _ in range(c.bursts)]
        live = [
            ct
            for ct in self.contents
            if ct.kind == "honest" and ct.content_id not in self.retracted
        ]
        for target in targets:
            w = rng.randrange(int(self.span * BURST_FROM), int(self.span * BURST_TO))
            theirs = [ct for ct in live if target in ct.authors and ct.t < w]
            crew = [
                f"bst{len(self.burst_crew) + k:03d}.near" for k in range(rng.randint(*BURST_CREW))
            ]
            self.burst_crew.extend(crew)
            self.burst_targets.append(target)
            for who in crew:
                born = w - self._u(0, BURST_LEAD_MS)
                seen = [ct for ct in live if ct.t < born]
                for _ in range(rng.randint(*BURST_WARMUP) if seen else 0):
                    ct = rng.choice(seen)
                    self._emit(
                        born + self._u(0, HOUR_MS),
                        VOTES_CONTRACT,
                        who,
                        "vote_cast",
                        [self._vote(who, "content", ct.content_id, 1, None)],
                    )
                t = w + self._u(0, BURST_WINDOW_MS)
                if rng.random() < 0.5:
                    item = {"endorser": who, "endorsee": target}
                    self._emit(t, VOTES_CONTRACT, who, "endorsed", [item])
                else:
                    vote = self._vote(who, "account", target, 1, None)
                    self._emit(t, VOTES_CONTRACT, who, "vote_cast", [vote])
                for ct in rng.sample(theirs, min(len(theirs), rng.randint(1, 2))):
                    t = w + self._u(0, BURST_WINDOW_MS)
                    vote = self._vote(who, "content", ct.content_id, 1, None)
                    self._emit(t, VOTES_CONTRACT, who, "vote_cast", [vote])

    # ---- assembly --------------------------------------------------------------

    def messages(self) -> list[SimMessage]:
        """Order receipts by time and give them chain context."""
        cfg = self.cfg
        calls = sorted(self.calls, key=lambda x: (x.t, x.seq))
        if not calls:
            return []
        t0 = calls[0].t
        out: list[SimMessage] = []
        used: set[str] = set()
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        for n, call in enumerate(calls):
            b = (call.t - t0) // BLOCK_MS
            # Knuth multiplicative hash: deterministic, per-block, 0 for block 0
            # so the first event's timestamp is exactly start_ns.
            jitter = (b * 2_654_435_761) % (MAX_JITTER_NS // 1_000_000) * 1_000_000
            height = START_HEIGHT + b
            ts = cfg.start_ns + b * BLOCK_NS + jitter
            rid = _receipt_id(cfg.seed, n, used)
            for li, (std, ver, event, data) in enumerate(call.logs):
                log = EVENT_PREFIX + dumps(
                    {"standard": std, "version": ver, "event": event, "data": data}
                )
                out.append(
                    SimMessage(
                        call.actor,
                        {
                            "block_height": height,
                            "block_timestamp": ts,
                            "receipt_id": rid,
                            "log_index": li,
                            "contract_id": call.contract,
                            "predecessor_id": call.actor,
                            "log": log,
                        },
                    )
                )
        return out

    def truth(self) -> GroundTruth:
        return GroundTruth(
            honest=list(self.honest),
            seeds=list(self.seeds),
            spammers=list(self.spammers),
            sybils=list(self.sybils),
            ring=list(self.ring),
            serial_voters=list(self.serial),
            serial_targets=list(self.targets),
            gold={t.task_id: dict(t.gold) for t in self.tasks},
            skill=dict(self.skill),
            camouflaged=list(self.camo),
            burst_accounts=list(self.burst_crew),
            burst_targets=list(self.burst_targets),
        )


def _receipt_id(seed: int, n: int, used: set[str]) -> str:
    """A 44-character base58-looking id, a pure function of (seed, n), made
    unique by re-salting in the (astronomically unlikely) case of a clash."""
    salt = 0
    while True:
        digest = hashlib.sha512(f"renown-sim:{seed}:{n}:{salt}".encode()).digest()
        rid = digest[:44].translate(_B58_TABLE).decode("ascii")
        if rid not in used:
            used.add(rid)
            return rid
        salt += 1


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------


def generate(config: WorldConfig) -> World:
    """Generate the world described by ``config``.

    Pure and deterministic: the same config gives the same messages, in the
    same order, with the same bytes once encoded. See ``docs/simulate.md``.
    """
    sim = _Sim(config)
    sim.accounts()
    sim.labeling()
    sim.reviews_and_label_votes()
    sim.gold()
    sim.plan_content()
    sim.honest_interactions()
    sim.sybil_region()
    sim.vote_ring()
    sim.serial_voting()
    sim.retractions_and_nfts()
    sim.camouflage()  # a no-op without camouflaged accounts: see the method
    sim.bursts()  # last, its own stream, a no-op without bursts: see the method
    return World(messages=sim.messages(), truth=sim.truth(), config=config)


def truth_path_for(messages_path: Path) -> Path:
    """``world.jsonl`` -> ``world.truth.json`` (the CLI's default pairing)."""
    return messages_path.with_name(messages_path.stem + ".truth.json")


def _line(msg: SimMessage) -> str:
    return json.dumps(
        {"key": msg.key, "value": msg.value}, separators=(",", ":"), ensure_ascii=False
    )


def write_world(world: World, messages_path: Path, truth_path: Path) -> None:
    """Write messages as JSONL (``{"key":..., "value":...}`` per line) and the
    truth as JSON (``GroundTruth.to_json()`` plus the ``config`` used).

    Output bytes depend only on the world, so files can be diffed across runs.
    """
    with open(messages_path, "w", encoding="utf-8", newline="\n") as f:
        for msg in world.messages:
            f.write(_line(msg))
            f.write("\n")
    doc = {
        "format": "renown-sim-truth/1",
        "config": world.config.to_json(),
        **world.truth.to_json(),
    }
    with open(truth_path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def read_messages(path: Path) -> Iterator[SimMessage]:
    """Stream the messages of a JSONL file written by :func:`write_world`.

    Lazy, so a 200k-message file is never fully in memory. Blank lines are
    skipped; a line that is not a ``{"key": str, "value": object}`` raises
    :class:`ValueError` naming the line, since a corrupt world file is a bug.
    """
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON: {exc}") from exc
            if (
                not isinstance(obj, dict)
                or not isinstance(obj.get("key"), str)
                or not isinstance(obj.get("value"), dict)
            ):
                raise ValueError(f'{path}:{lineno}: expected {{"key": str, "value": object}}')
            yield SimMessage(obj["key"], obj["value"])


def read_truth(path: Path) -> GroundTruth:
    """Load a truth file written by :func:`write_world`."""
    with open(path, encoding="utf-8") as f:
        return GroundTruth.from_json(json.load(f))
