"""Busy times from iCalendar (ICS) data: events (with recurrence rules and exceptions) and VFREEBUSY
periods, expanded into plain UTC intervals inside a window. Plus the one fetch of an http(s) feed."""

from __future__ import annotations

import datetime as dt
import email.utils
import urllib.error
import urllib.request

import icalendar
from dateutil.rrule import rrulestr
from django.conf import settings
from django.utils import timezone

MAX_OCCURRENCES_PER_EVENT = 5000


class CalendarError(Exception):
    """The calendar could not be fetched or read."""


def parse(text: str) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise CalendarError(f"not an iCalendar file ({exc})") from exc
    if calendar.name != "VCALENDAR":
        raise CalendarError("not an iCalendar file (no VCALENDAR)")
    return calendar


def fetch(url: str, *, if_modified_since: dt.datetime | None = None) -> str | None:
    """GET an ICS feed (an admin configured the URL), bounded in time and size. Asked with
    `if_modified_since` (the connector check), a 304 answer returns None: nothing was downloaded."""
    if not url.lower().startswith(("http://", "https://")):
        raise CalendarError("only http(s) feeds are fetched")
    limit = settings.OFFICE_CALENDAR_MAX_BYTES
    headers = {"Accept": "text/calendar", "User-Agent": "office-calendar/1"}
    if if_modified_since is not None:
        headers["If-Modified-Since"] = email.utils.format_datetime(if_modified_since.astimezone(dt.UTC), usegmt=True)
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=settings.OFFICE_CALENDAR_FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and if_modified_since is not None:
            return None
        raise CalendarError(f"could not fetch the feed ({exc})") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise CalendarError(f"could not fetch the feed ({exc})") from exc
    if len(body) > limit:
        raise CalendarError("the feed is larger than OFFICE_CALENDAR_MAX_BYTES")
    return body.decode("utf-8", errors="replace")


def _aware(value) -> dt.datetime:
    """ICS dates are all-day (midnight), naive times are floating (the server's time zone)."""
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, timezone.get_default_timezone())
    return dt.datetime.combine(value, dt.time(0), timezone.get_default_timezone())


def _exdates(component) -> set[dt.datetime]:
    raw = component.get("EXDATE")
    if raw is None:
        return set()
    lists = raw if isinstance(raw, list) else [raw]
    return {_aware(d.dt) for entry in lists for d in entry.dts}


def _event_intervals(event, start: dt.datetime, end: dt.datetime):
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return
    dtstart = event.get("DTSTART")
    if dtstart is None:
        return
    first = dtstart.dt
    all_day = not isinstance(first, dt.datetime)
    if event.get("DTEND") is not None:
        duration = _aware(event.get("DTEND").dt) - _aware(first)
    elif event.get("DURATION") is not None:
        duration = event.get("DURATION").dt
    else:
        duration = dt.timedelta(days=1) if all_day else dt.timedelta(0)
    if duration <= dt.timedelta(0):
        return
    uid = str(event.get("UID", ""))
    rule = event.get("RRULE")
    if rule is None:
        lo = _aware(first)
        if lo < end and lo + duration > start:
            yield max(lo, start), min(lo + duration, end), uid
        return
    # dateutil wants naive datetimes for all-day/floating starts and aware ones otherwise.
    anchor = dt.datetime.combine(first, dt.time(0)) if all_day else first
    try:
        occurrences = rrulestr(rule.to_ical().decode(), dtstart=anchor)
    except (ValueError, TypeError) as exc:
        raise CalendarError(f"bad recurrence rule in event {uid!r} ({exc})") from exc
    skip = _exdates(event)
    lo_bound, hi_bound = start - duration, end
    if timezone.is_naive(anchor):
        tz = timezone.get_default_timezone()
        lo_bound, hi_bound = timezone.make_naive(lo_bound, tz), timezone.make_naive(hi_bound, tz)
    for count, occurrence in enumerate(occurrences.xafter(lo_bound, inc=True)):
        if occurrence > hi_bound or count >= MAX_OCCURRENCES_PER_EVENT:
            break
        lo = _aware(occurrence)
        if lo in skip:
            continue
        if lo < end and lo + duration > start:
            yield max(lo, start), min(lo + duration, end), uid


def _freebusy_intervals(component, start: dt.datetime, end: dt.datetime):
    raw = component.get("FREEBUSY")
    if raw is None:
        return
    entries = raw if isinstance(raw, list) else [raw]
    for entry in entries:
        if str(entry.params.get("FBTYPE", "BUSY")).upper() == "FREE":
            continue
        periods = entry.dts if hasattr(entry, "dts") else [entry]
        for period in periods:
            value = period.dt
            if not isinstance(value, tuple):
                continue
            lo = _aware(value[0])
            hi = lo + value[1] if isinstance(value[1], dt.timedelta) else _aware(value[1])
            if lo < end and hi > start:
                yield max(lo, start), min(hi, end), str(component.get("UID", "freebusy"))


def busy_intervals(text: str, *, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """(start, end, uid) for every busy stretch of the calendar inside [start, end), in UTC."""
    calendar = parse(text)
    found = []
    try:
        for event in calendar.walk("VEVENT"):
            found.extend(_event_intervals(event, start, end))
        for component in calendar.walk("VFREEBUSY"):
            found.extend(_freebusy_intervals(component, start, end))
    except (ValueError, TypeError, AttributeError) as exc:
        raise CalendarError(f"the calendar has an unreadable entry ({exc})") from exc
    utc = dt.UTC
    return sorted((lo.astimezone(utc), hi.astimezone(utc), uid) for lo, hi, uid in found if hi > lo)
