"""Open311 GeoReport v2 in XML, the format the specification requires (JSON is the optional one):
the same documents as the JSON endpoints, element names as the specification's examples have them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from pydantic import BaseModel

MEDIA_TYPE = "text/xml; charset=utf-8"
# A list element's items: <endpoints><endpoint/>…, <formats><format/>…
ITEMS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _fill(element: Element, value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        for key, child in value.items():
            _fill(SubElement(element, key), child)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        item = ITEMS.get(element.tag, "item")
        for child in value:
            _fill(SubElement(element, item), child)
    else:
        element.text = _text(value)


def document(root: str, item: str | None, content: Any) -> bytes:
    """`content` under `<root>`: a list as `<item>` children, a mapping as named children."""
    element = Element(root)
    if item is not None:
        for entry in content:
            _fill(SubElement(element, item), entry)
    else:
        _fill(element, content)
    return tostring(element, encoding="utf-8", xml_declaration=True)


def errors(status_code: int, description: str) -> bytes:
    return document("errors", "error", [{"code": status_code, "description": description}])
