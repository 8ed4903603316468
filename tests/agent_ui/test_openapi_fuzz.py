"""Schemathesis against the app's OpenAPI schema: every documented endpoint, fed generated (mostly
bad) input, answers with a 4xx or a success and never a 5xx. Bounded: a few examples per operation,
derandomised, so the run is short and repeatable. Runs as the admin (Basic auth), so the requests
get past authentication into the validation of every endpoint; the demo county on SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import text

from agent_ui.app import create_app
from hotline.demo_data import DEMO_PASSWORD
from hotline.schema import metadata
from tests.agent_ui.conftest import demo_context

ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{DEMO_PASSWORD}".encode()).decode()}
# The call centre is off in tests: its endpoints answer 503 "call centre not running" on purpose.
CALL_CENTRE_OFF = 503
EXAMPLES = 15


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_schema(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "hotline.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
    ctx = demo_context(url)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(ctx))
    if request.param == "postgresql":  # leave the run's database empty for the next test, as db_url does
        with ctx.engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    ctx.close()


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_every_endpoint_answers_bad_input_without_a_server_error(api_schema: Any) -> None:
    """Each operation in turn (so a failure names it), a few generated cases each."""
    checked, failures = [], []
    for operation in operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(headers=ADMIN)
            if response.status_code == CALL_CENTRE_OFF and "呼叫中心" in response.text:
                return
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )

        try:
            check()
        except Exception as exc:  # collect them all, so one run lists every failing endpoint
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert not failures, "\n\n".join(failures)
    # The intake channels are in the schema and were fuzzed with the rest.
    assert {"POST /open311/v2/requests.json", "POST /api/police/handovers", "POST /api/public/status"} <= set(
        checked
    )
    assert len(checked) >= 60
