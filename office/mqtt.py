"""Where the MQTT broker is and the office's own login to it (shared by the health check and the
sensor ingester)."""

from __future__ import annotations

from urllib.parse import quote, urlparse, urlunparse

from django.conf import settings


def broker_uri() -> str:
    """settings.MQTT_URL with the office's service login (if configured) put in."""
    url = urlparse(settings.MQTT_URL)
    if settings.OFFICE_IOT_MQTT_USERNAME and not url.username:
        auth = quote(settings.OFFICE_IOT_MQTT_USERNAME, safe="")
        if settings.OFFICE_IOT_MQTT_PASSWORD:
            auth += ":" + quote(settings.OFFICE_IOT_MQTT_PASSWORD, safe="")
        url = url._replace(netloc=f"{auth}@{url.hostname}:{url.port or 1883}")
    return urlunparse(url)
