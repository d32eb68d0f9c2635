"""Response and request bodies: the API's contract, as OpenAPI publishes it."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, Field

from scoring.model import AccountScore

# A NEAR account id as OpenAPI documents it: the rule of ingest.decode.is_account_id. Only
# documented (json_schema_extra), not enforced by the request validator: the routes check
# it themselves, to answer 422 ``invalid_account`` with a hint rather than the generic
# ``invalid_request``.
ACCOUNT_ID_SCHEMA: dict[str, Any] = {
    "minLength": 2,
    "maxLength": 64,
    "pattern": r"^(?:[a-z0-9]+[-_])*[a-z0-9]+(?:\.(?:[a-z0-9]+[-_])*[a-z0-9]+)*$",
}
AccountId = Annotated[str, Field(json_schema_extra=ACCOUNT_ID_SCHEMA)]


class DomainScore(BaseModel):
    domain: str
    score: float = Field(description="0-100, log scale of trust (docs/scoring.md)")
    rank: int = Field(description="1 = most trusted in the domain")
    percentile: float
    confidence: float | None = Field(description="0-1; how much evidence backs the score")
    trust: float = Field(description="stationary trust; sums to 1 over the domain")
    accounts_in_domain: int | None = None

    @classmethod
    def of(cls, r: AccountScore, size: int | None = None) -> Self:
        """From a stored score; the subclasses that name the account get it too (built in
        one step: a batch of 1,000 builds 1,000 of these)."""
        extra = {"account": r.account} if "account" in cls.model_fields else {}
        return cls(
            domain=r.domain,
            score=r.score,
            rank=r.rank,
            percentile=r.percentile,
            confidence=r.confidence,
            trust=r.trust,
            accounts_in_domain=size,
            **extra,
        )


class AccountScores(BaseModel):
    account: str
    epoch: int
    scores: list[DomainScore]


class BatchRequest(BaseModel):
    accounts: list[AccountId] = Field(min_length=1, description="NEAR account ids")
    domain: str = "global"


class BatchScore(DomainScore):
    account: str


class BatchScores(BaseModel):
    epoch: int
    domain: str
    scores: list[BatchScore]
    missing: list[str] = Field(description="accounts with no score in this domain")


class RankedScore(DomainScore):
    account: str


class TopPage(BaseModel):
    epoch: int
    domain: str
    total: int
    limit: int
    offset: int
    items: list[RankedScore]


class DomainInfo(BaseModel):
    domain: str
    accounts: int


class Domains(BaseModel):
    epoch: int
    domains: list[DomainInfo]


class Explanation(BaseModel):
    account: str
    epoch: int
    domain: str
    score: DomainScore
    explanation: dict[str, Any] | None
    text: str = Field(description="the explanation as `renown explain` prints it")


class HistoryEvent(BaseModel):
    at: str
    flag: int
    kind: str
    role: str
    action: str
    actor: str
    reason: str
    meaning: str | None
    flagged: list[str]
    effective_epoch: int | None
    share: float | None = None


class HistoryPoint(BaseModel):
    epoch: int
    finished_at: str
    score: float | None
    rank: int | None
    percentile: float | None
    trust: float | None
    change: float | None
    events: list[HistoryEvent]


class History(BaseModel):
    account: str
    domain: str
    epochs: list[HistoryPoint]
    pending: list[HistoryEvent]


class PublicFlag(BaseModel):
    id: int
    kind: str
    status: str
    role: str = Field(description="flagged, or beneficiary (gained, not sanctioned)")
    summary: str
    raised_at: str
    raised_epoch: int | None
    decided_at: str | None
    appeal_status: str | None = None


class AccountFlags(BaseModel):
    account: str
    flags: list[PublicFlag]


class Publication(BaseModel):
    contract_id: str
    stage: str
    snapshot_tx: str | None
    batches_done: int
    batches_total: int
    finished_at: str | None


class SnapshotInfo(BaseModel):
    epoch: int
    root: str
    count: int
    leaf_version: int
    built_at: str
    publications: list[Publication]
    download: dict[str, str]


class ProofBody(BaseModel):
    account: str
    domain: str
    epoch: int
    root: str
    proof: dict[str, Any] = Field(description="the form the contract's verify takes")
    publications: list[Publication]
