"""E-mail through Django's configured backend (a file backend under DATA_DIR/mail by default)."""

from __future__ import annotations

import os
import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends import filebased, smtp
from django.core.validators import validate_email

from ..errors import PermanentError, TransientError


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower()


def emails_outside_org(field: str):
    """A `needs_approval` predicate: true when any address in input[field] is outside the org's
    domains (OFFICE_WORKFLOW_ORG_EMAIL_DOMAINS; empty list: every address counts as outside)."""

    def predicate(ctx) -> bool:
        value = ctx.input.get(field) or []
        addresses = [value] if isinstance(value, str) else list(value)
        org = {d.lower() for d in settings.OFFICE_WORKFLOW_ORG_EMAIL_DOMAINS}
        return any(email_domain(a) not in org for a in addresses)

    return predicate


class EmailConnector:
    name = "email"
    transactional = False

    def deliver(self, message: dict, *, idempotency_key: str) -> dict:
        to = message.get("to") or []
        to = [to] if isinstance(to, str) else list(to)
        if not to:
            raise PermanentError("an e-mail needs at least one recipient")
        try:
            for address in to:
                validate_email(address)
        except ValidationError as exc:
            raise PermanentError(f"not an e-mail address: {exc.messages[0]}") from exc
        domain = settings.EMAIL_FROM.rsplit("@", 1)[-1]
        email = EmailMessage(
            subject=str(message.get("subject", ""))[:200], body=str(message.get("body", "")),
            from_email=settings.EMAIL_FROM, to=to,
            # Receivers and mail clients de-duplicate on Message-ID: a resend after a crash is one mail.
            headers={"Message-ID": f"<{idempotency_key}@{domain}>"},
        )
        try:
            sent = get_connection().send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"recipients refused: {sorted(exc.recipients)}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"mail server: {exc}") from exc
        if not sent:
            raise TransientError("the mail backend sent nothing")
        return {"to": to, "message_id": idempotency_key}

    def breaker_name(self, message: dict) -> str:
        return self.name


def email_check() -> str:
    """The synthetic check (docs/adr/0017): open a session the way a send does (connect, TLS, login)
    and say NOOP, without a message. A test mail would land in a real mailbox every hour, and what
    fails on our side of a send (DNS, port, TLS, credentials) fails here the same way."""
    connection = get_connection()
    if isinstance(connection, smtp.EmailBackend):
        where = f"{connection.host}:{connection.port}"
        try:
            connection.open()
            code, _ = connection.connection.noop()
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"{where} refused the login ({exc.smtp_code})") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"{where}: {type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()
        if code != 250:
            raise TransientError(f"{where} answered NOOP with {code}")
        return f"{where} answered NOOP"
    if isinstance(connection, filebased.EmailBackend):
        if not os.access(connection.file_path, os.W_OK):
            raise PermanentError(f"cannot write to {connection.file_path}")
        return f"writes files to {connection.file_path}"
    return f"{type(connection).__module__} has no server to reach"
