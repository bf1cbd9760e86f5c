from django.http import Http404
from django.shortcuts import render

from . import selectors


def meeting_page(request, meeting_id: int):
    """The whole transcript of a meeting, searchable (rendered by static/office/meeting-page.js)."""
    meeting = selectors.meeting_for_user(request.user, meeting_id)
    if meeting is None:
        raise Http404("no such meeting")
    return render(request, "transcription/meeting.html", {
        "meeting": meeting, "consent_changes": selectors.consent_changes_of(meeting),
    })
