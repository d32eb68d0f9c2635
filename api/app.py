"""The application factory: settings and database in, a FastAPI app out.

Why a factory: tests, ``renown serve`` and ``renown demo --serve`` each build the app
on their own database; nothing connects at import time (the composition-root rule of
docs/architecture.md). The app owns the database it opened and closes it on shutdown; a
database handed in stays the caller's.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from api import metrics, pages
from api.auth import RateLimitHeaders, rate_limited
from api.deps import epoch_cache_of
from api.errors import ErrorBody, error_response, install_error_handlers
from api.routes import contributors, moderation, ops, scores, snapshots, standing
from renown import bootstrap
from renown.settings import Settings, load_settings
from storage.db import DatabaseUnavailable

__all__ = ["API_VERSION", "app_from_env", "create_app"]

API_VERSION = "1.0.0"


def create_app(settings: Settings, db: bootstrap.Database | None = None) -> FastAPI:
    """The API on ``settings.database_url`` (or on ``db`` when given)."""
    owned = db is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.db is None:
            app.state.db = bootstrap.open_database(settings)
        app.state.epoch_cache = None  # a new one on this run's database
        epoch_cache_of(app).prime()  # load the latest epoch before the first lookups
        try:
            yield
        finally:
            if owned and app.state.db is not None:
                app.state.db.close()
                app.state.db = None

    app = FastAPI(
        title="Renown",
        version=API_VERSION,
        summary="Contributor reputation for NEAR data marketplaces: scores, standing, "
        "snapshots and moderation.",
        lifespan=lifespan,
        responses={
            "4XX": {
                "description": "Client error",
                "content": {"application/json": {"schema": ErrorBody}},
            },
            "5XX": {
                "description": "Server error",
                "content": {"application/json": {"schema": ErrorBody}},
            },
        },
    )
    app.state.settings = settings
    app.state.db = db
    install_error_handlers(app)

    @app.exception_handler(DatabaseUnavailable)
    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(
            503,
            "database_unavailable",
            "the database is not reachable",
            "retry later; /healthz shows what is down",
            headers={"Retry-After": "5"},
        )

    # Reads are public and rate-limited per client (a key raises the limit); moderation
    # needs a moderator's key (api/auth.py).
    for module in (scores, standing, snapshots, contributors):
        app.include_router(module.router, prefix="/v1", dependencies=[Depends(rate_limited)])
    app.include_router(moderation.router, prefix="/v1", dependencies=[Depends(rate_limited)])
    app.add_middleware(RateLimitHeaders)
    app.include_router(ops.router)  # /healthz and /metrics, at the root
    app.include_router(pages.router)  # the web pages, at the root
    metrics.install(app)
    return app


def app_from_env() -> FastAPI:
    """The app on the settings of the environment (``RENOWN_*``, ``RENOWN_CONFIG``): what
    each uvicorn worker process builds for ``renown serve --workers N``.

    The objects that exist once the app is built (the imported libraries, the routes,
    the schemas: several hundred thousand) are moved out of the cyclic garbage
    collector's reach with ``gc.freeze()``: a full collection otherwise walks them all,
    a ~110 ms pause that put the p99 of a 1,000-account batch at 124 ms (11 ms frozen;
    bench/api.py). Only here, in a server process: a test process building many apps
    would keep each one's garbage forever."""
    app = create_app(load_settings())
    gc.collect()
    gc.freeze()
    return app
