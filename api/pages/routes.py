"""The pages: home, a contributor's standing, leaderboards, the moderator queue and a flag.

Each page reads through the same storage and moderation functions as the JSON routes, in
one read transaction per request, and counts against the caller's rate limit like any
API call. Public pages show what the public JSON routes show; a flag's evidence is a
moderator's: the flag page is a shell whose script fetches ``/moderation/flags/{id}/panel``
with the moderator's key (the same role check as ``/v1/flags/{id}``) and posts decisions
to the JSON routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from api.auth import Principal, rate_limited, require_role
from api.deps import database, epoch_cache, read_session
from api.errors import ApiError
from api.pages.charts import account_graph, chart_marks, evidence_edges, score_chart
from api.pages.evidence import evidence_html
from api.pages.search import COUNT_CAP, MAX_QUERY, clean_query, search_scores
from api.pages.templating import account_url, asset_response, leaderboard_url, render
from ingest.decode import is_account_id
from moderation import service
from renown.bootstrap import Database
from renown.report import _event_line, evidence_text, explain_text
from scoring.explain import KIND_LABELS
from scoring.model import GLOBAL_DOMAIN
from storage import flags_repo
from storage.history_repo import account_history
from storage.scoring_repo import (
    account_exists,
    account_scores,
    latest_epoch,
    top_scores,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

ReadSession = Annotated[Session, Depends(read_session)]
Moderator = Annotated[Principal, Depends(require_role("moderator", "admin"))]
Limited = [Depends(rate_limited)]

PAGE_SIZE = 50
HISTORY_EPOCHS = 100  # points on the chart at most
FLAGS_SHOWN = 100  # flags on a standing page at most


def _error(status: int, title: str, message: str, hint: str | None = None) -> Response:
    return render("error.html", status, title=title, message=message, hint=hint, epoch=None)


def _domains(sizes: dict[str, int]) -> list[str]:
    return sorted(sizes, key=lambda d: (d != GLOBAL_DOMAIN, d))


@router.get("/static/{name}")
def static(name: Annotated[str, Path(max_length=64)]) -> Response:
    """The stylesheet and the script (no directory behind it: a fixed list of files)."""
    found = asset_response(name)
    if found is None:
        raise ApiError(404, "not_found", f"no asset {name!r}")
    return found


@router.get("/", dependencies=Limited)
def home(request: Request, session: ReadSession) -> Response:
    latest = latest_epoch(session)
    sizes = epoch_cache(request).sizes(session, latest.epoch) if latest else {}
    return render(
        "home.html",
        epoch=latest.epoch if latest else None,
        finished_at=latest.finished_at if latest else None,
        domains=[(d, sizes[d]) for d in _domains(sizes)],
    )


@router.get("/accounts", dependencies=Limited)
def lookup(account: Annotated[str, Query(max_length=MAX_QUERY)] = "") -> Response:
    """The header's look-up form: straight to the account's page."""
    name = account.strip().lower()
    if not name:
        return RedirectResponse("/", status_code=303)
    return RedirectResponse(account_url(name), status_code=303)


@router.get("/accounts/{account}", dependencies=Limited)
def standing(
    account: Annotated[str, Path(min_length=1, max_length=100)],
    request: Request,
    session: ReadSession,
    domain: Annotated[str, Query(max_length=64)] = GLOBAL_DOMAIN,
) -> Response:
    """Score, rank, percentile and confidence per domain; the score over epochs with its
    moderation events; where the trust comes from; flags concerning it; how to appeal."""
    if not is_account_id(account):
        return _error(
            422,
            "Not an account id",
            f"{account!r} is not a NEAR account id.",
            "2-64 characters: lowercase letters, digits, and - _ . as separators.",
        )
    latest = latest_epoch(session)
    if latest is None:
        return _error(404, "No scores yet", "The operator has not scored an epoch yet.")
    epoch = latest.epoch
    if not account_exists(session, account):
        return _error(
            404,
            "Unknown account",
            f"{account} is not known.",
            "It has never appeared in any event Renown ingested; check the spelling.",
        )
    rows = account_scores(session, epoch, account)
    sizes = epoch_cache(request).sizes(session, epoch)
    chosen = next((r for r in rows if r.domain == domain), None)
    found = account_history(session, account, domain, limit=HISTORY_EPOCHS)
    entries, pending = found if found is not None else ([], [])
    events = [(h.epoch, _event_line(e)) for h in entries for e in chart_marks(h)]
    flag_rows, flag_total = flags_repo.list_flags(session, account=account, limit=FLAGS_SHOWN)
    flags = []
    for r in sorted(flag_rows, key=lambda r: r.flag.id):
        appeal = flags_repo.get_appeal(session, r.flag.id)
        flags.append(
            {
                "id": r.flag.id,
                "kind": r.flag.kind,
                "status": r.flag.status,
                "role": "flagged" if account in r.flagged else "beneficiary",
                "summary": r.flag.summary,
                "raised_at": r.flag.raised_at,
                "raised_epoch": r.flag.raised_epoch,
                "decided_at": r.flag.decided_at,
                "decision_reason": r.flag.decision_reason,
                "appeal_status": appeal.status if appeal else None,
            }
        )
    explanation = chosen.explanation if chosen else None
    return render(
        "standing.html",
        account=account,
        epoch=epoch,
        domain=domain,
        rows=rows,
        sizes=sizes,
        chosen=chosen,
        chart=score_chart(entries, _event_line, account=account, domain=domain),
        epochs=len(entries),
        events=events,
        pending=[_event_line(e) for e in pending],
        explanation=explanation,
        sources=(explanation or {}).get("sources", []),
        kinds=sorted(
            (
                (KIND_LABELS.get(k, k.replace("_", " ")), float(v))
                for k, v in (explanation or {}).get("kinds", {}).items()
            ),
            key=lambda kv: -kv[1],
        ),
        text=(
            explain_text(chosen, epoch=epoch, accounts_in_domain=sizes.get(domain, 0))
            if chosen
            else None
        ),
        flags=flags,
        flag_total=flag_total,
        appealable=[f for f in flags if f["role"] == "flagged" and f["status"] == "confirmed"],
    )


@router.get("/leaderboard", dependencies=Limited)
def leaderboard_home() -> Response:
    return RedirectResponse(leaderboard_url(GLOBAL_DOMAIN), status_code=303)


@router.get("/leaderboard/{domain}", dependencies=Limited)
def leaderboard(
    domain: Annotated[str, Path(max_length=64)],
    request: Request,
    session: ReadSession,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """A page of the domain's ranking, or of the accounts whose id contains ``q``."""
    latest = latest_epoch(session)
    if latest is None:
        return _error(404, "No scores yet", "The operator has not scored an epoch yet.")
    epoch = latest.epoch
    sizes = epoch_cache(request).sizes(session, epoch)
    if domain not in sizes:
        return _error(
            404,
            "Unknown domain",
            f"No domain {domain!r} at epoch {epoch}.",
            "Domains: " + ", ".join(_domains(sizes)),
        )
    offset = (page - 1) * PAGE_SIZE
    query = clean_query(q) if q.strip() else None
    invalid = bool(q.strip()) and query is None
    rows: list[Any]
    if query is not None:
        if offset >= COUNT_CAP:
            rows, total = [], COUNT_CAP + 1
        else:
            rows, total = search_scores(
                session, epoch, domain, query, limit=PAGE_SIZE, offset=offset
            )
    elif invalid:
        rows, total = [], 0
    else:
        rows, total = top_scores(session, epoch, domain, PAGE_SIZE, offset), sizes[domain]
    shown_total = min(total, COUNT_CAP) if query is not None else total
    pages = max(1, -(-shown_total // PAGE_SIZE))
    return render(
        "leaderboard.html",
        epoch=epoch,
        domain=domain,
        domains=_domains(sizes),
        size=sizes[domain],
        q=q.strip() if not invalid else q.strip()[:MAX_QUERY],
        query=query,
        invalid=invalid,
        rows=rows,
        total=total,
        capped=query is not None and total > COUNT_CAP,
        cap=COUNT_CAP,
        page=page,
        pages=pages,
        prev_url=leaderboard_url(domain, q=query, page=page - 1) if page > 1 else None,
        next_url=leaderboard_url(domain, q=query, page=page + 1) if page < pages else None,
    )


@router.get("/moderation", dependencies=Limited)
def moderation_queue() -> Response:
    """The queue: a shell; its script reads ``/v1/flags`` with the moderator's key."""
    return render("queue.html", epoch=None)


@router.get("/moderation/flags/{flag_id}", dependencies=Limited)
def moderation_flag(flag_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    """One flag: a shell; its script loads the panel below with the moderator's key."""
    return render("flag.html", flag_id=flag_id, epoch=None)


@router.get("/moderation/flags/{flag_id}/panel", dependencies=Limited)
def moderation_flag_panel(
    flag_id: Annotated[int, Path(ge=1, le=2**62)],
    who: Moderator,
    db: Annotated[Database, Depends(database)],
) -> Response:
    """The flag's accounts, a picture of them, its evidence, appeal and decision buttons:
    an HTML fragment for a moderator's key only (the evidence is not public)."""
    try:
        view = service.show(db.sessions, flag_id)
    except service.FlagNotFound as exc:
        raise ApiError(404, "unknown_flag", str(exc), "GET /v1/flags lists them") from None
    edges = evidence_edges(view.evidence)
    return render(
        "flag_panel.html",
        headers={"Cache-Control": "no-store", "Vary": "Authorization"},
        v=view,
        who=who,
        graph=account_graph(view.flagged, view.beneficiaries, edges, link=account_url),
        evidence=evidence_html(view.evidence),
        evidence_plain=evidence_text(view.evidence),
        own=who.owner in view.flagged,
        confirmed_by_me=who.owner == view.decided_by,
    )
