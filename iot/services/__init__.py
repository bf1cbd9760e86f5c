"""Writes for sensors, readings, rules and bookings: `sensors` (registration, credentials), `readings`
(MQTT and webhook readings: validate, store, announce), `rule_config` (rule CRUD, built-in rules), `firing`
(rule timers, evaluation, firing once per episode), `bookings` (room bookings), `agendas` (the agendas of
booked meetings: drafted, posted once, edited with a version check); `common` holds what
they share (the sensors page's group, the row-locked update). Callers import from `iot.services`.
"""

from .agendas import agenda_items_clean, agenda_post_for_booking, agenda_update, agendas_post_due
from .bookings import booking_create, booking_delete
from .common import SENSORS_GROUP
from .firing import RETRY_BROKEN_RULE_SECONDS, rule_states_fire, rules_fire_due
from .readings import (
    IngestResult,
    ReadingRejected,
    mqtt_message_ingest,
    reading_ingest,
    webhook_ingest,
    webhook_signature,
)
from .rule_config import (
    BUILTIN_RULES,
    builtin_rules_ensure,
    rule_check,
    rule_create,
    rule_delete,
    rule_update,
)
from .sensors import sensor_create, sensor_credentials_rotate, sensor_delete, sensor_update

__all__ = [
    "BUILTIN_RULES",
    "RETRY_BROKEN_RULE_SECONDS",
    "SENSORS_GROUP",
    "IngestResult",
    "ReadingRejected",
    "agenda_items_clean",
    "agenda_post_for_booking",
    "agenda_update",
    "agendas_post_due",
    "booking_create",
    "booking_delete",
    "builtin_rules_ensure",
    "mqtt_message_ingest",
    "reading_ingest",
    "rule_check",
    "rule_create",
    "rule_delete",
    "rule_states_fire",
    "rule_update",
    "rules_fire_due",
    "sensor_create",
    "sensor_credentials_rotate",
    "sensor_delete",
    "sensor_update",
    "webhook_ingest",
    "webhook_signature",
]
