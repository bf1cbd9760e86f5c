"""Shared by the iot service modules: the sensors page's channel group and the row-locked update."""

from __future__ import annotations

SENSORS_GROUP = "iot.sensors"  # the sensors page listens here (filtered per member by the consumer)


def _locked_update(instance, fields: dict, check):
    """Re-read `instance` under a row lock, apply `fields`, validate with `check`, save; inside the
    caller's transaction, so two admins editing at once cannot interleave."""
    instance = type(instance).objects.select_for_update().get(pk=instance.pk)
    for key, value in fields.items():
        setattr(instance, key, value)
    check(instance)
    instance.save()
    return instance
