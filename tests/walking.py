"""Walking a test socket somewhere on the `office` fixture's map."""

from __future__ import annotations

import asyncio

# From the open space through Atlas's door to inside it (the meeting room with the assistant).
INTO_ATLAS = [(9, 14), (8, 13), (7, 12), (6, 11), (6, 10), (6, 9), (6, 8), (6, 7), (6, 6), (6, 5)]


async def walk_into_atlas(socket) -> dict:
    """Step in at walking pace; returns the room's meeting as the socket is told of it."""
    for seq, (x, y) in enumerate(INTO_ATLAS, start=1):
        await socket.send({"type": "move", "x": x, "y": y, "seq": seq})
        await asyncio.sleep(0.2)
    return (await socket.wait_for("meeting.state", timeout=5))["meeting"]
