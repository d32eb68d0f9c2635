"""The web pages: server-rendered HTML on the API's own storage and moderation functions.

A contributor's standing (``/accounts/{account}``), each domain's leaderboard with search
(``/leaderboard/{domain}``) and the moderator queue (``/moderation``), with one CSS and
one JS file served by the same router: no front-end build, nothing from a CDN. Wire it
with ``app.include_router(pages.router)`` (at the root, no prefix). docs/pages.md says
what each page shows and how moderators use the queue.
"""

from api.pages.routes import router

__all__ = ["router"]
