"""The top bar links every page to the others and marks the one you are on (templates/_nav.html)."""

from __future__ import annotations

import re

import pytest

PAGES = {
    "/": "Office", "/meetings/": "Meetings", "/topics/": "Topics", "/tasks/": "Tasks", "/tickets/": "Tickets", "/workflows/": "Workflows",
    "/workflows/approvals/": "Approvals", "/sensors/": "Sensors", "/outcomes/": "Outcomes",
    "/notifications/": "Notifications",
    "/settings/tokens/": "API tokens",
}


def nav_links(html: str) -> dict[str, str]:
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S).group(0)
    return {text: href for href, text in re.findall(r'<a [^>]*href="([^"]+)"[^>]*>([^<]+)</a>', nav)}


def current(html: str) -> list[str]:
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S).group(0)
    return re.findall(r'<a [^>]*aria-current="page"[^>]*>([^<]+)</a>', nav)


@pytest.mark.parametrize("path", list(PAGES))
def test_an_admin_sees_every_link_and_the_current_page_marked(path, office, people, client_of):
    # given dana (admin) when she opens the page
    response = client_of(people["dana"]).get(path, follow=True)
    # then the top bar links all pages and the admin, and marks this page only
    assert response.status_code == 200
    html = response.content.decode()
    assert nav_links(html) == {**{text: href for href, text in PAGES.items()}, "Admin": "/admin/"}
    assert current(html) == [PAGES[path]]


def test_a_member_gets_no_admin_only_links(office, people, client_of):
    # given bob, a member, on the sensors page
    html = client_of(people["bob"]).get("/sensors/").content.decode()
    # then the admin-only pages are not offered to him
    assert set(nav_links(html)) == {"Office", "Meetings", "Topics", "Tasks", "Tickets", "Approvals", "Sensors", "Notifications", "API tokens"}
    # and every link he is offered opens for him
    for href in nav_links(html).values():
        assert client_of(people["bob"]).get(href, follow=True).status_code == 200, href
