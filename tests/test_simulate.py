"""Properties of the seeded world simulator (``simulate``).

These check what consumers rely on: the EVENTS.md shapes exactly, determinism,
the attack structure the detectors are measured against, and ground truth that
agrees with the emitted events.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from simulate import (
    ACCOUNT_ID_RE,
    PRESETS,
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
from simulate.world import EVENT_PREFIX, RENOWN_EVENTS

ENVELOPE: dict[str, type] = {
    "block_height": int,
    "block_timestamp": int,
    "receipt_id": str,
    "log_index": int,
    "contract_id": str,
    "predecessor_id": str,
    "log": str,
}

# event -> (required fields, optional fields), from the EVENTS.md table.
SCHEMA: dict[str, tuple[set[str], set[str]]] = {
    "task_posted": ({"task_id", "poster", "domain"}, {"labels"}),
    "label_submitted": ({"task_id", "item_id", "labeler", "label"}, set()),
    "label_reviewed": ({"task_id", "item_id", "labeler", "reviewer", "verdict"}, set()),
    "gold_revealed": ({"task_id", "poster", "gold"}, set()),
    "vote_cast": ({"voter", "target_kind", "target", "value"}, {"domain"}),
    "endorsed": ({"endorser", "endorsee"}, {"domain", "weight"}),
    "content_authored": ({"content_id", "authors", "content_hash"}, {"derived_from", "domain"}),
    "content_attested": ({"attester", "content_id", "verdict"}, set()),
    "content_retracted": ({"content_id", "by"}, set()),
}

# The acting (subject) account of each event: the Kafka key.
ACTOR = {
    "task_posted": "poster",
    "label_submitted": "labeler",
    "label_reviewed": "reviewer",
    "gold_revealed": "poster",
    "vote_cast": "voter",
    "endorsed": "endorser",
    "content_attested": "attester",
    "content_retracted": "by",
}

DOMAIN_RE = re.compile(r"^[a-z0-9:_-]{1,64}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
B58_RE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{43,44}$")


@pytest.fixture(scope="module")
def tiny() -> World:
    return generate(PRESETS["tiny"])


@pytest.fixture(scope="module")
def default() -> World:
    return generate(PRESETS["default"])


def items(world: World) -> list[tuple[SimMessage, dict[str, Any], int, dict[str, Any]]]:
    """Flatten to (message, parsed envelope, index in data, data item)."""
    out = []
    for m in world.messages:
        env = json.loads(m.value["log"][len(EVENT_PREFIX) :])
        for i, item in enumerate(env["data"]):
            out.append((m, env, i, item))
    return out


def renown_items(world: World, event: str) -> list[dict[str, Any]]:
    return [
        it
        for _, env, _, it in items(world)
        if env["standard"] == "renown" and env["event"] == event
    ]


def jsonl_bytes(world: World, tmp_path: Path, name: str) -> tuple[bytes, bytes]:
    mp, tp = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.truth.json"
    write_world(world, mp, tp)
    return mp.read_bytes(), tp.read_bytes()


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = jsonl_bytes(generate(PRESETS["tiny"]), tmp_path, "a")
    b = jsonl_bytes(generate(PRESETS["tiny"]), tmp_path, "b")
    assert a == b


def test_other_seed_gives_other_world(tmp_path: Path) -> None:
    cfg = PRESETS["tiny"]
    other = dataclasses.replace(cfg, seed=cfg.seed + 1)
    a = jsonl_bytes(generate(cfg), tmp_path, "a")
    b = jsonl_bytes(generate(other), tmp_path, "b")
    assert a[0] != b[0]


# ---------------------------------------------------------------- envelope and events


def test_envelope_fields_and_types(default: World) -> None:
    for m in default.messages:
        assert set(m.value) == set(ENVELOPE)
        for name, typ in ENVELOPE.items():
            assert type(m.value[name]) is typ, (name, m.value)
        assert m.value["block_height"] > 0 and m.value["log_index"] >= 0
        assert B58_RE.match(m.value["receipt_id"])
        assert ACCOUNT_ID_RE.match(m.value["contract_id"])
        assert m.key == m.value["predecessor_id"]


def test_logs_are_nep297_with_known_events(default: World) -> None:
    seen: Counter[str] = Counter()
    for m in default.messages:
        log = m.value["log"]
        assert log.startswith(EVENT_PREFIX)
        env = json.loads(log[len(EVENT_PREFIX) :])
        assert list(env) == ["standard", "version", "event", "data"]
        assert isinstance(env["data"], list) and env["data"]
        assert all(isinstance(d, dict) for d in env["data"])
        if env["standard"] == "renown":
            assert env["version"] == "1.0.0"
            assert env["event"] in RENOWN_EVENTS
        else:
            assert (env["standard"], env["event"]) == ("nep171", "nft_mint")
            assert env["version"].startswith("1.")
            assert m.value["contract_id"] == "nft.market.near"
        seen[env["event"]] += 1
    assert set(seen) == {*RENOWN_EVENTS, "nft_mint"}, "every kind of event occurs"
    assert seen["nft_mint"] == default.config.nft_mints


def test_data_items_match_events_table(default: World) -> None:
    for m, env, _, it in items(default):
        if env["standard"] == "nep171":
            assert set(it) == {"owner_id", "token_ids"}
            assert ACCOUNT_ID_RE.match(it["owner_id"]) and m.key == it["owner_id"]
            assert it["token_ids"] and all(isinstance(t, str) for t in it["token_ids"])
            continue
        required, optional = SCHEMA[env["event"]]
        assert required <= set(it) <= required | optional, (env["event"], it)
        if "domain" in it:
            assert DOMAIN_RE.match(it["domain"])
        ev = env["event"]
        if ev == "task_posted":
            assert it["labels"] and all(isinstance(x, str) for x in it["labels"])
        elif ev == "label_submitted":
            assert isinstance(it["label"], str)
        elif ev == "label_reviewed":
            assert it["verdict"] in ("accept", "reject")
        elif ev == "gold_revealed":
            assert it["gold"] and all(isinstance(v, str) for v in it["gold"].values())
        elif ev == "vote_cast":
            assert it["target_kind"] in ("account", "content", "label")
            assert type(it["value"]) is int and it["value"] in (1, -1)
            if it["target_kind"] == "account":
                assert ACCOUNT_ID_RE.match(it["target"])
            elif it["target_kind"] == "label":
                task_id, item_id, labeler = it["target"].split("/")
                assert task_id and item_id and ACCOUNT_ID_RE.match(labeler)
        elif ev == "endorsed":
            if "weight" in it:
                assert isinstance(it["weight"], float) and 0 < it["weight"] <= 1
        elif ev == "content_authored":
            assert it["authors"] and HEX64_RE.match(it["content_hash"])
            assert m.key == it["authors"][0]
            assert all(isinstance(c, str) for c in it.get("derived_from", []))
        elif ev == "content_attested":
            assert it["verdict"] in ("authentic", "disputed")
        if ev in ACTOR:
            assert m.key == it[ACTOR[ev]], (ev, m.key, it)


ACCOUNT_FIELDS = (
    "poster",
    "labeler",
    "reviewer",
    "voter",
    "endorser",
    "endorsee",
    "attester",
    "by",
    "owner_id",
)


def test_all_account_ids_follow_near_rules(default: World) -> None:
    accounts: set[str] = set()
    for m, _, _, it in items(default):
        accounts |= {m.key, m.value["predecessor_id"], m.value["contract_id"]}
        accounts |= {it[f] for f in ACCOUNT_FIELDS if f in it}
        accounts |= set(it.get("authors", []))
        if it.get("target_kind") == "account":
            accounts.add(it["target"])
    t = default.truth
    accounts |= set(t.honest + t.spammers + t.sybils + t.ring + t.serial_voters)
    bad = sorted(a for a in accounts if not ACCOUNT_ID_RE.match(a))
    assert not bad
    assert not ACCOUNT_ID_RE.match("Bob.near") and not ACCOUNT_ID_RE.match("a")


def test_idempotency_keys_unique_and_receipts_coherent(default: World) -> None:
    keys = [(m.value["receipt_id"], m.value["log_index"], i) for m, _, i, _ in items(default)]
    assert len(keys) == len(set(keys))
    by_receipt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in default.messages:
        by_receipt[m.value["receipt_id"]].append(m.value)
    for logs in by_receipt.values():
        assert [v["log_index"] for v in logs] == list(range(len(logs)))
        assert (
            len(
                {
                    (v["block_height"], v["block_timestamp"], v["predecessor_id"], v["contract_id"])
                    for v in logs
                }
            )
            == 1
        )


def test_batches_exist(default: World) -> None:
    """EVENTS.md allows several items per log and several logs per receipt."""
    assert any(
        len(json.loads(m.value["log"][len(EVENT_PREFIX) :])["data"]) > 1 for m in default.messages
    )
    assert any(m.value["log_index"] > 0 for m in default.messages)


# ---------------------------------------------------------------- time


def test_blocks_monotone_and_plausibly_spaced(default: World) -> None:
    msgs = default.messages
    heights = [m.value["block_height"] for m in msgs]
    stamps = [m.value["block_timestamp"] for m in msgs]
    assert heights == sorted(heights) and stamps == sorted(stamps)
    assert stamps[0] == default.config.start_ns
    span_days = (stamps[-1] - stamps[0]) / 86_400e9
    assert 7 <= span_days <= 35
    # About one block per second: timestamp advance tracks height advance.
    per_block = (stamps[-1] - stamps[0]) / (heights[-1] - heights[0])
    assert 0.9e9 <= per_block <= 1.3e9
    same_block: dict[int, int] = {}
    for h, s in zip(heights, stamps, strict=True):
        assert same_block.setdefault(h, s) == s


def test_event_kinds_are_mixed_in_time(default: World) -> None:
    n = len(default.messages)
    for part in range(4):
        chunk = default.messages[part * n // 4 : (part + 1) * n // 4]
        kinds = {json.loads(m.value["log"][len(EVENT_PREFIX) :])["event"] for m in chunk}
        assert len(kinds) >= 5, (part, kinds)


def test_causal_order(default: World) -> None:
    posted: dict[str, int] = {}
    authored: dict[str, int] = {}
    labeled: dict[str, int] = {}
    retracted: set[str] = set()
    for pos, (_, env, _, it) in enumerate(items(default)):
        ev = env["event"]
        if ev == "task_posted":
            posted[it["task_id"]] = pos
        elif ev == "label_submitted":
            assert it["task_id"] in posted
            labeled[f"{it['task_id']}/{it['item_id']}/{it['labeler']}"] = pos
        elif ev == "label_reviewed":
            assert f"{it['task_id']}/{it['item_id']}/{it['labeler']}" in labeled
        elif ev == "content_authored":
            assert all(p in authored for p in it.get("derived_from", []))
            authored[it["content_id"]] = pos
        elif ev in ("content_attested", "content_retracted") or (
            ev == "vote_cast" and it["target_kind"] == "content"
        ):
            assert it.get("content_id", it.get("target")) in authored
            assert it.get("content_id", it.get("target")) not in retracted
            if ev == "content_retracted":
                retracted.add(it["content_id"])
        elif ev == "vote_cast" and it["target_kind"] == "label":
            assert it["target"] in labeled
    assert retracted


# ---------------------------------------------------------------- ground truth


def test_truth_round_trips_through_json(default: World, tmp_path: Path) -> None:
    t = default.truth
    assert GroundTruth.from_json(json.loads(json.dumps(t.to_json()))) == t
    mp = tmp_path / "world.jsonl"
    tp = truth_path_for(mp)
    assert tp.name == "world.truth.json"
    write_world(default, mp, tp)
    assert read_truth(tp) == t
    assert WorldConfig.from_json(json.loads(tp.read_text())["config"]) == default.config
    assert list(read_messages(mp)) == default.messages


def test_read_messages_reports_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"key":"a.near","value":{}}\n\nnot json\n', encoding="utf-8")
    it = read_messages(p)
    assert next(it).key == "a.near"
    with pytest.raises(ValueError, match=":3:"):
        next(it)


def test_populations(default: World) -> None:
    t, c = default.truth, default.config
    assert len(t.honest) == c.honest and len(t.seeds) == c.seeds
    assert set(t.seeds) <= set(t.honest)
    assert (len(t.spammers), len(t.sybils), len(t.ring)) == (c.spammers, c.sybils, c.ring)
    assert len(t.serial_voters) == len(t.serial_targets) == c.serial_voters
    assert set(t.serial_targets) <= set(t.honest) - set(t.seeds)
    groups = [set(t.honest), set(t.spammers), set(t.sybils), set(t.ring), set(t.serial_voters)]
    assert sum(map(len, groups)) == len(set().union(*groups)), "populations are disjoint"
    assert t.malicious() == set().union(*groups[1:])
    assert set(t.skill) == set(t.honest) | set(t.spammers) | set(t.ring)
    assert all(0.6 <= t.skill[a] <= 0.98 for a in t.honest)


def test_gold_and_labels_within_label_space(default: World) -> None:
    spaces = {it["task_id"]: it["labels"] for it in renown_items(default, "task_posted")}
    gold = default.truth.gold
    assert set(gold) == set(spaces)
    for task_id, per_item in gold.items():
        assert len(per_item) == default.config.items_per_task
        assert set(per_item.values()) <= set(spaces[task_id])
    for it in renown_items(default, "label_submitted"):
        assert it["label"] in spaces[it["task_id"]] and it["item_id"] in gold[it["task_id"]]
    revealed = renown_items(default, "gold_revealed")
    assert revealed
    for it in revealed:
        assert all(gold[it["task_id"]][i] == lab for i, lab in it["gold"].items())


def agreement(world: World, who: set[str]) -> float:
    labels = [it for it in renown_items(world, "label_submitted") if it["labeler"] in who]
    assert len(labels) >= 50
    gold = world.truth.gold
    return sum(it["label"] == gold[it["task_id"]][it["item_id"]] for it in labels) / len(labels)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_spammers_at_chance_honest_well_above(seed: int) -> None:
    world = generate(WorldConfig(seed=seed))
    t = world.truth
    chance = sum(t.skill[s] for s in t.spammers) / len(t.spammers)  # mean 1/|labels|
    assert 0.25 <= chance <= 0.55
    spam = agreement(world, set(t.spammers))
    honest = agreement(world, set(t.honest))
    assert abs(spam - chance) < 0.15
    assert honest > 0.75 and honest - spam > 0.25


# ---------------------------------------------------------------- attacks


def trust_edges(world: World) -> list[tuple[str, str]]:
    """(actor, beneficiary) of every trust-carrying datum (positive evidence)."""
    authors: dict[str, list[str]] = {}
    for it in renown_items(world, "content_authored"):
        authors[it["content_id"]] = it["authors"]
    edges: list[tuple[str, str]] = []
    for _, env, _, it in items(world):
        ev = env["event"]
        if ev == "endorsed":
            edges.append((it["endorser"], it["endorsee"]))
        elif ev == "vote_cast" and it["value"] == 1:
            kind, target = it["target_kind"], it["target"]
            if kind == "account":
                edges.append((it["voter"], target))
            elif kind == "label":
                edges.append((it["voter"], target.split("/")[2]))
            else:
                edges += [(it["voter"], a) for a in authors[target]]
        elif ev == "label_reviewed" and it["verdict"] == "accept":
            edges.append((it["reviewer"], it["labeler"]))
        elif ev == "content_attested" and it["verdict"] == "authentic":
            edges += [(it["attester"], a) for a in authors[it["content_id"]]]
        elif ev == "content_authored":
            for parent in it.get("derived_from", []):
                edges += [(a, p) for a in it["authors"] for p in authors[parent]]
    return edges


@pytest.mark.parametrize(
    "config",
    [
        PRESETS["tiny"],
        PRESETS["default"],
        WorldConfig(seed=3, attack_edges=7),
        WorldConfig(seed=4, attack_edges=0),
    ],
    ids=["tiny", "default", "seven", "none"],
)
def test_exactly_attack_edges_from_honest_to_sybils(config: WorldConfig) -> None:
    world = generate(config)
    honest, sybils = set(world.truth.honest), set(world.truth.sybils)
    attack = [(a, b) for a, b in trust_edges(world) if a in honest and b in sybils]
    assert len(attack) == len(set(attack)) == config.attack_edges


def test_sybil_region_is_dense_and_disputed(default: World) -> None:
    sybils = set(default.truth.sybils)
    endorse = {
        (it["endorser"], it["endorsee"])
        for it in renown_items(default, "endorsed")
        if it["endorser"] in sybils and it["endorsee"] in sybils
    }
    n = len(sybils)
    assert len(endorse) >= 0.5 * n * (n - 1)
    authors = {it["content_id"]: it["authors"] for it in renown_items(default, "content_authored")}
    disputes = [
        it
        for it in renown_items(default, "content_attested")
        if it["verdict"] == "disputed" and set(authors[it["content_id"]]) <= sybils
    ]
    assert disputes and all(it["attester"] in default.truth.honest for it in disputes)


def test_vote_ring_upvotes_each_other_repeatedly(default: World) -> None:
    ring = default.truth.ring
    pairs = Counter(
        (it["voter"], it["target"])
        for it in renown_items(default, "vote_cast")
        if it["target_kind"] == "account" and it["voter"] in ring
    )
    for a in ring:
        for b in ring:
            if a != b:
                assert pairs[(a, b)] >= 3


def test_serial_voter_bursts_on_target(default: World) -> None:
    authors = {it["content_id"]: it["authors"] for it in renown_items(default, "content_authored")}
    t = default.truth
    for voter, target in zip(t.serial_voters, t.serial_targets, strict=True):
        stamps = []
        for m, env, _, it in items(default):
            if env["event"] != "vote_cast" or it["voter"] != voter or it["value"] != 1:
                continue
            kind, tgt = it["target_kind"], it["target"]
            owner = {
                "account": lambda x: [x],
                "label": lambda x: [x.split("/")[2]],
                "content": lambda x: authors[x],
            }[kind](tgt)
            if target in owner:
                stamps.append(m.value["block_timestamp"])
        assert len(stamps) >= 40
        assert max(stamps) - min(stamps) <= 2 * 3600 * 10**9


# ---------------------------------------------------------------- config and presets


@pytest.mark.parametrize(
    "bad",
    [
        dict(honest=3),
        dict(seeds=0),
        dict(ring=1),
        dict(sybils=0, attack_edges=1),
        dict(domains=("Images",)),
        dict(domains=()),
        dict(tasks=-1),
        dict(days=0.0),
    ],
)
def test_invalid_config_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WorldConfig(**bad)


def test_degenerate_config_still_valid() -> None:
    world = generate(
        WorldConfig(
            honest=5,
            seeds=1,
            spammers=0,
            sybils=0,
            attack_edges=0,
            ring=0,
            serial_voters=0,
            tasks=0,
            nft_mints=0,
            domains=("x",),
        )
    )
    assert world.messages and not world.truth.gold


def test_preset_sizes_and_speed() -> None:
    assert set(PRESETS) == {"tiny", "small", "default", "large"}
    assert PRESETS["default"] == WorldConfig()
    assert 300 <= len(generate(PRESETS["tiny"]).messages) <= 1_000
    started = time.perf_counter()
    world = generate(PRESETS["default"])
    elapsed = time.perf_counter() - started
    assert 5_000 <= len(world.messages) <= 20_000
    assert elapsed < 2.0


def test_no_self_interactions(default: World) -> None:
    """The docs promise no self-votes, self-endorsements or self-reviews."""
    authors = {it["content_id"]: it["authors"] for it in renown_items(default, "content_authored")}
    for _, env, _, it in items(default):
        ev = env["event"]
        if ev == "endorsed":
            assert it["endorser"] != it["endorsee"]
        elif ev == "label_reviewed":
            assert it["reviewer"] != it["labeler"]
        elif ev == "content_attested":
            assert it["attester"] not in authors[it["content_id"]]
        elif ev == "vote_cast":
            kind, target = it["target_kind"], it["target"]
            if kind == "account":
                owners = [target]
            elif kind == "label":
                owners = [target.split("/")[2]]
            else:
                owners = authors[target]
            assert it["voter"] not in owners


# ---------------------------------------------------------------- camouflaged attackers


CAMO = WorldConfig(seed=5, camouflage=6)


@pytest.fixture(scope="module")
def camo() -> World:
    return generate(CAMO)


def test_camouflage_defaults_to_none_and_leaves_files_unchanged() -> None:
    assert WorldConfig().camouflage == 0 and PRESETS["default"].camouflage == 0
    world = generate(PRESETS["tiny"])
    assert world.truth.camouflaged == []
    # Absent rather than empty, so files of worlds without camouflage keep their bytes.
    assert "camouflaged" not in world.truth.to_json()
    assert "camouflage" not in world.config.to_json()
    assert WorldConfig.from_json(world.config.to_json()) == world.config
    with pytest.raises(ValueError, match="camouflage"):
        WorldConfig(camouflage=-1)


def test_truth_files_without_camouflaged_still_read() -> None:
    doc = generate(PRESETS["tiny"]).truth.to_json()
    doc.pop("camouflaged", None)
    truth = GroundTruth.from_json(doc)
    assert truth.camouflaged == [] and truth.malicious() == (
        set(truth.spammers) | set(truth.sybils) | set(truth.ring) | set(truth.serial_voters)
    )


def test_camouflage_world_is_deterministic_and_well_formed(camo: World, tmp_path: Path) -> None:
    assert jsonl_bytes(camo, tmp_path, "a") == jsonl_bytes(generate(CAMO), tmp_path, "b")
    test_data_items_match_events_table(camo)
    test_idempotency_keys_unique_and_receipts_coherent(camo)
    test_causal_order(camo)
    test_no_self_interactions(camo)
    test_blocks_monotone_and_plausibly_spaced(camo)
    t = camo.truth
    assert GroundTruth.from_json(json.loads(json.dumps(t.to_json()))) == t
    assert t.camouflaged == [f"cam{i:03d}.near" for i in range(CAMO.camouflage)]
    assert set(t.camouflaged) <= t.malicious()
    assert not set(t.camouflaged) & (set(t.honest) | set(t.sybils) | set(t.ring))


def _data_items(world: World) -> Counter[str]:
    return Counter(
        json.dumps([env["event"], it], sort_keys=True)
        for _, env, _, it in items(world)
        if env["standard"] == "renown"
    )


def test_camouflage_only_adds_events_about_camouflaged_accounts(camo: World) -> None:
    """The phase runs last: every event of the same world without camouflage is still
    there, and every added event is by or about a camouflaged account."""
    base = generate(dataclasses.replace(CAMO, camouflage=0))
    before, after = _data_items(base), _data_items(camo)
    assert not before - after, "a world without camouflage is a sub-world"
    cams = set(camo.truth.camouflaged)
    added = list((after - before).elements())
    assert added
    for raw in added:
        event, it = json.loads(raw)
        involved = {
            it.get(f) for f in ("labeler", "voter", "endorser", "endorsee", "reviewer", "attester")
        }
        if event == "vote_cast" and it["target_kind"] == "account":
            involved.add(it["target"])
        if event == "vote_cast" and it["target_kind"] == "label":
            involved.add(it["target"].split("/")[2])
        assert involved & cams, (event, it)
    t0, t1 = base.truth.to_json(), camo.truth.to_json()
    assert t1.pop("camouflaged") == camo.truth.camouflaged
    skill = t1.pop("skill")
    assert set(skill) - set(t0["skill"]) == cams
    assert all(skill[a] == v for a, v in t0.pop("skill").items())
    assert t0 == t1


def test_camouflaged_accounts_are_honest_on_gold_and_collude_elsewhere(camo: World) -> None:
    t = camo.truth
    cams = set(t.camouflaged)
    revealed = {
        (it["task_id"], i) for it in renown_items(camo, "gold_revealed") for i in it["gold"]
    }
    on_gold, off_gold = [], []
    wrong_by_item: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    per_account: Counter[str] = Counter()
    right_per_account: Counter[str] = Counter()
    for it in renown_items(camo, "label_submitted"):
        if it["labeler"] not in cams:
            continue
        key = (it["task_id"], it["item_id"])
        right = it["label"] == t.gold[it["task_id"]][it["item_id"]]
        (on_gold if key in revealed else off_gold).append(right)
        per_account[it["labeler"]] += 1
        right_per_account[it["labeler"]] += right
        if not right:
            wrong_by_item[key][it["label"]] += 1
    assert len(on_gold) >= 10 and len(off_gold) >= 10
    assert sum(on_gold) / len(on_gold) >= 0.8, "careful where they are checked"
    assert sum(off_gold) / len(off_gold) <= 0.6, "sabotage where they are not"
    # Coordinated: on a sabotaged item the members agree on one wrong label.
    assert any(sum(c.values()) >= 2 and len(c) == 1 for c in wrong_by_item.values())
    assert all(t.skill[a] == round(right_per_account[a] / per_account[a], 4) for a in cams)
    # Honest accounts vouch for them; they vouch for the sybils (their colluders).
    edges = trust_edges(camo)
    honest, sybils = set(t.honest), set(t.sybils)
    assert sum(1 for a, b in edges if a in honest and b in cams) >= len(cams)
    for c in cams:
        assert any(a == c and b in sybils for a, b in edges), c
        assert any(a == c and b in honest for a, b in edges), c
    # Attack edges stay exact: camouflaged accounts are not honest.
    attack = {(a, b) for a, b in edges if a in honest and b in sybils}
    assert len(attack) == CAMO.attack_edges


def test_camouflaged_collude_with_each_other_without_sybils_or_ring() -> None:
    cfg = WorldConfig(seed=6, sybils=0, attack_edges=0, ring=0, camouflage=4)
    world = generate(cfg)
    cams = set(world.truth.camouflaged)
    mutual = {(a, b) for a, b in trust_edges(world) if a in cams and b in cams}
    assert mutual and all(a != b for a, b in mutual)


def test_the_number_of_sybils_changes_nothing_else() -> None:
    """Sybil sweeps compare like with like: the same honest world, the same duped
    accounts, whatever the size of the sybil region (its draws have their own streams)."""
    import re

    def rest(sybils: int) -> tuple[list[str], set[str]]:
        w = generate(dataclasses.replace(PRESETS["small"], seed=11, sybils=sybils, attack_edges=3))
        logs = []
        duped = set()
        sybil_posts = set()
        for m in w.messages:
            env = json.loads(m.value["log"][len(EVENT_PREFIX) :])
            if env["event"] == "content_authored":
                for item in env["data"]:
                    if any(a.startswith("syb") for a in item["authors"]):
                        sybil_posts.add(item["content_id"])
        for m in w.messages:
            log = m.value["log"]
            if any(p in log for p in re.findall(r"post-\d{6}", log) if p in sybil_posts):
                continue  # about sybil content: honest disputes of it, derived works
            if "syb" in log:
                env = json.loads(log[len(EVENT_PREFIX) :])
                for item in env["data"]:
                    src = item.get("endorser") or item.get("voter")
                    dst = item.get("endorsee") or item.get("target")
                    if src and not src.startswith("syb") and str(dst).startswith("syb"):
                        duped.add(src)
                continue
            logs.append(re.sub(r"post-\d{6}|[0-9a-f]{64}", "#", log))
        return sorted(logs), duped

    small, duped_small = rest(4)
    large, duped_large = rest(40)
    assert small == large
    assert len(duped_small) == 3 and duped_small == duped_large


# ---------------------------------------------------------------- bursts


BURSTS = dataclasses.replace(PRESETS["small"], seed=5, bursts=3)


@pytest.fixture(scope="module")
def bursty() -> World:
    return generate(BURSTS)


def test_bursts_default_to_none_and_leave_files_unchanged() -> None:
    assert WorldConfig().bursts == 0 and all(p.bursts == 0 for p in PRESETS.values())
    world = generate(PRESETS["tiny"])
    assert world.truth.burst_accounts == [] and world.truth.burst_targets == []
    doc = world.truth.to_json()
    assert "burst_accounts" not in doc and "burst_targets" not in doc
    assert "bursts" not in world.config.to_json()
    assert GroundTruth.from_json(doc) == world.truth
    with pytest.raises(ValueError, match="bursts"):
        WorldConfig(bursts=-1)


def test_burst_world_is_deterministic_and_well_formed(bursty: World, tmp_path: Path) -> None:
    assert jsonl_bytes(bursty, tmp_path, "a") == jsonl_bytes(generate(BURSTS), tmp_path, "b")
    test_data_items_match_events_table(bursty)
    test_idempotency_keys_unique_and_receipts_coherent(bursty)
    test_causal_order(bursty)
    test_no_self_interactions(bursty)
    test_blocks_monotone_and_plausibly_spaced(bursty)
    t = bursty.truth
    assert GroundTruth.from_json(json.loads(json.dumps(t.to_json()))) == t
    assert WorldConfig.from_json(bursty.config.to_json()) == BURSTS
    assert len(t.burst_targets) == 3 and len(set(t.burst_targets)) == 3
    assert set(t.burst_targets) <= set(t.honest) - set(t.seeds)
    assert 30 <= len(t.burst_accounts) <= 60
    assert t.burst_accounts == [f"bst{i:03d}.near" for i in range(len(t.burst_accounts))]
    assert set(t.burst_accounts) <= t.malicious()
    assert not set(t.burst_targets) & t.malicious()


def test_bursts_only_add_events_by_their_crews(bursty: World) -> None:
    base = generate(dataclasses.replace(BURSTS, bursts=0))
    before, after = _data_items(base), _data_items(bursty)
    assert not before - after, "a world without bursts is a sub-world"
    crew = set(bursty.truth.burst_accounts)
    added = list((after - before).elements())
    assert added
    for raw in added:
        event, it = json.loads(raw)
        assert event in ("vote_cast", "endorsed") and (it.get("voter") or it["endorser"]) in crew
    t0, t1 = base.truth.to_json(), bursty.truth.to_json()
    assert t1.pop("burst_accounts") == bursty.truth.burst_accounts
    assert t1.pop("burst_targets") == bursty.truth.burst_targets
    assert t0 == t1


def test_each_crew_is_fresh_and_acts_on_its_target_within_an_hour(bursty: World) -> None:
    edges_at: dict[str, list[tuple[int, str]]] = defaultdict(list)
    authors = {it["content_id"]: it["authors"] for it in renown_items(bursty, "content_authored")}
    for m, env, _, it in items(bursty):
        who = it.get("voter") or it.get("endorser")
        if who and who.startswith("bst"):
            if env["event"] == "endorsed":
                owners = [it["endorsee"]]
            elif it["target_kind"] == "account":
                owners = [it["target"]]
            else:
                owners = authors[it["target"]]
            for o in owners:
                edges_at[who].append((m.value["block_timestamp"], o))
    hour, lead = 3600 * 10**9, 3 * 86_400 * 10**9 + 3600 * 10**9
    for target in bursty.truth.burst_targets:
        crew = [c for c, acts in edges_at.items() if any(o == target for _, o in acts)]
        assert len(crew) >= 10
        on_target = [ts for c in crew for ts, o in edges_at[c] if o == target]
        assert max(on_target) - min(on_target) <= hour
        first = min(ts for c in crew for ts, _ in edges_at[c])
        assert min(on_target) - first <= lead
