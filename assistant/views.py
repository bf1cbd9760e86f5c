from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from rooms.selectors import rooms_visible_to

from . import archive
from .models import DocumentPage
from .selectors import documents_visible_to
from .serializers import ArchiveQueryIn

ARCHIVE_PAGE_SIZE = 25


def _length_label(meeting) -> str:
    """"1 h 05 min", "12 min"; empty while the meeting is still going."""
    if meeting.ended_at is None:
        return ""
    minutes = max(1, round((meeting.ended_at - meeting.started_at).total_seconds() / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def meetings_archive_page(request):
    """Every meeting you may read, newest first, with filters and one search box over transcripts,
    notes and room chat. Bad filters are named on the page (400), never ignored silently."""
    query = ArchiveQueryIn(data=request.GET)
    valid = query.is_valid()
    data = query.validated_data if valid else {"q": "", "room": None, "person": None, "since": None, "until": None}
    filters = archive.archive_filters(data)
    meetings = Paginator(archive.meetings_archive(user=request.user, filters=filters), ARCHIVE_PAGE_SIZE)
    page = meetings.get_page(request.GET.get("page"))
    people = archive.meeting_people([m.pk for m in page.object_list])
    for meeting in page.object_list:
        meeting.people = people.get(meeting.pk, [])
        meeting.length_label = _length_label(meeting)
    results = archive.meetings_search(user=request.user, text=data["q"], filters=filters) if data["q"].strip() else None
    return render(request, "assistant/meetings.html", {
        "page": page, "results": results, "filters": data, "errors": query.errors if not valid else {},
        "rooms": rooms_visible_to(request.user).order_by("name"),
        "people": get_user_model().objects.filter(is_active=True, profile__isnull=False)
        .select_related("profile").order_by("profile__display_name"),
    }, status=200 if valid else 400)


def document_page(request, document_id: int):
    """A document's extracted pages, so a citation can point at the exact page."""
    document = documents_visible_to(request.user).filter(pk=document_id).select_related("room").first()
    if document is None:
        raise Http404("no such document")
    pages = DocumentPage.objects.filter(document=document).order_by("number")
    return render(request, "assistant/document.html", {"document": document, "pages": pages,
                                                       "highlight": request.GET.get("page", "")})
