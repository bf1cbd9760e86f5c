"""The rules every office starts with (admins may edit or disable them); same as iot.services.BUILTIN_RULES."""

from django.db import migrations

BUILTIN_RULES = [
    {
        "builtin_key": "projector-failure", "name": "Projector offline or failing",
        "scope": "kind", "sensor_kind": "projector", "field": "state",
        "op": "in", "value": ["offline", "error"], "for_seconds": 120,
        "clear_op": "in", "clear_value": ["on", "off"], "clear_for_seconds": 120,
        "action": "facilities_ticket", "severity": "high",
    },
    {
        "builtin_key": "booked-room-empty", "name": "Booked room empty for 10 minutes",
        "scope": "kind", "sensor_kind": "occupancy", "field": "count",
        "op": "eq", "value": 0, "for_seconds": 600,
        "clear_op": "gt", "clear_value": 0, "clear_for_seconds": 60,
        "action": "suggest_room", "severity": "low",
    },
    {
        "builtin_key": "booked-room-over-capacity", "name": "Booked room over capacity",
        "scope": "kind", "sensor_kind": "occupancy", "field": "count",
        "op": "over_capacity", "value": None, "for_seconds": 60,
        "clear_op": "", "clear_value": None, "clear_for_seconds": 120,
        "action": "suggest_room", "severity": "low",
    },
]


def create_builtin_rules(apps, schema_editor):
    Rule = apps.get_model("iot", "Rule")
    for spec in BUILTIN_RULES:
        Rule.objects.get_or_create(builtin_key=spec["builtin_key"], defaults=spec)


class Migration(migrations.Migration):
    dependencies = [("iot", "0001_initial")]

    operations = [migrations.RunPython(create_builtin_rules, migrations.RunPython.noop)]
