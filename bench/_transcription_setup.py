"""Creates the transcription bench office inside a bench stack's database; run by bench/transcription.py.

Reads a JSON spec on stdin: {"members": N, "prefix": "speaker"}. Builds, through rooms.services,
the same small floor the tests use (tests/conftest.py `office`): a 40x24 map, spawn (10, 15), one
open room covering it and the meeting room "Atlas" at (2, 1) 9x6 with its door at (6, 6) and the
assistant on. Members get a session each (made with the session store). Prints one JSON line:
    {"map": id, "atlas": room id, "members": [{"id", "username", "name", "sessionid"}]}
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "office.settings")

import django  # noqa: E402

django.setup()


from _setup_office import member_with_session  # noqa: E402  (same folder)

from rooms import services  # noqa: E402


def main() -> None:
    spec = json.load(sys.stdin)
    prefix = spec.get("prefix", "speaker")
    members = []
    for i in range(spec["members"]):
        member = member_with_session(f"{prefix}{i}", f"Speaker {chr(ord('A') + i)}")
        del member["user"]
        members.append(member)
    hq = services.office_map_create(name="Transcription bench", slug="transcription-bench", width=40, height=24,
                                    spawn_x=10, spawn_y=15)
    services.room_create(office_map=hq, name="Open space", kind="open", x=0, y=0, width=40, height=24)
    atlas = services.room_create(office_map=hq, name="Atlas", kind="meeting", x=2, y=1, width=9, height=6,
                                 doors=[[6, 6]], capacity=8, assistant_enabled=True)
    sys.stdout.write(json.dumps({"map": hq.id, "atlas": atlas.id, "members": members}) + "\n")


if __name__ == "__main__":
    main()
