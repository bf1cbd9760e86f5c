"""The demo office that `make run` loads once: a floor with open space, meeting rooms, a private
room and desks, three members and an admin."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from . import services
from .models import OfficeMap

DEMO_MAP_SLUG = "hq"
DEMO_PEOPLE = [
    # username, display name, admin
    ("alice", "Alice Archer", False),
    ("bob", "Bob Baker", False),
    ("carol", "Carol Chen", False),
    ("dana", "Dana Admin", True),
]


def demo_office_load() -> dict[str, str] | None:
    """Create the demo office if it is not there yet; returns {username: password} when created."""
    if OfficeMap.objects.filter(slug=DEMO_MAP_SLUG).exists():
        return None
    User = get_user_model()
    passwords: dict[str, str] = {}
    with transaction.atomic():
        people = {}
        for username, name, admin in DEMO_PEOPLE:
            existing = User.objects.filter(username=username).first()
            if existing is not None:
                people[username] = existing
                continue
            password = secrets.token_urlsafe(9)
            people[username] = services.member_create(
                username=username, password=password, display_name=name, admin=admin
            )
            passwords[username] = password
        hq = services.office_map_create(name="Headquarters", slug=DEMO_MAP_SLUG, width=64, height=40,
                                        spawn_x=32, spawn_y=34)
        services.room_create(office_map=hq, name="Open space", slug="open-space", kind="open",
                             x=0, y=0, width=64, height=40)
        services.room_create(office_map=hq, name="Atlas", kind="meeting", x=2, y=2, width=12, height=9,
                             doors=[[8, 10]], capacity=8, assistant_enabled=True)
        services.room_create(office_map=hq, name="Borealis", kind="meeting", x=16, y=2, width=12, height=9,
                             doors=[[22, 10]], capacity=8)
        services.room_create(office_map=hq, name="Cosmos", kind="meeting", x=30, y=2, width=14, height=9,
                             doors=[[37, 10]], capacity=12, assistant_enabled=True)
        leadership = services.room_create(office_map=hq, name="Leadership", kind="private", x=48, y=2,
                                          width=14, height=10, doors=[[55, 11]], capacity=6)
        services.room_set_members(room=leadership, user_ids=[people["alice"].id, people["bob"].id,
                                                             people["dana"].id])
        services.room_create(office_map=hq, name="Kitchen", kind="open", x=2, y=28, width=14, height=10)
        desk_owners = [people["alice"], people["bob"], people["carol"], None, None, None, None]
        for index, x in enumerate(range(20, 48, 4)):
            services.desk_create(office_map=hq, label=f"Desk {index + 1}", x=x, y=18, owner=desk_owners[index])
            services.desk_create(office_map=hq, label=f"Desk {index + 8}", x=x, y=22)
    return passwords
