"""`{% inbox_bell %}`: the top bar's notification bell, with the unread count rendered on the server
(the page's inbox socket keeps it current; static/automation/inbox.js)."""

from __future__ import annotations

from django import template

from automation.workflows import selectors

register = template.Library()


@register.inclusion_tag("_bell.html", takes_context=True)
def inbox_bell(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"signed_in": False}
    return {"signed_in": True, "unread": selectors.notifications_unread_count(user),
            "csrf_token": context.get("csrf_token")}
