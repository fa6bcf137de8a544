"""Edit-spec files: the MRI's list of fixes to build, as TOML or JSON.

Layout (TOML shown; JSON has the same structure)::

    [defaults]                     # optional; every field of an edit except id, key, source, destination
    lambda = 0.01
    augment = ["a photo of {}", "an image of {}"]
    align = "insert"

    [[edit]]
    id = "square-blue"             # unique; letters, digits, '.', '_' and '-'
    key = "a square should be blue"
    source = "a square"
    destination = "a blue square"
    preserve = ["a circle", "a triangle"]   # optional UCE preservation prompts
    lambda = 0.01                  # optional, >= 0

Unknown fields are rejected so that a misspelt field never silently falls back to a default.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

from protocols.repair.edit import Edit
from protocols.repair.errors import EditSpecError
from protocols.repair.fix import ALIGN_MODES, DEFAULT_AUGMENTATIONS

_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_OPTIONAL = {"preserve", "lambda", "augment", "align", "preserve_unconditional"}
_REQUIRED = {"id", "key", "source", "destination"}


def _text(where: str, name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EditSpecError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")
    return value


def _texts(where: str, name: str, value) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise EditSpecError(f"{where}: field {name!r} must be a list of strings, got {value!r}")
    return tuple(_text(where, name, item) for item in value)


def _lambda(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise EditSpecError(f"{where}: field 'lambda' must be a finite number >= 0, got {value!r}")
    return float(value)


def _optional_fields(where: str, table: dict) -> dict:
    fields = {}
    if "preserve" in table:
        fields["preserve"] = _texts(where, "preserve", table["preserve"])
    if "lambda" in table:
        fields["lam"] = _lambda(where, table["lambda"])
    if "augment" in table:
        templates = _texts(where, "augment", table["augment"])
        for template in templates:
            if template.count("{}") != 1:
                raise EditSpecError(f"{where}: augmentation template {template!r} must contain exactly one '{{}}'")
        fields["augment"] = templates
    if "preserve_unconditional" in table:
        if not isinstance(table["preserve_unconditional"], bool):
            raise EditSpecError(f"{where}: field 'preserve_unconditional' must be true or false")
        fields["preserve_unconditional"] = table["preserve_unconditional"]
    if "align" in table:
        if table["align"] not in ALIGN_MODES:
            raise EditSpecError(f"{where}: field 'align' must be one of {', '.join(ALIGN_MODES)}, got {table['align']!r}")
        fields["align"] = table["align"]
    return fields


def parse_spec(document: dict, source_name: str = "edit spec") -> list[Edit]:
    """Validate a parsed edit-spec document and return its edits in file order."""
    if not isinstance(document, dict):
        raise EditSpecError(f"{source_name}: top level must be a table/object")
    unknown = set(document) - {"defaults", "edit", "encoder"}
    if unknown:
        raise EditSpecError(f"{source_name}: unknown top-level fields {sorted(unknown)}: use 'defaults' and 'edit'")
    defaults_table = document.get("defaults", {})
    if not isinstance(defaults_table, dict):
        raise EditSpecError(f"{source_name}: 'defaults' must be a table")
    unknown = set(defaults_table) - _OPTIONAL
    if unknown:
        raise EditSpecError(f"{source_name}: unknown fields {sorted(unknown)} in defaults: use {sorted(_OPTIONAL)}")
    defaults = {"augment": DEFAULT_AUGMENTATIONS, **_optional_fields(f"{source_name} defaults", defaults_table)}

    tables = document.get("edit")
    if not isinstance(tables, list) or not tables:
        raise EditSpecError(f"{source_name}: no edits: add at least one [[edit]] entry")
    edits: list[Edit] = []
    seen: set[str] = set()
    for number, table in enumerate(tables):
        where = f"{source_name} edit #{number}"
        if not isinstance(table, dict):
            raise EditSpecError(f"{where}: must be a table")
        missing = _REQUIRED - set(table)
        if missing:
            raise EditSpecError(f"{where}: missing fields {sorted(missing)}")
        unknown = set(table) - _REQUIRED - _OPTIONAL
        if unknown:
            raise EditSpecError(f"{where}: unknown fields {sorted(unknown)}: use {sorted(_REQUIRED | _OPTIONAL)}")
        entry_id = _text(where, "id", table["id"])
        if not _ID_PATTERN.match(entry_id):
            raise EditSpecError(f"{where}: id {entry_id!r} must be 1-128 letters, digits, '.', '_' or '-'")
        if entry_id in seen:
            raise EditSpecError(f"{where}: duplicate id {entry_id!r}: ids must be unique")
        seen.add(entry_id)
        fields = {**defaults, **_optional_fields(f"{where} ({entry_id})", table)}
        edits.append(Edit(
            id=entry_id,
            key=_text(where, "key", table["key"]),
            source=_text(where, "source", table["source"]),
            destination=_text(where, "destination", table["destination"]),
            **fields,
        ))
    return edits


def load_spec(path: Path | str) -> list[Edit]:
    """Read and validate an edit-spec file (``.toml`` or ``.json``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"edit spec {path} not found")
    try:
        if path.suffix == ".toml":
            document = tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            document = json.loads(path.read_text())
        else:
            raise EditSpecError(f"edit spec {path} must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EditSpecError(f"edit spec {path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    return parse_spec(document, str(path))
