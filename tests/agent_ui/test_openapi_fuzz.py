"""Schemathesis against the app's OpenAPI schema, with all its checks: every documented endpoint, fed
generated input, never answers 5xx, answers only status codes and bodies its schema documents (times
with their UTC offset), refuses what the schema forbids, and accepts what it allows. Bounded: a few
examples per operation, derandomised, so the run is short and repeatable. Runs as the admin (Basic
auth), so the requests get past authentication into every endpoint; the demo county on SQLite and
PostgreSQL.

One built-in check is replaced by a narrower one of ours: a schema-valid request may still be refused
by a business rule (an end before its start, a date in the past: 422 with the rule's own error), but
never as malformed input (422 "ValidationError"), and what it names that does not exist is a 404."""

from __future__ import annotations

import base64
import itertools
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import text

from agent_ui.app import create_app
from hotline.demo_data import DEMO_PASSWORD
from hotline.schema import metadata
from tests.agent_ui.conftest import demo_context

ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{DEMO_PASSWORD}".encode()).decode()}
# A deeper run: FUZZ_EXAMPLES=50 pytest tests/agent_ui/test_openapi_fuzz.py
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


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


def valid_input_reaches_the_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request is not refused as malformed, and a missing thing it names is a 404."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    text = response.text
    if error == "ValidationError" or "does not exist" in text or "invalid request" in text:
        raise AssertionError(f"schema-valid request refused: {response.status_code} {text[:300]}")
    return None


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_every_endpoint_answers_bad_input_without_a_server_error(api_schema: Any) -> None:
    """Each operation in turn (so a failure names it), a few generated cases each."""
    checked, failures = [], []
    for operation, mode in itertools.product(operations(api_schema), GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(
                headers=ADMIN,
                excluded_checks=[positive_data_acceptance],
                additional_checks=[valid_input_reaches_the_rules],
            )

        try:
            check()
        except Unsatisfiable:  # an operation without parameters has no invalid request to make
            continue
        except (Exception, BaseExceptionGroup) as exc:  # collect them all: one run lists every failure
            failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {str(exc)[:600]}")
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert not failures, "\n\n".join(failures)
    # The intake channels are in the schema and were fuzzed with the rest.
    assert {"POST /open311/v2/requests.json", "POST /api/police/handovers", "POST /api/public/status"} <= set(
        checked
    )
    assert len(checked) >= 60
