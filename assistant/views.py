from django.http import Http404
from django.shortcuts import render

from .models import DocumentPage
from .selectors import documents_visible_to


def document_page(request, document_id: int):
    """A document's extracted pages, so a citation can point at the exact page."""
    document = documents_visible_to(request.user).filter(pk=document_id).select_related("room").first()
    if document is None:
        raise Http404("no such document")
    pages = DocumentPage.objects.filter(document=document).order_by("number")
    return render(request, "assistant/document.html", {"document": document, "pages": pages,
                                                       "highlight": request.GET.get("page", "")})
