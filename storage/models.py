"""SQLAlchemy 2.0 typed models: the one schema that runs on SQLite and PostgreSQL.

Design rules, so that ingest stays exactly-once and scoring stays order-independent:

* ``events`` keeps every applied datum with its idempotency key (unique); every
  derived row points back to the event that made it, so derived tables can be
  rebuilt from ``events`` alone.
* Facts are stored as they arrived; anything that depends on the arrival order of
  two events (a vote on content whose authorship arrives later, a retraction, a
  derived work whose parent is unknown yet) is resolved at scoring time by joins,
  never at ingest time. Kafka orders only within a partition, so ingest must not
  assume more.
* ``consumer_offsets`` is the truth about what has been applied; it is written in
  the same transaction as the rows it covers.

Schema changes go through Alembic (``storage/migrations``); the tests check that the
migration and these models agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits for
# tables that grow with the chain.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ACCOUNT_LEN = 64
ID_LEN = 256
DOMAIN_LEN = 64


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, bytes: LargeBinary}


class Account(Base):
    """A NEAR account seen in any event; the integer id keeps the edge tables compact."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN), unique=True)
    first_seen_ns: Mapped[int] = mapped_column(BigInteger)


class Event(Base):
    """One applied datum of one NEP-297 log: the raw, replayable record."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("receipt_id", "log_index", "data_index", "part"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    receipt_id: Mapped[str] = mapped_column(String(128))
    log_index: Mapped[int] = mapped_column(Integer)
    data_index: Mapped[int] = mapped_column(Integer)
    part: Mapped[int] = mapped_column(Integer, default=0)
    standard: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(32), index=True)
    block_height: Mapped[int] = mapped_column(BigInteger)
    block_timestamp_ns: Mapped[int] = mapped_column(BigInteger)
    contract_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    predecessor_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_topic: Mapped[str | None] = mapped_column(String(255))
    source_partition: Mapped[int | None] = mapped_column(Integer)
    source_offset: Mapped[int | None] = mapped_column(BigInteger)


class Interaction(Base):
    """A directed piece of evidence from one account about an account, content or label.

    ``dst_id`` is set when the target account is known from the event itself (votes on
    accounts and labels, endorsements, reviews); content-targeted rows (votes on content,
    attestations, retractions) carry ``content_id`` and are resolved to the content's
    authors at scoring time.
    """

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    contract_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN))  # the emitting contract
    kind: Mapped[str] = mapped_column(String(24))
    src_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    dst_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    content_id: Mapped[str | None] = mapped_column(String(ID_LEN), index=True)
    # Reviews and votes on labels: the task, whose domain they inherit at scoring time.
    task_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    target: Mapped[str | None] = mapped_column(String(3 * ID_LEN))
    domain: Mapped[str | None] = mapped_column(String(DOMAIN_LEN))
    value: Mapped[int] = mapped_column(SmallInteger)
    weight: Mapped[float] = mapped_column(Float)
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("contract_id", "task_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    contract_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    poster_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    domain: Mapped[str] = mapped_column(String(DOMAIN_LEN))
    labels: Mapped[list[str] | None] = mapped_column(JSON)
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class Label(Base):
    """The latest label a labeler gave an item (a resubmission replaces an older one)."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("contract_id", "task_id", "item_id", "labeler_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    contract_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    item_id: Mapped[str] = mapped_column(String(ID_LEN))
    labeler_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    label: Mapped[str] = mapped_column(String(ID_LEN))
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class Review(Base):
    """A reviewer's latest verdict on one labeler's label of one item."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("contract_id", "task_id", "item_id", "labeler_id", "reviewer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    contract_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    item_id: Mapped[str] = mapped_column(String(ID_LEN))
    labeler_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    verdict: Mapped[str] = mapped_column(String(8))
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class Gold(Base):
    """A revealed gold answer (the latest reveal on chain wins, so a poster can correct one).

    Scoring trusts it only when the poster is the task's poster.
    """

    __tablename__ = "gold"
    __table_args__ = (UniqueConstraint("contract_id", "task_id", "item_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    contract_id: Mapped[str] = mapped_column(String(ACCOUNT_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    item_id: Mapped[str] = mapped_column(String(ID_LEN))
    poster_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    label: Mapped[str] = mapped_column(String(ID_LEN))
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class Content(Base):
    """A piece of content: the earliest authorship claim on chain wins, whatever arrives first.

    A later ``content_authored`` for the same id (from anyone, any contract) is kept in
    ``events`` and ``content_authors`` but carries no effect: authors and parents count
    only when their ``event_id`` is the winning claim's, so nobody can join the authors
    of someone else's work (and then retract it) by re-announcing it.
    """

    __tablename__ = "content"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    content_id: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(DOMAIN_LEN))
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class ContentAuthor(Base):
    __tablename__ = "content_authors"

    content_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))


class ContentParent(Base):
    __tablename__ = "content_parents"

    content_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    parent_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True, index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))


class ConsumerOffset(Base):
    """The next offset to apply, per consumer group and partition: the truth, not Kafka's."""

    __tablename__ = "consumer_offsets"

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DeadLetter(Base):
    """A message we could not apply, kept whole with its position and the reason."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("group_id", "topic", "partition", "offset"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class SkippedMessage(Base):
    """A well-formed message of a standard, event or version we do not handle: counted."""

    __tablename__ = "skipped_messages"
    __table_args__ = (
        UniqueConstraint("group_id", "topic", "partition", "offset"),
        Index(None, "standard", "event"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    standard: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)


class ScoreEpoch(Base):
    """One scoring run. Epoch numbers are monotone; a failed run leaves no scores."""

    __tablename__ = "score_epochs"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    model: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    events_through: Mapped[int] = mapped_column(BigInteger)  # highest events.id included
    accounts: Mapped[int] = mapped_column(Integer)
    edges: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Score(Base):
    __tablename__ = "scores"
    # (epoch, domain, rank) serves rankings; (account_id, epoch) an account's scores in
    # every domain and its history (migration 0007): without it a lookup by account
    # scans the whole epoch (7.5 ms at 20k accounts, growing with the epoch).
    __table_args__ = (
        Index(None, "epoch", "domain", "rank"),
        Index(None, "account_id", "epoch"),
    )

    epoch: Mapped[int] = mapped_column(ForeignKey("score_epochs.epoch"), primary_key=True)
    domain: Mapped[str] = mapped_column(String(DOMAIN_LEN), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    trust: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    percentile: Mapped[float] = mapped_column(Float)
    # Added in migration 0002: how sure the score is, and where its trust comes from
    # (top sources and evidence kinds with their shares); null for epochs before it.
    confidence: Mapped[float | None] = mapped_column(Float)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Snapshot(Base):
    """The Merkle commitment of one epoch's scores (scoring.merkle), built with the epoch.

    Written in the epoch's own transaction, so an epoch without a snapshot cannot exist
    (epochs before migration 0003 excepted); the publisher copies ``root`` and
    ``leaf_count`` to the contract, and a proof is rebuilt from the stored scores and
    checked against ``root`` before it is served.
    """

    __tablename__ = "snapshots"

    epoch: Mapped[int] = mapped_column(ForeignKey("score_epochs.epoch"), primary_key=True)
    leaf_version: Mapped[int] = mapped_column(SmallInteger)
    leaf_count: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))  # lowercase hex sha256
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Publication(Base):
    """Where the publication of one epoch to one contract stands (renown publish).

    The publisher's progress is kept here, committed after every confirmed transaction,
    and reconciled with the contract's own state when a run resumes: a run that died
    after a transaction landed but before this row was updated finds the transaction's
    effect on chain and does not send it again.
    """

    __tablename__ = "publications"

    epoch: Mapped[int] = mapped_column(ForeignKey("snapshots.epoch"), primary_key=True)
    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    root: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))  # snapshot | scores | done | failed
    batches_total: Mapped[int] = mapped_column(Integer)
    batches_done: Mapped[int] = mapped_column(Integer)
    snapshot_tx: Mapped[str | None] = mapped_column(String(64))
    announced: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PublicationTx(Base):
    """Every transaction the publisher sent, with its outcome (append-only audit)."""

    __tablename__ = "publication_txs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    contract_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer)  # 0: publish; k >= 1: score batch k
    method: Mapped[str] = mapped_column(String(32))
    tx_hash: Mapped[str | None] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------------------
# Moderation (migration 0005): flags, the accounts they concern, appeals, the audit log.
# The rules of the lifecycle are in moderation/lifecycle.py; these tables only store it.
# --------------------------------------------------------------------------------------


class Flag(Base):
    """A finding (raised by a detector) or a moderator's hand-raised flag, and its state.

    ``fingerprint`` is the finding's (scoring.detect.Finding): unique, so a finding
    already flagged, whatever became of the flag, is not raised again; hand-raised flags
    have none. ``trust_factor`` and ``label_factor`` are fixed when the flag is confirmed:
    the share of their trust the flagged accounts may still pass on, and the weight of
    their labels, from the next epoch until an appeal is upheld; ``score_factor`` the
    share of their own trust they keep (1 unless the moderator chose otherwise).
    """

    __tablename__ = "flags"
    __table_args__ = (Index(None, "status", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # moderation.lifecycle.FlagStatus
    fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    severity: Mapped[float] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    raised_by: Mapped[str] = mapped_column(String(64))  # "detector" or a moderator
    raised_epoch: Mapped[int | None] = mapped_column(Integer)  # epoch whose detectors raised it
    last_seen_epoch: Mapped[int | None] = mapped_column(Integer)  # last epoch that found it
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))  # who confirmed or dismissed
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    trust_factor: Mapped[float | None] = mapped_column(Float)
    label_factor: Mapped[float | None] = mapped_column(Float)
    score_factor: Mapped[float | None] = mapped_column(Float)


class FlagAccount(Base):
    """An account a flag concerns: ``flagged`` (sanctioned if confirmed) or ``beneficiary``
    (gained from the pattern, e.g. a serial voter's target: its history shows the reversal,
    but it is not sanctioned)."""

    __tablename__ = "flag_accounts"
    __table_args__ = (Index(None, "account_id"),)

    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


class Appeal(Base):
    """A flagged account's appeal against a confirmed flag; one per flag."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    statement: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | upheld | rejected
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """One moderation action: who, when, what, why. Append-only.

    Refused by the storage layer (storage.append_only: an ORM update or delete, or a
    bulk UPDATE/DELETE statement, raises before reaching the database) and by the
    database itself (a trigger on SQLite and PostgreSQL, for anything that bypasses the
    ORM).
    """

    __tablename__ = "moderation_audit"
    __table_args__ = (Index(None, "flag_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"))
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


