"""The web pages (api/pages/): rendered HTML through the ASGI app on both databases, then
the real thing in a headless Chromium driven by Selenium (Debian's ``chromium`` and
``chromium-driver``; ``make browser-tools`` installs them). The browser tests fail, never
skip, when Chromium is missing.

``RENOWN_SCREENSHOTS=1`` makes the browser tests write the screenshots of docs/img/.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import pages
from api.app import create_app
from api.pages.charts import Edge, account_graph, evidence_edges
from api.pages.search import clean_query
from moderation import service
from renown.settings import Settings
from simulate.world import PRESETS
from storage.db import make_engine, make_session_factory
from storage.keys_repo import create_key
from storage.migrate import upgrade
from storage.uow import UnitOfWork
from tests.worlds import apply_config, score

XSS = '<script>alert("pwned")</script> & <b>bold</b>'
XSS_STATEMENT = "<img src=x onerror=alert(1)> we are a study group"
EPOCHS = 3
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


def with_pages(app: FastAPI) -> FastAPI:
    """The pages' router on the app, unless create_app already includes it."""
    if not any(getattr(r, "path", None) == "/accounts/{account}" for r in app.routes):
        app.include_router(pages.router)
    return app


@dataclass
class World:
    url: str
    seeds: list[str]
    keys: dict[str, str]  # owner -> secret
    flags: dict[str, int]  # "serial", "ring", "sybil", "xss" -> flag id
    ring_member: str
    voter: str


def build_world(url: str) -> World:
    """The small simulated marketplace with its attackers, scored for three epochs: the
    detectors' flags open, except the vote ring, confirmed by bob after epoch 1 (with half
    of the members' own score kept, so their chart drops at epoch 2) and appealed; a
    hand-raised flag whose reason is markup; a reader's and two moderators' keys."""
    cfg = dataclasses.replace(PRESETS["small"], seed=3)
    world = apply_config(url, cfg)
    seeds = world.truth.seeds
    score(url, seeds)
    engine = make_engine(url)
    reads, writes = make_session_factory(engine), make_session_factory(engine, writer=True)
    views, _ = service.list_flags(reads, limit=1000)
    member = sorted(world.truth.ring)[0]
    voter = world.truth.serial_voters[0]
    flags = {
        "ring": next(v.id for v in views if v.kind == "vote_ring" and member in v.flagged),
        "serial": next(v.id for v in views if v.kind == "serial_voting" and voter in v.flagged),
        "sybil": next(v.id for v in views if v.kind == "sybil_cluster"),
    }
    service.confirm(
        writes,
        flags["ring"],
        moderator="bob",
        reason="four accounts voting only for each other",
        moderators=["bob"],
        score_factor=0.5,
    )
    service.appeal(writes, flags["ring"], account=member, statement=XSS_STATEMENT)
    honest = next(a for a in world.truth.honest if a not in seeds)
    flags["xss"] = service.raise_flag(
        writes, moderator="bob", kind="manual", accounts=[honest], reason=XSS, moderators=["bob"]
    ).id
    score(url, seeds, epochs=EPOCHS - 1)
    keys: dict[str, str] = {}
    with UnitOfWork(writes) as uow:
        for owner, role in [("rita", "reader"), ("alice", "moderator")]:
            _, keys[owner] = create_key(uow.session, owner, role)
        uow.commit()
    engine.dispose()
    return World(url, seeds, keys, flags, member, voter)


