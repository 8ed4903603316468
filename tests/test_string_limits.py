"""Every string limit the API promises fits the column it is stored in: a value the schema accepts
must never reach the database too long (PostgreSQL refuses it with a 500; SQLite would keep it)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import String

from agent_ui.app import create_app
from hotline.context import HotlineContext
from hotline.schema import metadata
from tests.conftest import make_settings

# Where the body of each family of endpoints is stored.
WRITES = {
    "/api/tickets": ["tickets", "ticket_events"],
    "/api/console/tickets": ["tickets", "ticket_events"],
    "/api/police": ["tickets", "police_handovers"],
    "/api/calls": ["call_records", "call_events", "police_handovers"],
    "/open311": ["tickets", "open311_requests"],
    "/api/kb": ["kb_entries", "kb_entry_versions"],
    "/api/admin/departments": ["departments"],
    "/api/admin/users": ["users"],
    "/api/admin/calendar": ["calendar_overrides"],
    "/api/callbacks": ["callbacks", "callback_attempts", "phone_opt_outs"],
    "/api/missed-calls": ["call_records", "call_events"],
    "/api/seats": ["seats", "seat_state_changes"],
}


def _columns(tables: list[str]) -> dict[str, int]:
    lengths: dict[str, int] = {}
    for table in metadata.sorted_tables:
        if table.name in tables:
            for column in table.columns:
                if isinstance(column.type, String) and column.type.length:
                    lengths[column.name] = min(column.type.length, lengths.get(column.name, 10**9))
    return lengths


def _limits(spec: dict[str, Any], schema: dict[str, Any], path: list[str]) -> list[tuple[str, int]]:
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    found = [(path[-1], schema["maxLength"])] if "maxLength" in schema and path else []
    for key in ("anyOf", "allOf", "oneOf"):
        for option in schema.get(key, []):
            found += _limits(spec, option, path)
    for name, child in schema.get("properties", {}).items():
        found += _limits(spec, child, [*path, name])
    if "items" in schema:
        found += _limits(spec, schema["items"], path)
    return found


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'hotline.db'}"
    ctx = HotlineContext.from_settings(make_settings(url))
    yield create_app(ctx).openapi()
    ctx.close()


def test_no_accepted_string_is_longer_than_its_column(spec: dict[str, Any]) -> None:
    too_long = []
    checked = 0
    for path, operations in spec["paths"].items():
        tables = next((t for prefix, t in WRITES.items() if path.startswith(prefix)), None)
        if tables is None:
            continue
        columns = _columns(tables)
        for method, operation in operations.items():
            if method not in ("post", "put", "patch"):
                continue
            for content in operation.get("requestBody", {}).get("content", {}).values():
                for field, limit in _limits(spec, content.get("schema", {}), []):
                    if field in columns:
                        checked += 1
                        if limit > columns[field]:
                            too_long.append(f"{method.upper()} {path} {field}: {limit} > {columns[field]}")
    assert checked > 20  # the check found the fields it is about
    assert not too_long, "\n".join(too_long)
