"""The live events' catalogue as Markdown: docs/protocol.md's server → client tables are generated.

Each stage app lists the frames its sockets send in `<app>/events.py`: a dict from the frame's
`type` to the serializer of its other fields, whose docstring says who gets it and when, and whose
fields' `help_text` explains a value. This module only renders catalogues it is given (it imports no
stage app); the doc names them between markers:

    <!-- events: rooms.events.CLIENT_EVENTS -->
    (generated table)
    <!-- /events -->

`manage.py protocol_doc` rewrites those blocks; tests/test_protocol_doc.py checks they are current.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping

from drf_spectacular.drainage import get_override
from rest_framework import serializers

Catalogue = Mapping[str, type[serializers.BaseSerializer]]

BLOCK = re.compile(r"(<!-- events: (?P<names>[\w. ]+?) -->\n)(?P<body>.*?)(<!-- /events -->)", re.S)


def event_fields(serializer_class: type[serializers.BaseSerializer]) -> dict[str, serializers.Field]:
    """The frame's fields besides `type`, in order."""
    return dict(serializer_class().fields)


def nested_serializer(field) -> tuple[serializers.BaseSerializer | None, bool]:
    """(the serializer a field's value is shaped by, whether it is a list of them), or (None, False)."""
    if isinstance(field, serializers.SerializerMethodField):
        parent = field.parent
        method = getattr(type(parent), field.method_name, None) if parent is not None else None
        field = get_override(method, "field", None) if method is not None else None
        if field is None or isinstance(field, dict):
            return None, False
        if isinstance(field, type):
            field = field()
    if isinstance(field, serializers.ListSerializer):
        return field.child, True
    if isinstance(field, serializers.BaseSerializer):
        return field, False
    if isinstance(field, serializers.ListField) and isinstance(field.child, serializers.BaseSerializer):
        return field.child, True
    return None, False


def required_in_frame(field) -> bool:
    """Whether a frame always carries this field (output fields are present unless marked optional)."""
    return field.read_only or field.required


def _shape(serializer) -> str:
    return "{" + ", ".join(_describe(name, field, top=False) for name, field in serializer.fields.items()) + "}"


def _describe(name: str, field, *, top: bool) -> str:
    text = f"`{name}`" if top else name
    nested, many = nested_serializer(field)
    if nested is not None:
        shape = _shape(nested)
        text += " " + (f"[{shape}]" if many else shape)
        if getattr(field, "allow_null", False):
            text += " or null"
    notes = []
    if not required_in_frame(field):
        notes.append("optional")
    if field.help_text:
        notes.append(str(field.help_text))
    if notes:
        text += f" ({'; '.join(notes)})"
    return text


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def event_row(event_type: str, serializer_class) -> str:
    fields = event_fields(serializer_class)
    described = ", ".join(_describe(name, field, top=True) for name, field in fields.items()) or "(none)"
    return f"| `{event_type}` | {_cell(described)} | {_cell(inspect.getdoc(serializer_class) or '')} |"


def render_events_markdown(*catalogues: Catalogue) -> str:
    """One Markdown table of the events in these catalogues, in their order."""
    lines = ["| type | fields | when, who gets it |", "|---|---|---|"]
    for catalogue in catalogues:
        lines.extend(event_row(event_type, serializer) for event_type, serializer in catalogue.items())
    return "\n".join(lines) + "\n"


def blocks(text: str) -> list[list[str]]:
    """The catalogue names of each generated block in a document, in order."""
    return [match["names"].split() for match in BLOCK.finditer(text)]


def regenerate(text: str, resolve: Callable[[str], Catalogue]) -> str:
    """The document with each generated block rendered afresh; `resolve` turns a name into its catalogue."""

    def render(match: re.Match) -> str:
        catalogues = [resolve(name) for name in match["names"].split()]
        return match.group(1) + render_events_markdown(*catalogues) + "\n" + match.group(4)

    return BLOCK.sub(render, text)
