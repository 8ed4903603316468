"""Every page as every role, on a hotline set up the way `make run` sets it up (`hotline init-db` and
`hotline demo-data` run as commands, today's clock): a crawler follows every link a role can see and
fails on any 5xx, any failed request, any console error or uncaught script error, and any element
shown despite its `hidden` attribute."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from hotline.context import HotlineContext
from tests.agent_ui.conftest import VIEWPORT, LiveServer, login, serve, settings_for

# Links that act instead of showing (logout) or leave the page tree (files, the live stream).
SKIP = re.compile(r"^/(logout|static/|api/|events|open311/)|\.(xlsx|pdf|csv)(\?|$)")
# How many pages of one shape (e.g. /tickets/<number>) are enough to show the template holds.
PER_SHAPE = 3
ROLES = ["admin", "banzhang", "op01", "sw_lly", "ddzx_lly"]
PUBLIC = ["/xinxiang", "/chaxun", "/gongkai", "/login"]
# Elements a page hides with the `hidden` attribute that a style shows anyway (a badge always on).
HIDDEN_BUT_SHOWN = """[...document.querySelectorAll('[hidden]')]
  .filter(e => getComputedStyle(e).display !== 'none')
  .map(e => e.id || e.className || e.tagName)"""


def _hotline(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`hotline init-db` + `hotline demo-data` on a new SQLite file, then the app on loopback."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'hotline.db'}"
    env = {**os.environ, "HOTLINE_DATABASE_URL": url}
    env.pop("HOTLINE_CONFIG", None)
    _hotline("init-db", env=env)
    assert "new tickets" in _hotline("demo-data", env=env)
    ctx = HotlineContext.from_settings(settings_for(url))  # the system clock, like `hotline serve`
    with serve(ctx) as server:
        yield server


def _shape(path: str) -> str:
    """Pages of one template: digits and unit codes (/evaluation/<code>) alike, query values ignored."""
    path, _, query = path.partition("?")
    path = re.sub(r"^/evaluation/[a-z][a-z0-9_]*$", "/evaluation/*", re.sub(r"\d", "0", path))
    names = sorted(part.split("=", 1)[0] for part in query.split("&") if part)
    return f"{path}?{'&'.join(names)}"


def _watch(page: Any, base: str, problems: list[str]) -> None:
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text} @ {page.url}"))
    page.on("pageerror", lambda e: problems.append(f"script error: {e} @ {page.url}"))
    page.on(
        "response",
        lambda r: r.url.startswith(base) and r.status >= 500 and problems.append(f"{r.status} {r.url}"),
    )
    page.on("requestfailed", lambda r: _failed(r, base) and problems.append(f"failed: {r.url} {r.failure}"))


def _failed(request: Any, base: str) -> bool:
    """A request of ours that failed; leaving a page aborts what it still had open (the live-update
    stream, a late fetch), which is no fault."""
    return request.url.startswith(base) and request.failure != "net::ERR_ABORTED"


def _links(page: Any, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    paths = []
    for href in hrefs:
        parts = urlsplit(href)
        if href.startswith(base) and not SKIP.search(parts.path):
            paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return paths


def crawl(page: Any, base: str, start: list[str], problems: list[str]) -> list[str]:
    """Breadth-first over the links the pages show; returns the pages opened."""
    queue, seen, shapes, opened = deque(start), set(start), dict[str, int](), []
    while queue:
        path = queue.popleft()
        shape = _shape(path)
        if shapes.get(shape, 0) >= PER_SHAPE:
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
        response = page.goto(path)
        page.wait_for_load_state("networkidle")
        opened.append(path)
        if response is None or response.status >= 400:
            problems.append(f"{response.status if response else 'no response'} {path}")
            continue
        shown = page.evaluate(HIDDEN_BUT_SHOWN)
        if shown:
            problems.append(f"shown despite its hidden attribute: {shown} @ {path}")
        for link in _links(page, base):
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return opened


@pytest.mark.parametrize("username", ROLES)
def test_every_page_a_role_can_reach_opens_cleanly(browser: Any, demo: LiveServer, username: str) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", base_url=demo.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    _watch(page, demo.url, problems)
    login(page, username)
    opened = crawl(page, demo.url, [urlsplit(page.url).path], problems)
    context.close()
    assert len(opened) >= 2, opened  # the crawler found the role's pages
    assert not problems, "\n".join(problems)


def test_the_public_pages_open_cleanly(browser: Any, demo: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=demo.url)
    page = context.new_page()
    problems: list[str] = []
    _watch(page, demo.url, problems)
    opened = crawl(page, demo.url, PUBLIC, problems)
    context.close()
    assert set(PUBLIC) <= set(opened)
    assert not problems, "\n".join(problems)
