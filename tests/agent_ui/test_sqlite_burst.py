"""A burst of requests on one ticket against the SQLite default, through uvicorn: every answer is the
action done (200) or the clear conflict (409), none is a pool error or a 500, and none waits long."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from tests.agent_ui.conftest import DEMO_PASSWORD, LiveServer

BURST = 20
AUTH = "Basic " + base64.b64encode(f"op01:{DEMO_PASSWORD}".encode()).decode()


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": AUTH})
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_twenty_dispatches_of_one_ticket_at_once_give_one_200_and_clear_409s(live: LiveServer) -> None:
    _, ticket = _call(f"{live.url}/api/tickets", "POST", {"content": "路灯不亮了，晚上很黑"})
    _, tree = _call(f"{live.url}/api/categories")
    sub = next(s["id"] for c in tree for s in c["subcategories"] if s["name"] == "路灯损坏")
    answers: list[tuple[int, Any]] = []
    start = threading.Barrier(BURST)

    def dispatch() -> None:
        start.wait()
        body = {"department": "cgj", "subcategory_id": sub}
        answers.append(_call(f"{live.url}/api/tickets/{ticket['number']}/dispatch", "POST", body))

    began = time.monotonic()
    threads = [threading.Thread(target=dispatch) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    codes = [code for code, _ in answers]
    assert sorted(set(codes)) == [200, 409], answers
    assert codes.count(200) == 1 and len(codes) == BURST
    assert all(body.get("detail_zh") for code, body in answers if code == 409)  # said in Chinese
    assert time.monotonic() - began < 20
