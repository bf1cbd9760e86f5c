"""Sensor registration, edits, deletion and credential rotation (MQTT password, webhook secret)."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rooms.models import Room

from ..credentials import DeviceCredentials, device_credentials_new, mqtt_password_hash, secret_encrypt
from ..models import Sensor
from .common import _locked_update

logger = logging.getLogger(__name__)


def _clean_sensor(sensor: Sensor) -> None:
    if sensor.mqtt_topic:
        if any(ch in sensor.mqtt_topic for ch in "+#") or sensor.mqtt_topic.startswith("$"):
            raise ValidationError("mqtt_topic must be a plain topic (no wildcards, not $SYS)")
    sensor.full_clean(exclude=["mqtt_password_hash", "webhook_secret_encrypted"])


def sensor_create(*, room: Room | None, kind: str, name: str, device_id: str, mqtt_topic: str = "",
                  enabled: bool = True) -> tuple[Sensor, DeviceCredentials]:
    """Register a sensor; the returned credentials are the only time its secrets are readable."""
    creds = device_credentials_new(device_id)
    sensor = Sensor(
        room=room, kind=kind, name=name, device_id=device_id, mqtt_topic=mqtt_topic, enabled=enabled,
        mqtt_username=creds.mqtt_username, mqtt_password_hash=mqtt_password_hash(creds.mqtt_password),
        webhook_secret_encrypted=secret_encrypt(creds.webhook_secret),
    )
    _clean_sensor(sensor)
    sensor.save()
    return sensor, creds


def sensor_update(*, sensor: Sensor, **fields) -> Sensor:
    allowed = {"room", "name", "mqtt_topic", "enabled"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))}")
    with transaction.atomic():
        return _locked_update(sensor, fields, _clean_sensor)


def sensor_credentials_rotate(*, sensor: Sensor) -> DeviceCredentials:
    """New MQTT password and webhook secret; the old ones stop working at once."""
    creds = device_credentials_new(sensor.device_id)
    Sensor.objects.filter(pk=sensor.pk).update(
        mqtt_username=creds.mqtt_username,
        mqtt_password_hash=mqtt_password_hash(creds.mqtt_password),
        webhook_secret_encrypted=secret_encrypt(creds.webhook_secret),
        credentials_rotated_at=timezone.now(),
    )
    logger.info("credentials rotated for sensor %s", sensor.device_id)
    return creds


def sensor_delete(*, sensor: Sensor) -> None:
    sensor.delete()
