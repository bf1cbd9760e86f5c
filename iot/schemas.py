"""What a sensor may send: one JSON schema per kind, checked before anything is stored.

A message is a JSON object with the kind's fields, plus optional `measured_at` (ISO 8601, the
device's clock) and `id` (the device's message id; a redelivered message with the same id is
stored once).
"""

from __future__ import annotations

from jsonschema import Draft202012Validator

_ENVELOPE = {
    "measured_at": {"type": "string", "format": "date-time", "maxLength": 40},
    "id": {"type": "string", "minLength": 1, "maxLength": 64},
}


def _schema(fields: dict, *, required: list[str] | None = None, any_of: list[dict] | None = None) -> dict:
    schema = {
        "type": "object",
        "properties": {**fields, **_ENVELOPE},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    if any_of:
        schema["anyOf"] = any_of
    return schema


READING_SCHEMAS: dict[str, dict] = {
    "occupancy": _schema(
        {"count": {"type": "integer", "minimum": 0, "maximum": 10000}, "present": {"type": "boolean"}},
        any_of=[{"required": ["count"]}, {"required": ["present"]}],
    ),
    "projector": _schema({"state": {"enum": ["on", "off", "offline", "error"]}}, required=["state"]),
    "temperature": _schema({"celsius": {"type": "number", "minimum": -60, "maximum": 100}}, required=["celsius"]),
    "door": _schema({"state": {"enum": ["open", "closed"]}}, required=["state"]),
}

VALIDATORS = {kind: Draft202012Validator(schema) for kind, schema in READING_SCHEMAS.items()}

# The field a rule reads by default, per kind (what the sensors page charts).
PRIMARY_FIELD = {"occupancy": "count", "projector": "state", "temperature": "celsius", "door": "state"}


def reading_problems(kind: str, value) -> list[str]:
    """Human-readable reasons this value is not a valid reading of `kind` (empty: valid)."""
    validator = VALIDATORS.get(kind)
    if validator is None:
        return [f"unknown sensor kind {kind!r}"]
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.path)
        problems.append(f"{where}: {error.message}" if where else error.message)
    return problems[:5]


def reading_field(kind: str, value: dict, field: str):
    """A field of a reading; an occupancy sensor that only says present/absent counts as 1 or 0."""
    if kind == "occupancy" and field == "count" and "count" not in value and "present" in value:
        return 1 if value["present"] else 0
    return value.get(field)
