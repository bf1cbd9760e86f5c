"""Per-device credentials: an MQTT login (password hashed, for brokers that check it) and an HMAC
secret for webhooks (encrypted at rest, since verifying a signature needs the secret itself).

Plain values exist only in the return value of `device_credentials_new`: they are shown once and
never logged.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password


@dataclass(frozen=True)
class DeviceCredentials:
    mqtt_username: str
    mqtt_password: str
    webhook_secret: str

    def __repr__(self) -> str:  # never print secrets by accident
        return f"DeviceCredentials(mqtt_username={self.mqtt_username!r}, ...)"


def _fernet() -> Fernet:
    material = settings.OFFICE_IOT_SECRETS_KEY or f"iot-device-secrets:{settings.SECRET_KEY}"
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))


def device_credentials_new(device_id: str) -> DeviceCredentials:
    return DeviceCredentials(
        mqtt_username=f"sensor-{device_id}",
        mqtt_password=secrets.token_urlsafe(24),
        webhook_secret=secrets.token_urlsafe(32),
    )


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str | None:
    """The plain secret, or None if it was encrypted under another key (rotate it)."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def mqtt_password_hash(password: str) -> str:
    return make_password(password)


def mqtt_password_ok(password: str, hashed: str) -> bool:
    return check_password(password, hashed)
