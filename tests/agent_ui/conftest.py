"""Fixtures of the page tests: the app served by uvicorn on a free loopback port (one per module,
SQLite), Debian's Chromium driven by Playwright (one per session), logins, screenshots."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from agent_ui.app import create_app
from core.clock import ManualClock
from dispatch.catalog import load_category_tree, sync_category_tree
from hotline.config import REPO_ROOT
from hotline.context import HotlineContext
from hotline.demo_data import DEMO_PASSWORD, load_departments, load_knowledge_base, load_seats, load_staff
from tests.conftest import MONDAY_9, make_settings

SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1366, "height": 768}
SECRET = "test-session-key-0123456789abcdef"


def settings_for(db_url: str) -> Any:
    return make_settings(db_url, auth={"session_secret": SECRET})


def demo_context(db_url: str) -> HotlineContext:
    """A hotline on `db_url` with the demo county's departments, staff, knowledge base and seats."""
    ctx = HotlineContext.from_settings(settings_for(db_url), clock=ManualClock(MONDAY_9))
    with ctx.unit_of_work() as session:
        load_departments(session)
        sync_category_tree(session, load_category_tree(REPO_ROOT / "dispatch" / "category_tree.toml"))
        load_staff(session, MONDAY_9)
        load_knowledge_base(session, MONDAY_9)
        load_seats(ctx, session)
    return ctx


@dataclass
class LiveServer:
    ctx: HotlineContext
    url: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(ctx: HotlineContext) -> Iterator[LiveServer]:
    """The app for `ctx` under uvicorn on a free loopback port, in a thread."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(ctx), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield LiveServer(ctx, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.close()


@pytest.fixture(scope="module")
def live(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("live") / "hotline.db"
    shutil.copyfile(sqlite_template, path)
    with serve(demo_context(f"sqlite:///{path}")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API holds an event loop on this thread while it is open, and
    # later modules run asyncio.run() on it.
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, live: LiveServer) -> Iterator[Any]:
    """Pages in fresh browser contexts (own cookies), all closed after the test."""
    contexts = []

    def make() -> Any:
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", base_url=live.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def login(page: Any, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(console|portal|dashboard|admin|search).*"))


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target))
    return target


# ---- TestClient helpers for the JSON API tests of the page actions -------------------------------


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page without a CSRF token"
    return match.group(1)


def page_login(client: TestClient, username: str, password: str) -> str:
    """Log in through the login form; return the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/search").text)


def client_for(ctx: HotlineContext) -> TestClient:
    return TestClient(create_app(ctx), base_url="http://testserver")


__all__ = ["DEMO_PASSWORD", "create_app", "settings_for"]
