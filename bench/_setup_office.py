"""Creates the bench office inside a bench stack's database; run by bench/common.py in a subprocess.

Reads a JSON spec on stdin:
    {"members": N, "prefix": "bench",
     "maps": [{"name": ..., "width": W, "height": H, "spawn": [x, y], "desks": [[x, y] or null, ...]}]}
Every map gets one open room covering all of it (and so one room chat thread). `desks[i]` places
member i's desk (their spawn tile on that map). Prints one JSON line on stdout:
    {"maps": [{"id", "room", "thread"}], "members": [{"id", "username", "sessionid"}]}
"""

from __future__ import annotations

import json
import os
import sys
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402

from rooms import services  # noqa: E402
from rooms.models import ChatThread, Desk  # noqa: E402


def member_with_session(username: str, display_name: str) -> dict:
    """A member signed in as a browser would be: the session key is the `sessionid` cookie."""
    # password=None: an unusable password, so no slow password hashing for hundreds of members.
    user = services.member_create(username=username, password=None, display_name=display_name)
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"id": user.id, "username": user.username, "name": display_name, "sessionid": session.session_key,
            "user": user}


def main() -> None:
    spec = json.load(sys.stdin)
    prefix = spec.get("prefix", "bench")
    members = [member_with_session(f"{prefix}{i:04d}", f"Bench {i}") for i in range(spec["members"])]
    maps = []
    for m in spec["maps"]:
        spawn = m.get("spawn") or [m["width"] // 2, m["height"] // 2]
        office_map = services.office_map_create(
            name=m["name"], width=m["width"], height=m["height"], spawn_x=spawn[0], spawn_y=spawn[1]
        )
        room = services.room_create(
            office_map=office_map, name=f"{m['name']} floor", kind="open",
            x=0, y=0, width=m["width"], height=m["height"],
        )
        thread = ChatThread.objects.get(room=room)
        desks = [
            Desk(office_map=office_map, label=f"desk {i}", x=pos[0], y=pos[1], owner=members[i]["user"])
            for i, pos in enumerate(m.get("desks") or [])
            if pos is not None
        ]
        Desk.objects.bulk_create(desks)
        maps.append({"id": office_map.id, "room": room.id, "thread": thread.id})
    for member in members:
        del member["user"]
    sys.stdout.write(json.dumps({"maps": maps, "members": members}) + "\n")


if __name__ == "__main__":
    main()