# --------------------------------------------------------------------------------------
# API keys (migration 0006): who may call the HTTP API beyond the public limits, and
# who may moderate through it. Created and revoked with `renown keys` (storage.keys_repo).
# --------------------------------------------------------------------------------------


class ApiKey(Base):
    """An API key: its owner, its role, and the SHA-256 of the key, never the key itself.

    A key is ``rk_`` followed by 32 random bytes in URL-safe base64; ``prefix`` is the
    first 8 characters after ``rk_``, stored in clear to find the row (and to tell keys
    apart in ``renown keys list``) without scanning. Why a fast hash and not bcrypt or
    argon2: those are slow on purpose to protect low-entropy passwords from guessing; a
    key has 256 bits of entropy, so even a stolen table cannot be searched, and a slow
    hash would only cost every API request tens of milliseconds of CPU.

    ``last_used_at`` is best effort: the API records a key's use at most once a minute
    per process, after the response (api.auth), so that a busy key does not write on
    every request; it tells an operator which keys lie unused and can be revoked.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))  # lowercase hex sha256 of the key
    owner: Mapped[str] = mapped_column(String(64))  # the person or marketplace
    role: Mapped[str] = mapped_column(String(16))  # reader | moderator | admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UsedNonce(Base):
    """A NEP-413 nonce a contributor's signed message used (migration 0008), kept for the
    replay window: the primary key refuses a second use in any API process
    (storage.nonces_repo)."""

    __tablename__ = "used_nonces"

    public_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # ed25519, hex
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)  # 32 bytes, hex
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ChainCursor(Base):
    """Where ``renown chain-source`` stands on one chain (migration 0009): the last block
    whose events are all in Kafka, and the chain's final head when it last looked.

    ``name`` is the chain id the RPC node reports (``mainnet``, ``testnet``) for the
    follower, or ``<chain id>:backfill:<from>-<to>`` for a backfill, so a backfill never
    moves the follower and a restarted backfill resumes. ``block_hash`` lets the next
    block prove it follows this one (a node missing blocks in between is caught, not
    skipped). ``head_height`` and ``head_seen_at`` give the lag in ``/metrics``.
    """

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    height: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(64))
    block_timestamp: Mapped[int | None] = mapped_column(BigInteger)  # ns, as NEAR gives it
    head_height: Mapped[int | None] = mapped_column(BigInteger)
    head_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    messages: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The append-only guards apply wherever the models are used.
import storage.append_only  # noqa: E402, F401
