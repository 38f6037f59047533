"""The stream schemas: JSON files in ``schemas/``, plus the campaign's custom contact fields.

An installed wheel carries the files as ``tap_dialfire/schemas`` (pyproject force-includes the
top-level folder); a source checkout reads the repository's ``schemas/``.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tap_dialfire.rows import BOOKKEEPING_COLUMNS, Kind

STREAM_NAMES = ("contacts", "transactions", "connections", "recordings", "inbound_calls")

_JSON_TYPES: Mapping[Kind, dict[str, Any]] = {
    "number": {"type": ["number", "null"]},
    "string": {"type": ["string", "null"]},
}


def _schema_text(stream: str) -> str:
    packaged = importlib.resources.files("tap_dialfire").joinpath("schemas", f"{stream}.json")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    repository = Path(__file__).resolve().parent.parent / "schemas" / f"{stream}.json"
    if repository.is_file():
        return repository.read_text(encoding="utf-8")
    msg = f"The schema file for stream {stream!r} is missing from the installation."
    raise FileNotFoundError(msg)


@functools.cache
def _base_schema(stream: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_schema_text(stream))
    return loaded


def base_schema(stream: str) -> dict[str, Any]:
    """A fresh copy of a stream's schema file."""
    return copy.deepcopy(_base_schema(stream))


def contacts_schema(custom: Mapping[str, Kind]) -> dict[str, Any]:
    """The contacts schema with one column per custom field, before ``$extra``/``$changed``."""
    return with_custom_fields(base_schema("contacts"), custom)


def with_custom_fields(schema: Mapping[str, Any], custom: Mapping[str, Kind]) -> dict[str, Any]:
    """A copy of a contacts schema with the custom fields it lacks added (existing ones kept)."""
    result: dict[str, Any] = copy.deepcopy(dict(schema))
    properties: dict[str, Any] = result.setdefault("properties", {})
    tail = {name: properties.pop(name) for name in BOOKKEEPING_COLUMNS if name in properties}
    for name, kind in custom.items():
        if name not in properties:
            properties[name] = dict(_JSON_TYPES.get(kind, _JSON_TYPES["string"]))
    properties.update(tail)
    return result
