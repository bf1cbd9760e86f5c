"""Admins register sensors and rules here (and through the REST API); both go through the services.

A new sensor's credentials, and rotated ones, are shown once in the admin's message bar.
"""

from django import forms
from django.contrib import admin, messages

from . import selectors, services
from .models import Agenda, RoomBooking, Rule, RuleFiring, RuleState, Sensor, SensorReading


def _show_credentials(request, sensor, creds) -> None:
    messages.warning(
        request,
        f"Credentials for {sensor.device_id} (shown once; store them on the device): "
        f"MQTT topic {selectors.sensor_topic(sensor)}, MQTT username {creds.mqtt_username}, "
        f"MQTT password {creds.mqtt_password}, webhook secret {creds.webhook_secret}",
    )


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    list_display = ["name", "device_id", "kind", "room", "enabled", "last_state", "last_seen_at"]
    list_filter = ["kind", "enabled", "room"]
    search_fields = ["name", "device_id"]
    readonly_fields = ["mqtt_username", "last_state", "last_seen_at", "credentials_rotated_at"]
    actions = ["rotate_credentials"]

    def get_fields(self, request, obj=None):
        fields = ["room", "kind", "name", "device_id", "mqtt_topic", "enabled"]
        return fields + (["mqtt_username", "last_state", "last_seen_at", "credentials_rotated_at"] if obj else [])

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "kind", "device_id"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            services.sensor_update(sensor=obj, **{f: form.cleaned_data[f] for f in form.changed_data
                                                  if f in ("room", "name", "mqtt_topic", "enabled")})
            return
        sensor, creds = services.sensor_create(
            room=obj.room, kind=obj.kind, name=obj.name, device_id=obj.device_id, mqtt_topic=obj.mqtt_topic,
            enabled=obj.enabled,
        )
        obj.pk = sensor.pk
        _show_credentials(request, sensor, creds)

    @admin.action(description="Rotate credentials (the old ones stop working)")
    def rotate_credentials(self, request, queryset):
        for sensor in queryset:
            _show_credentials(request, sensor, services.sensor_credentials_rotate(sensor=sensor))


class RuleAdminForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = ["name", "enabled", "scope", "sensor", "room", "sensor_kind", "field", "op", "value", "for_seconds",
                  "clear_op", "clear_value", "clear_for_seconds", "action", "severity"]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            candidate = Rule(pk=self.instance.pk, **{name: cleaned.get(name) for name in self.Meta.fields})
            services.rule_check(candidate)
        return cleaned


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleAdminForm
    list_display = ["name", "scope", "sensor_kind", "field", "op", "value", "for_seconds", "action", "enabled"]
    list_filter = ["enabled", "action", "sensor_kind"]

    def save_model(self, request, obj, form, change):
        fields = {f: form.cleaned_data[f] for f in RuleAdminForm.Meta.fields}
        if change:
            services.rule_update(rule=obj, **fields)
        else:
            obj.pk = services.rule_create(**fields).pk


@admin.register(RoomBooking)
class RoomBookingAdmin(admin.ModelAdmin):
    list_display = ["title", "room", "organizer", "start", "end"]
    list_filter = ["room"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SensorReading)
class SensorReadingAdmin(ReadOnlyAdmin):
    list_display = ["sensor", "value", "received_at", "measured_at", "source"]
    list_filter = ["source", "sensor__kind"]


@admin.register(RuleState)
class RuleStateAdmin(ReadOnlyAdmin):
    list_display = ["rule", "sensor", "phase", "condition_since", "fired_at", "cleared_since", "due_at"]


@admin.register(RuleFiring)
class RuleFiringAdmin(ReadOnlyAdmin):
    list_display = ["rule", "sensor", "room", "episode_start", "fired_at", "outcome", "ticket_id"]


@admin.register(Agenda)
class AgendaAdmin(ReadOnlyAdmin):
    """Edited by participants in the office (with a version check), so read-only here."""

    list_display = ["title", "room", "starts_at", "version", "edited_by", "posted_at"]
    list_filter = ["room"]
