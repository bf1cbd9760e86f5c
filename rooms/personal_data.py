"""Retention, export and erasure of personal data. Rooms runs each of them and deletes its own
records (chat, visits, memberships); later stages do theirs through the signals in `rooms.signals`,
so this module never learns what they store."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from . import selectors, signals
from .models import (
    Announcement,
    ApiToken,
    ChatMessage,
    ChatReadState,
    Desk,
    Profile,
    RoomGuestPass,
    RoomKnock,
    RoomMembership,
    RoomVisit,
)
from .services import SYSTEM_USERNAME

logger = logging.getLogger(__name__)
User = get_user_model()

ERASED_NAME = "Erased member"


def _merge_counts(responses, into: dict[str, int]) -> dict[str, int]:
    for _receiver, counts in responses:
        for name, count in (counts or {}).items():
            into[name] = into.get(name, 0) + count
    return into


def retention_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Delete every record past its room's retention (chat here, the rest by each stage), then what
    was derived from it; the counts are logged and audited."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    expired = selectors.expired_records_filter("chat", now=now, room_field="thread__room")
    if expired is not None:
        counts["chat_messages"], _ = ChatMessage.objects.filter(expired).delete()
    # The megaphone's messages (and their voice clips) are chat of a kind: they follow the chat policy.
    expired = selectors.expired_records_filter("chat", now=now)
    if expired is not None:
        counts["announcements"], _ = Announcement.objects.filter(expired).delete()
        counts["knocks"], _ = RoomKnock.objects.filter(expired).delete()
        counts["guest_passes"], _ = RoomGuestPass.objects.filter(expired, expires_at__lt=now).delete()
    _merge_counts(signals.records_expire.send(sender=None, now=now), counts)
    _merge_counts(signals.records_removed.send(sender=None), counts)
    counts = {name: count for name, count in counts.items() if count}
    logger.info("retention sweep deleted %s", counts or "nothing")
    signals.personal_data_handled.send(sender=None, action="expired", user=None, actor="retention", counts=counts)
    return counts


def _check_erasable(*, person, actor, reassign_to) -> None:
    if not getattr(actor, "is_staff", False):
        raise PermissionDenied("only an admin can erase a person")
    if person.pk == actor.pk:
        raise ValidationError("you cannot erase yourself; ask another admin")
    if not person.is_active and person.username.startswith("erased-"):
        raise ValidationError("this person is already erased")
    if person.get_username() == SYSTEM_USERNAME:
        raise ValidationError("the office's own account cannot be erased")
    if reassign_to is not None and (reassign_to.pk == person.pk or not reassign_to.is_active):
        raise ValidationError("reassign_to must be another active member")


def person_erase(*, person, actor, reassign_to=None) -> dict[str, int]:
    """Erase a person: what they said and wrote goes, every stage's records of them go or are
    re-assigned (tasks to `reassign_to`, else unowned), and the account is kept only as an anonymous,
    inactive row, so shared records (documents they uploaded, audit entries) keep a valid owner.
    One transaction: nobody is left half erased."""
    _check_erasable(person=person, actor=actor, reassign_to=reassign_to)
    counts: dict[str, int] = {}
    with transaction.atomic():
        person = User.objects.select_for_update().get(pk=person.pk)
        _merge_counts(signals.person_erasing.send(sender=None, user=person, actor=actor, reassign_to=reassign_to), counts)
        counts["chat_messages"], _ = ChatMessage.objects.filter(author=person).delete()
        ChatReadState.objects.filter(user=person).delete()
        counts["room_visits"], _ = RoomVisit.objects.filter(user=person).delete()
        counts["room_memberships"], _ = RoomMembership.objects.filter(user=person).delete()
        counts["announcements"], _ = Announcement.objects.filter(author=person).delete()  # their words and voice
        counts["knocks"], _ = RoomKnock.objects.filter(user=person).delete()
        counts["guest_passes"], _ = RoomGuestPass.objects.filter(user=person).delete()
        Desk.objects.filter(owner=person).update(owner=None)
        ApiToken.objects.filter(user=person, revoked_at__isnull=True).update(revoked_at=timezone.now())
        former_username = person.username
        person.username, person.email = f"erased-{person.pk}", ""
        person.first_name = person.last_name = ""
        person.is_active = person.is_staff = person.is_superuser = False
        person.set_unusable_password()
        person.save()
        # a later single sign-on by the same provider account makes a new member, not this one again
        Profile.objects.filter(user=person).update(display_name=ERASED_NAME, oidc_subject=None)
        _merge_counts(signals.records_removed.send(sender=None), counts)
        counts = {name: count for name, count in counts.items() if count}
        signals.personal_data_handled.send(sender=None, action="erased", user=person, actor=actor, counts=counts)
    _sessions_end(person.pk)
    logger.info("erased member %s (was %s) at the request of %s: %s", person.pk, former_username,
                actor.get_username(), counts)
    return counts


def _sessions_end(user_id: int) -> None:
    """Sign the erased person out everywhere (an inactive account is refused anyway; this frees the rows)."""
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            session.delete()


def person_export(*, user) -> bytes:
    """Everything Office holds about `user`: a zip with `office-data.json` (every stage's sections)
    and the text files stages add (their words in each meeting, as a transcript)."""
    data = {"exported_at": timezone.now().isoformat(), **selectors.personal_data_of(user)}
    files: dict[str, str] = {}
    for _receiver, sections in signals.person_exporting.send(sender=None, user=user):
        sections = dict(sections or {})
        files.update(sections.pop("files", {}))
        data.update(sections)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("office-data.json", json.dumps(data, indent=2, ensure_ascii=False))
        for path, text in sorted(files.items()):
            archive.writestr(path, text)
    signals.personal_data_handled.send(sender=None, action="exported", user=user, actor=user,
                                       counts={"files": len(files) + 1})
    return buffer.getvalue()