def settings_of(w: World) -> Settings:
    return Settings(
        database_url=w.url, seeds=w.seeds, api_rate_public=100_000, api_rate_key=100_000
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def attrs_of(page: str, tag: str, cls: str) -> list[dict[str, str]]:
    """The attributes of every ``<tag class="cls ...">`` in the page."""
    out = []
    for m in re.finditer(rf'<{tag} class="({cls}(?: [^"]*)?)"([^>]*)>', page):
        found = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', m[2])}
        out.append({"class": m[1], **found})
    return out


def row_accounts(page: str) -> list[str]:
    return [html.unescape(a) for a in re.findall(r'<tr data-account="([^"]+)">', page)]


# --- fast: the HTML through the ASGI app, on SQLite and PostgreSQL ---------------------


@pytest.fixture
def site(db_url: str) -> Iterator[tuple[TestClient, World]]:
    w = build_world(db_url)
    app = with_pages(create_app(settings_of(w)))
    with TestClient(app) as client:
        yield client, w


def test_every_page_renders_with_its_headers_and_errors_are_pages(
    site: tuple[TestClient, World],
) -> None:
    client, w = site
    for path in ["/", f"/accounts/{w.ring_member}", "/leaderboard/global", "/moderation",
                 f"/moderation/flags/{w.flags['serial']}"]:  # fmt: skip
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-ratelimit-limit"] == "100000"  # pages count like API calls
        assert '<script src="/static/renown.js?v=' in r.text and "<script>" not in r.text
    home = client.get("/").text
    assert 'href="/leaderboard/images"' in home and f"Latest epoch: <strong>{EPOCHS}" in home
    for name, media in [("renown.css", "text/css"), ("renown.js", "text/javascript")]:
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert "max-age" in r.headers["cache-control"]
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/static/routes.py").status_code == 404

    r = client.get("/accounts/ghost.near")
    assert r.status_code == 404 and "Unknown account" in r.text
    assert r.headers["content-type"].startswith("text/html")
    r = client.get("/accounts/Not..Valid")
    assert r.status_code == 422 and "not a NEAR account id" in r.text
    r = client.get("/leaderboard/no-such-domain")
    assert r.status_code == 404 and "global" in r.text
    r = client.get("/accounts", params={"account": f" {w.voter.upper()} "}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/accounts/{w.voter}"
    r = client.get("/leaderboard", follow_redirects=False)
    assert r.headers["location"] == "/leaderboard/global"


def test_the_standing_page_shows_scores_the_chart_of_the_history_and_flags(
    site: tuple[TestClient, World],
) -> None:
    client, w = site
    page = client.get(f"/accounts/{w.ring_member}").text
    scores = client.get(f"/v1/scores/{w.ring_member}").json()["scores"]
    glob = scores[0]
    assert glob["domain"] == "global"
    assert f'<td class="num score">{glob["score"]:.1f}</td>' in page
    assert f'{glob["rank"]} <span class="of">of {glob["accounts_in_domain"]:,}' in page

    # The chart: one point per epoch, at the history's scores, and the sanction's marker.
    history = client.get(f"/v1/accounts/{w.ring_member}/history").json()["epochs"]
    points = attrs_of(page, "circle", "pt")
    assert [int(p["data-epoch"]) for p in points] == [h["epoch"] for h in history]
    assert len(points) == EPOCHS
    for p, h in zip(points, history, strict=True):
        assert float(p["data-score"]) == pytest.approx(h["score"], abs=1e-3)
        assert int(p["data-rank"]) == h["rank"]
    assert history[1]["score"] < history[0]["score"] - 1  # half of its own trust kept
    marks = attrs_of(page, "g", "mark")
    sanction = [m for m in marks if "mark-sanction" in m["class"]]
    assert [int(m["data-epoch"]) for m in sanction] == [2]
    assert sanction[0]["data-flags"] == str(w.flags["ring"])
    assert "four accounts voting only for each other" in page

    # Where the trust comes from: the stored explanation's sources and text.
    expl = client.get(f"/v1/accounts/{w.ring_member}/explanation").json()
    for s in expl["explanation"]["sources"]:
        assert f'<a href="/accounts/{s["account"]}">{s["account"]}</a>' in page
    assert html.escape(expl["text"].splitlines()[0], quote=False) in page

    # Flags (public view) and how to appeal; a domain's chart by query.
    flags = client.get(f"/v1/accounts/{w.ring_member}/flags").json()["flags"]
    for f in flags:
        assert f'<tr data-flag="{f["id"]}">' in page
    assert "appealed" in page and f"/v1/accounts/{w.ring_member}/flags/" in page
    assert "renown flags appeal" in page
    other = next(s["domain"] for s in scores if s["domain"] != "global")
    page = client.get(f"/accounts/{w.ring_member}", params={"domain": other}).text
    assert f'data-domain="{other}"' in page and 'class="selected" data-domain="' + other in page


def test_user_strings_are_shown_as_text(site: tuple[TestClient, World]) -> None:
    client, w = site
    flagged = client.get(f"/v1/flags/{w.flags['xss']}", headers=auth(w.keys["alice"])).json()
    page = client.get(f"/accounts/{flagged['flagged'][0]}").text
    assert "<script>alert" not in page and "<b>bold" not in page
    assert (
        "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    )
    # In the moderator's panel too: the summary, the evidence and the appeal's statement.
    panel = client.get(
        f"/moderation/flags/{w.flags['xss']}/panel", headers=auth(w.keys["alice"])
    ).text
    assert "<script>" not in panel and panel.count("&lt;script&gt;") >= 2
    panel = client.get(
        f"/moderation/flags/{w.flags['ring']}/panel", headers=auth(w.keys["alice"])
    ).text
    assert "<img" not in panel and "&lt;img src=x onerror=alert(1)&gt;" in panel
    # A search for markup is refused, and echoed as text.
    page = client.get("/leaderboard/global", params={"q": "<script>x</script>"}).text
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    assert "lowercase letters, digits" in page


def test_the_leaderboard_pages_and_searches(site: tuple[TestClient, World]) -> None:
    client, w = site
    top = client.get("/v1/domains/global/top", params={"limit": 1000}).json()
    everyone = [i["account"] for i in top["items"]]
    page = client.get("/leaderboard/global").text
    assert row_accounts(page) == everyone[:50]
    assert (
        f'data-total="{top["total"]}"' in page
        and 'rel="next" href="/leaderboard/global?page=2"' in page
    )
    page2 = client.get("/leaderboard/global", params={"page": 2}).text
    assert row_accounts(page2) == everyone[50:100]
    assert 'rel="prev"' in page2

    found = client.get("/leaderboard/global", params={"q": "Ring"}).text
    expected = [a for a in everyone if "ring" in a]
    assert expected and row_accounts(found) == expected
    assert f'data-total="{len(expected)}"' in found
    # "_" and "." are literal, not LIKE wildcards: "h0_" would match h00... as a pattern.
    assert row_accounts(client.get("/leaderboard/global", params={"q": "h0_"}).text) == []
    dotted = client.get("/leaderboard/global", params={"q": ".market"}).text
    assert row_accounts(dotted) == [a for a in everyone if ".market" in a][:50]
    domain = client.get("/leaderboard/images", params={"q": w.voter}).text
    assert 'aria-current="page">images' in domain
    assert clean_query("  ABC.near ") == "abc.near" and clean_query("a b") is None
    assert clean_query("x" * 65) is None


def test_the_flag_panel_is_for_moderators_only(site: tuple[TestClient, World]) -> None:
    client, w = site
    path = f"/moderation/flags/{w.flags['sybil']}/panel"
    r = client.get(path)
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_required"
    r = client.get(path, headers=auth(w.keys["rita"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.get("/moderation/flags/99999/panel", headers=auth(w.keys["alice"]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_flag"
    r = client.get(path, headers=auth(w.keys["alice"]))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    view = client.get(f"/v1/flags/{w.flags['sybil']}", headers=auth(w.keys["alice"])).json()
    nodes = {a["data-account"]: a["data-role"] for a in attrs_of(r.text, "a", "account")}
    assert {a for a, role in nodes.items() if role == "flagged"} == set(view["flagged"])
    edges = {(e["data-from"], e["data-to"]) for e in attrs_of(r.text, "path", "edge")}
    assert edges == {(e["from"], e["to"]) for e in view["evidence"]["attack_edges"]}
    assert 'data-action="confirm"' in r.text and 'data-action="dismiss"' in r.text
    assert "Signed in as <strong>alice</strong>" in r.text
    # An appealed flag offers the appeal's verdicts; a final one offers nothing.
    ring = client.get(
        f"/moderation/flags/{w.flags['ring']}/panel", headers=auth(w.keys["alice"])
    ).text
    assert 'data-action="uphold"' in ring and 'data-action="confirm"' not in ring


def test_the_graph_reads_every_detectors_edges() -> None:
    serial = {"voter": "v.near", "target": "t.near", "votes": 54}
    assert evidence_edges(serial) == [Edge("v.near", "t.near", "54 upvotes", 54.0)]
    burst = {"target": "t.near", "actors": [{"account": f"n{i}.near"} for i in range(5)]}
    assert {(e.src, e.dst) for e in evidence_edges(burst)} == {
        (f"n{i}.near", "t.near") for i in range(5)
    }
    ring = {"heaviest_internal_edges": [{"from": "a", "to": "b", "weight": 0.5}]}
    assert evidence_edges(ring)[0].label == "heaviest internal edge, weight 0.5"
    sybil = {"attack_edges": [{"from": "h", "to": "s"}], "examples": [{"item": "x"}]}
    assert [(e.src, e.dst) for e in evidence_edges(sybil)] == [("h", "s")]
    assert evidence_edges({"labeler": "sp.near", "labels": 40}) == []

    # A hub (the target of a burst) sits in the middle; the rest on a circle.
    svg = account_graph([f"n{i}.near" for i in range(5)], ["t.near"], evidence_edges(burst))
    nodes = {a["data-account"]: a for a in attrs_of(svg, "g", "account")}
    centre = re.search(r'<circle class="node node-beneficiary" cx="([\d.]+)" cy="([\d.]+)"', svg)
    assert centre is not None and (float(centre[1]), float(centre[2])) == (320, 220)
    assert len(nodes) == 6 and 'data-edges="5"' in svg
    big = account_graph([f"m{i}" for i in range(50)], [], [], max_nodes=40)
    assert 'data-nodes="40"' in big and "10 more accounts not drawn" in big
    named = account_graph(["<b>x</b>"], [], [], link=lambda a: f"/accounts/{a}")
    assert "<b>" not in named and "&lt;b&gt;x&lt;/b&gt;" in named


# --- real: a headless Chromium against the app over HTTP -------------------------------


@dataclass
class Live:
    base: str
    world: World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The app with the pages under uvicorn, in a thread, on a scored SQLite file."""
    import uvicorn

    url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'renown.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    w = build_world(url)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            with_pages(create_app(settings_of(w))),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    try:
        yield Live(f"http://127.0.0.1:{port}", w)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


BROWSER_TOOLS = (
    "the browser tests need Debian's chromium and chromium-driver: run `make browser-tools` "
    "(apt-get install -y chromium chromium-driver) and `pip install selenium` (the dev extra)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver (both Debian's: no download at run time)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {BROWSER_TOOLS}", pytrace=False)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        missing = [n for n, p in [("chromium", chromium), ("chromedriver", driver_path)] if not p]
        pytest.fail(f"{', '.join(missing)} not found on PATH: {BROWSER_TOOLS}", pytrace=False)
    options = Options()
    options.binary_location = chromium
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--force-device-scale-factor=1", "--lang=en-US",
                "--hide-scrollbars"]:  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, what: str, check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # an element not there yet, or replaced while read
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; page: {driver.current_url}")
        time.sleep(0.1)


def no_console_errors(driver: Any) -> None:
    """No script error and no Content-Security-Policy violation in the page's console."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def screenshot(driver: Any, name: str) -> None:
    """docs/img/<name>.png of the whole page, when RENOWN_SCREENSHOTS=1."""
    if os.environ.get("RENOWN_SCREENSHOTS") != "1":
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height), 600), 3000))
    try:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(DOCS_IMG / f"{name}.png"))
    finally:
        driver.set_window_size(1280, 900)


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def test_chromium_renders_the_standing_page_and_its_chart(live: Live, browser: Any) -> None:
    w = live.world
    browser.get(f"{live.base}/accounts/{w.ring_member}")
    points = wait_for(browser, "the chart's points", lambda: by_css(browser, "svg.chart .pt"))
    history = httpx.get(f"{live.base}/v1/accounts/{w.ring_member}/history").json()["epochs"]
    assert len(points) == len(history) == EPOCHS
    assert [int(p.get_attribute("data-epoch")) for p in points] == list(range(1, EPOCHS + 1))
    for p, h in zip(points, history, strict=True):
        assert float(p.get_attribute("data-score")) == pytest.approx(h["score"], abs=1e-3)
        assert p.is_displayed() and p.rect["width"] > 0  # drawn, not just in the markup
    ys = [p.rect["y"] for p in points]
    assert ys[1] > ys[0]  # the sanction's drop is drawn downwards
    marks = by_css(browser, "svg.chart .mark-sanction")
    assert [m.get_attribute("data-epoch") for m in marks] == ["2"]
    assert browser.find_element("css selector", "h1").text == w.ring_member
    assert "appealed" in browser.find_element("css selector", "#flags").text
    no_console_errors(browser)
    screenshot(browser, "page-standing")


def test_chromium_searches_the_leaderboard(live: Live, browser: Any) -> None:
    browser.get(f"{live.base}/leaderboard/global")
    rows = wait_for(browser, "ranking rows", lambda: by_css(browser, "tr[data-account]"))
    assert len(rows) == 50
    box = browser.find_element("css selector", "#q")
    box.send_keys("sp0")
    box.submit()
    wait_for(browser, "the search's page", lambda: "q=sp0" in browser.current_url)
    found = [r.get_attribute("data-account") for r in by_css(browser, "tr[data-account]")]
    assert found and all("sp0" in a for a in found) and len(found) < 50
    ranks = [
        int(r.find_element("css selector", "td").text) for r in by_css(browser, "tr[data-account]")
    ]
    assert ranks == sorted(ranks)
    assert browser.find_element("css selector", "#q").get_attribute("value") == "sp0"
    no_console_errors(browser)
    screenshot(browser, "page-leaderboard")


def test_chromium_moderator_confirms_a_flag_and_the_audit_log_shows_it(
    live: Live, browser: Any
) -> None:
    w = live.world
    key, fid = w.keys["alice"], w.flags["serial"]
    browser.get(f"{live.base}/moderation")
    assert "Enter a moderator key" in browser.find_element("css selector", "#queue-status").text
    browser.find_element("css selector", "#key").send_keys(key)
    browser.find_element("css selector", "#use-key").click()
    rows = wait_for(browser, "the queue", lambda: by_css(browser, "#queue tr[data-flag]"))
    severities = [float(r.get_attribute("data-severity")) for r in rows]
    assert severities == sorted(severities, reverse=True)
    assert {b.get_attribute("data-band") for b in by_css(browser, "#queue section")} <= {
        "high", "medium", "low"
    }  # fmt: skip
    # The key is in the tab's sessionStorage, not in the field, the URL or a cookie.
    assert browser.execute_script("return sessionStorage.getItem('renown.moderatorKey')") == key
    assert browser.find_element("css selector", "#key").get_attribute("value") == ""
    assert browser.get_cookies() == []
    no_console_errors(browser)
    screenshot(browser, "page-moderation-queue")

    # A flag with a larger picture, for the docs: a sybil cluster and its attack edges.
    browser.get(f"{live.base}/moderation/flags/{w.flags['sybil']}")
    wait_for(browser, "the sybil flag's graph", lambda: by_css(browser, "svg.graph .edge"))
    screenshot(browser, "page-flag-graph")

    # Open the serial voter's flag from the queue, then confirm it with a reason.
    browser.get(f"{live.base}/moderation")
    link = wait_for(
        browser, "the flag's link", lambda: by_css(browser, f'#queue tr[data-flag="{fid}"] a')
    )
    link[0].click()
    wait_for(browser, "the flag's panel", lambda: by_css(browser, "#panel article.flag"))
    assert browser.current_url.endswith(f"/moderation/flags/{fid}")
    nodes = {n.get_attribute("data-account") for n in by_css(browser, "svg.graph .account")}
    edges = [(e.get_attribute("data-from"), e.get_attribute("data-to"))
             for e in by_css(browser, "svg.graph .edge")]  # fmt: skip
    target = httpx.get(f"{live.base}/v1/flags/{fid}", headers=auth(key)).json()["evidence"]
    assert nodes == {w.voter, target["target"]} and edges == [(w.voter, target["target"])]
    browser.find_element("css selector", "button[data-action=confirm]").click()
    result = browser.find_element("css selector", "#result")
    wait_for(browser, "the missing reason's message", lambda: "reason is required" in result.text)
    browser.find_element("css selector", "#reason").send_keys("54 upvotes to one author in a day")
    browser.find_element("css selector", "button[data-action=confirm]").click()
    wait_for(browser, "the confirmation", lambda: "now confirmed" in result.text)
    wait_for(
        browser,
        "the audit log's confirmation",
        lambda: by_css(browser, '#audit tr[data-actor="alice"][data-action="confirm"]'),
    )
    status = wait_for(browser, "the new status", lambda: by_css(browser, "#flag-status"))
    assert status[0].text == "confirmed"
    assert not by_css(browser, "button[data-action]")  # nothing left to decide

    audit = httpx.get(f"{live.base}/v1/audit", params={"flag": fid}, headers=auth(key)).json()
    assert [(e["actor"], e["action"]) for e in audit] == [
        ("detector", "raise"),
        ("alice", "confirm"),
    ]
    assert audit[1]["reason"] == "54 upvotes to one author in a day"
    assert audit[1]["details"]["via"].startswith("api key #")
    # A second decision is refused by the lifecycle; the page would show the API's error.
    r = httpx.post(f"{live.base}/v1/flags/{fid}/dismiss", json={"reason": "x"}, headers=auth(key))
    assert r.status_code == 409
    no_console_errors(browser)
    screenshot(browser, "page-flag")


def test_chromium_shows_api_errors_on_the_page(live: Live, browser: Any) -> None:
    browser.get(f"{live.base}/moderation")
    browser.execute_script("sessionStorage.setItem('renown.moderatorKey', 'rk_not-a-key')")
    browser.get(f"{live.base}/moderation")
    status = browser.find_element("css selector", "#queue-status")
    wait_for(browser, "the refusal", lambda: "401 invalid_key" in status.text)
    browser.find_element("css selector", "#forget-key").click()
    assert browser.execute_script("return sessionStorage.getItem('renown.moderatorKey')") is None
    wait_for(browser, "the prompt", lambda: "Enter a moderator key" in status.text)
