"""Jinja2 with autoescape, the static assets, and the headers every page carries.

Security headers: the Content-Security-Policy allows scripts, styles and requests from
this origin only, and no inline script or style at all, so even a string that escaped
escaping could not run; the moderator's key lives in the tab's sessionStorage, which any
script of the origin can read (docs/pages.md). No referrer leaves a page, and no other
site may frame one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = ["ASSETS", "SECURITY_HEADERS", "account_url", "asset_response", "render"]

_HERE = Path(__file__).parent

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # a digest of the body: the URL changes when the file does


_MEDIA = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _load_assets() -> dict[str, Asset]:
    out = {}
    for path in sorted((_HERE / "static").iterdir()):
        if path.suffix in _MEDIA:
            body = path.read_bytes()
            out[path.name] = Asset(body, _MEDIA[path.suffix], hashlib.sha256(body).hexdigest()[:12])
    return out


#: name -> the file, read once at import: nothing else under static/ is served.
ASSETS = _load_assets()


def asset_url(name: str) -> str:
    return f"/static/{name}?v={ASSETS[name].version}"


def asset_response(name: str) -> Response | None:
    found = ASSETS.get(name)
    if found is None:
        return None
    return Response(
        found.body,
        media_type=found.media_type,
        headers={
            "Cache-Control": "public, max-age=86400",
            "ETag": f'"{found.version}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def account_url(account: str) -> str:
    return "/accounts/" + quote(account, safe="")


def leaderboard_url(domain: str, **params: Any) -> str:
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items() if v)
    return "/leaderboard/" + quote(domain, safe="") + (f"?{query}" if query else "")


def _pct(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(asset=asset_url, account_url=account_url, leaderboard_url=leaderboard_url)
    env.filters["pct"] = _pct
    return env


def render(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """A page (or a fragment) from ``templates/``, with the security headers."""
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
