"""Handlers: one plain function per event type, turning a new event into derived rows.

A handler sees an event that is new (its idempotency key was not stored before), its
stored id, and the account ids; it appends rows and does no I/O itself, so a batch of
thousands of events is written with a few set-based statements by the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scoring.events import (
    ATTEST,
    ENDORSE,
    RETRACT,
    REVIEW,
    VOTE_ACCOUNT,
    VOTE_CONTENT,
    VOTE_LABEL,
    ContentAttested,
    ContentAuthored,
    ContentRetracted,
    DecodedEvent,
    Endorsed,
    Event,
    GoldRevealed,
    LabelReviewed,
    LabelSubmitted,
    TaskPosted,
    VoteCast,
)
from storage.repository import DerivedRows


@dataclass(frozen=True, slots=True)
class Context:
    """What every handler needs besides the event: its stored id and the account ids."""

    event: DecodedEvent
    event_id: int
    ids: dict[str, int]
    rows: DerivedRows

    @property
    def ts(self) -> int:
        return self.event.chain.block_timestamp_ns

    @property
    def contract(self) -> str:
        return self.event.chain.contract_id

    def interaction(
        self,
        kind: str,
        src: str,
        *,
        dst: str | None = None,
        content_id: str | None = None,
        task_id: str | None = None,
        target: str | None = None,
        domain: str | None = None,
        value: int = 1,
        weight: float = 1.0,
    ) -> None:
        self.rows.interactions.append(
            {
                "event_id": self.event_id,
                "contract_id": self.contract,
                "kind": kind,
                "src_id": self.ids[src],
                "dst_id": None if dst is None else self.ids[dst],
                "content_id": content_id,
                "task_id": task_id,
                "target": target,
                "domain": domain,
                "value": value,
                "weight": weight,
                "ts_ns": self.ts,
            }
        )


def accounts_of(event: Event) -> Iterable[str]:
    """Every account an event names, so their ids exist before the handlers run."""
    match event:
        case TaskPosted(poster=p) | GoldRevealed(poster=p):
            yield p
        case LabelSubmitted(labeler=labeler):
            yield labeler
        case LabelReviewed(labeler=labeler, reviewer=reviewer):
            yield labeler
            yield reviewer
        case VoteCast(voter=voter, target_kind=kind, target=target) as vote:
            yield voter
            if kind == "account":
                yield target
            elif (ref := vote.label_ref) is not None:
                yield ref.labeler
        case Endorsed(endorser=a, endorsee=b):
            yield a
            yield b
        case ContentAuthored(authors=authors):
            yield from authors
        case ContentAttested(attester=a) | ContentRetracted(by=a):
            yield a


def on_task_posted(c: Context, e: TaskPosted) -> None:
    c.rows.tasks.append(
        {
            "event_id": c.event_id,
            "contract_id": c.contract,
            "task_id": e.task_id,
            "poster_id": c.ids[e.poster],
            "domain": e.domain,
            "labels": None if e.labels is None else list(e.labels),
            "ts_ns": c.ts,
        }
    )


def on_label_submitted(c: Context, e: LabelSubmitted) -> None:
    c.rows.labels.append(
        {
            "event_id": c.event_id,
            "contract_id": c.contract,
            "task_id": e.task_id,
            "item_id": e.item_id,
            "labeler_id": c.ids[e.labeler],
            "label": e.label,
            "ts_ns": c.ts,
        }
    )


def on_label_reviewed(c: Context, e: LabelReviewed) -> None:
    c.rows.reviews.append(
        {
            "event_id": c.event_id,
            "contract_id": c.contract,
            "task_id": e.task_id,
            "item_id": e.item_id,
            "labeler_id": c.ids[e.labeler],
            "reviewer_id": c.ids[e.reviewer],
            "verdict": e.verdict,
            "ts_ns": c.ts,
        }
    )
    value = 1 if e.verdict == "accept" else -1
    target = f"{e.task_id}/{e.item_id}/{e.labeler}"
    c.interaction(REVIEW, e.reviewer, dst=e.labeler, task_id=e.task_id, target=target, value=value)


def on_gold_revealed(c: Context, e: GoldRevealed) -> None:
    poster = c.ids[e.poster]
    for item_id, label in e.gold:
        c.rows.gold.append(
            {
                "event_id": c.event_id,
                "contract_id": c.contract,
                "task_id": e.task_id,
                "item_id": item_id,
                "poster_id": poster,
                "label": label,
                "ts_ns": c.ts,
            }
        )


def on_vote_cast(c: Context, e: VoteCast) -> None:
    if e.target_kind == "account":
        c.interaction(VOTE_ACCOUNT, e.voter, dst=e.target, domain=e.domain, value=e.value)
    elif e.target_kind == "content":
        c.interaction(VOTE_CONTENT, e.voter, content_id=e.target, domain=e.domain, value=e.value)
    else:
        ref = e.label_ref
        assert ref is not None  # the decoder validated the label target
        c.interaction(
            VOTE_LABEL,
            e.voter,
            dst=ref.labeler,
            task_id=ref.task_id,
            target=e.target,
            domain=e.domain,
            value=e.value,
        )


def on_endorsed(c: Context, e: Endorsed) -> None:
    c.interaction(ENDORSE, e.endorser, dst=e.endorsee, domain=e.domain, weight=e.weight)


def on_content_authored(c: Context, e: ContentAuthored) -> None:
    c.rows.content.append(
        {
            "event_id": c.event_id,
            "content_id": e.content_id,
            "content_hash": e.content_hash,
            "domain": e.domain,
            "ts_ns": c.ts,
        }
    )
    for author in e.authors:
        c.rows.content_authors.append(
            {"content_id": e.content_id, "account_id": c.ids[author], "event_id": c.event_id}
        )
    for parent in e.derived_from:
        c.rows.content_parents.append(
            {"content_id": e.content_id, "parent_id": parent, "event_id": c.event_id}
        )


def on_content_attested(c: Context, e: ContentAttested) -> None:
    value = 1 if e.verdict == "authentic" else -1
    c.interaction(ATTEST, e.attester, content_id=e.content_id, value=value)


def on_content_retracted(c: Context, e: ContentRetracted) -> None:
    # Whether `by` may retract (is an author) is decided at scoring time: authorship
    # may not have arrived yet.
    c.interaction(RETRACT, e.by, content_id=e.content_id, value=-1)


HANDLERS: dict[type, Callable[[Context, object], None]] = {
    TaskPosted: on_task_posted,  # type: ignore[dict-item]
    LabelSubmitted: on_label_submitted,  # type: ignore[dict-item]
    LabelReviewed: on_label_reviewed,  # type: ignore[dict-item]
    GoldRevealed: on_gold_revealed,  # type: ignore[dict-item]
    VoteCast: on_vote_cast,  # type: ignore[dict-item]
    Endorsed: on_endorsed,  # type: ignore[dict-item]
    ContentAuthored: on_content_authored,  # type: ignore[dict-item]
    ContentAttested: on_content_attested,  # type: ignore[dict-item]
    ContentRetracted: on_content_retracted,  # type: ignore[dict-item]
}


def handle(c: Context) -> None:
    HANDLERS[type(c.event.event)](c, c.event.event)
