"""The OpenAPI document as the API really answers: every error status an operation can give, in the
one error shape of the hotline (`{"error", "detail", "detail_zh", "problems"?}`; Open311's own array
shape under /open311), so a client generated from the schema understands every answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

ERROR_STATUSES = {
    400: "bad request",
    401: "not logged in (Basic, Bearer or the pages' session)",
    403: "not permitted for this role or department, or no CSRF token",
    404: "not found",
    405: "method not allowed",
    409: "conflicts with the current state, or with someone else's change at the same moment",
    410: "gone (a file that is missing or damaged)",
    413: "too large",
    415: "unsupported media type",
    422: "invalid input, or a business rule refuses it",
    429: "too many requests (Retry-After says when to try again)",
    503: "the call centre is not running on this server",
}


class ErrorOut(BaseModel):
    error: str
    detail: str
    detail_zh: str
    # What was wrong, one entry per field (or per line of an import): {"field"|"line", "reason", …}
    problems: list[dict[str, object]] | None = None


class Open311Error(BaseModel):
    code: int
    description: str


def _components(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorOut, Open311Error):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _error(path: str) -> dict[str, Any]:
    if path.startswith("/open311/"):
        item = {"$ref": "#/components/schemas/Open311Error"}
        xml = {"schema": {"type": "string"}}
        return {"application/json": {"schema": {"type": "array", "items": item}}, "text/xml": xml}
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


def document_errors(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = _components(spec)
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, text in ERROR_STATUSES.items():
                    responses[str(status)] = {"description": text, "content": _error(path)}
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
