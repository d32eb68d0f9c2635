"""Frozen domain types for the events of the `renown` standard (and mapped standards).

These are what the decoder produces and what storage handlers consume. They are
deliberately plain: validation happens once, at the boundary (``ingest.decode``),
so everything downstream may trust the invariants stated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_DOMAIN = "general"

TargetKind = Literal["account", "content", "label"]
ReviewVerdict = Literal["accept", "reject"]
AttestVerdict = Literal["authentic", "disputed"]


@dataclass(frozen=True, slots=True)
class ChainContext:
    """Where an event came from on chain; shared by every datum of one log."""

    block_height: int
    block_timestamp_ns: int
    receipt_id: str
    log_index: int
    contract_id: str
    predecessor_id: str


@dataclass(frozen=True, slots=True)
class EventKey:
    """The idempotency key of one datum: a replayed or duplicated event maps to the same key."""

    receipt_id: str
    log_index: int
    data_index: int
    #: Position within one datum that maps to several events (a NEP-171 mint of several
    #: tokens); always 0 for the `renown` standard, whose data items are one event each.
    part: int = 0


@dataclass(frozen=True, slots=True)
class TaskPosted:
    task_id: str
    poster: str
    domain: str
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class LabelSubmitted:
    task_id: str
    item_id: str
    labeler: str
    label: str


@dataclass(frozen=True, slots=True)
class LabelReviewed:
    task_id: str
    item_id: str
    labeler: str
    reviewer: str
    verdict: ReviewVerdict


@dataclass(frozen=True, slots=True)
class GoldRevealed:
    task_id: str
    poster: str
    gold: tuple[tuple[str, str], ...]  # (item_id, label), sorted by item_id


@dataclass(frozen=True, slots=True)
class LabelRef:
    """A label addressed as ``task_id/item_id/labeler`` by a vote."""

    task_id: str
    item_id: str
    labeler: str


@dataclass(frozen=True, slots=True)
class VoteCast:
    voter: str
    target_kind: TargetKind
    target: str  # account id, content id, or "task_id/item_id/labeler"
    value: int  # +1 or -1
    domain: str | None = None  # None: inherit from the target (content's or task's domain)

    @property
    def label_ref(self) -> LabelRef | None:
        """The addressed label, for votes on labels (validated by the decoder)."""
        if self.target_kind != "label":
            return None
        task_id, item_id, labeler = self.target.rsplit("/", 2)
        return LabelRef(task_id, item_id, labeler)


@dataclass(frozen=True, slots=True)
class Endorsed:
    endorser: str
    endorsee: str
    domain: str = DEFAULT_DOMAIN
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ContentAuthored:
    content_id: str
    authors: tuple[str, ...]
    content_hash: str | None  # None only for mapped standards that carry no hash (nep171)
    derived_from: tuple[str, ...] = ()
    domain: str = DEFAULT_DOMAIN


@dataclass(frozen=True, slots=True)
class ContentAttested:
    attester: str
    content_id: str
    verdict: AttestVerdict


@dataclass(frozen=True, slots=True)
class ContentRetracted:
    content_id: str
    by: str


Event = (
    TaskPosted
    | LabelSubmitted
    | LabelReviewed
    | GoldRevealed
    | VoteCast
    | Endorsed
    | ContentAuthored
    | ContentAttested
    | ContentRetracted
)

#: The wire name of each event type in the `renown` standard.
EVENT_NAMES: dict[type, str] = {
    TaskPosted: "task_posted",
    LabelSubmitted: "label_submitted",
    LabelReviewed: "label_reviewed",
    GoldRevealed: "gold_revealed",
    VoteCast: "vote_cast",
    Endorsed: "endorsed",
    ContentAuthored: "content_authored",
    ContentAttested: "content_attested",
    ContentRetracted: "content_retracted",
}


def event_name(event: Event) -> str:
    """The `renown` wire name of a decoded event (mapped standards report their renown meaning)."""
    return EVENT_NAMES[type(event)]


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """One datum of one log, with its chain context and idempotency key."""

    key: EventKey
    chain: ChainContext
    standard: str
    version: str
    event: Event

    @property
    def name(self) -> str:
        return event_name(self.event)


# Interaction kinds: how storage records each piece of evidence one account gives about
# an account, a content item or a label. Ingest writes them; the scoring loader reads them.
VOTE_ACCOUNT = "vote_account"
VOTE_CONTENT = "vote_content"
VOTE_LABEL = "vote_label"
ENDORSE = "endorse"
REVIEW = "review"
ATTEST = "attest"
RETRACT = "retract"
