"""Output fields the apps' serializers share. They render a value exactly as the payloads always
have (REST bodies, live events through msgpack, JSON audit snapshots): times as `isoformat()`,
numbers and stored JSON as they are."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class IsoDateTimeField(serializers.DateTimeField):
    """`value.isoformat()`: the offset as stored (`+00:00`, never `Z`), no time zone conversion."""

    def to_representation(self, value):
        return value.isoformat()


class IsoDateField(serializers.DateField):
    """`value.isoformat()` (YYYY-MM-DD)."""

    def to_representation(self, value):
        return value.isoformat()


class NumberField(serializers.FloatField):
    """A number as it is held (an int stays an int, as in the payloads)."""

    def to_representation(self, value):
        return value


class RoundedNumberField(NumberField):
    """`round(value, digits)`."""

    def __init__(self, *, digits: int, **kwargs):
        self.digits = digits
        super().__init__(**kwargs)

    def to_representation(self, value):
        return round(value, self.digits)


class BlankAsNullCharField(serializers.CharField):
    """Text stored blank when absent, sent as null."""

    def to_representation(self, value):
        return value or None


@extend_schema_field({"type": "object", "additionalProperties": {}})
class JsonObjectField(serializers.JSONField):
    """A stored JSON object, sent as stored."""


@extend_schema_field({"type": "array", "items": {}})
class JsonListField(serializers.JSONField):
    """A stored JSON list, sent as stored."""
