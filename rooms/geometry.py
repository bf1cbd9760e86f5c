"""Tile geometry of an office map: walls, doors, which room a tile is in, whether a step is legal.

Pure and in-memory so the movement path can check every step without touching the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RoomShape:
    id: int
    name: str
    kind: str
    x: int
    y: int
    width: int
    height: int
    doors: frozenset[tuple[int, int]] = frozenset()
    capacity: int | None = None

    @property
    def walled(self) -> bool:
        return self.kind != "open"

    @property
    def private(self) -> bool:
        return self.kind == "private"

    @property
    def area(self) -> int:
        return self.width * self.height

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.width and self.y <= y < self.y + self.height

    def on_edge(self, x: int, y: int) -> bool:
        return self.contains(x, y) and (
            x in (self.x, self.x + self.width - 1) or y in (self.y, self.y + self.height - 1)
        )

    def edge_problems(self) -> list[str]:
        problems = []
        for door in self.doors:
            if not self.on_edge(*door):
                problems.append(f"door {list(door)} is not on the edge of room {self.name!r}")
        if self.walled and (self.width < 3 or self.height < 3):
            problems.append(f"walled room {self.name!r} must be at least 3x3 tiles")
        if self.walled and not self.doors:
            problems.append(f"walled room {self.name!r} needs at least one door")
        return problems


@dataclass
class MapGeometry:
    width: int
    height: int
    spawn: tuple[int, int]
    rooms: list[RoomShape]
    walls: set[tuple[int, int]] = field(init=False)
    _room_of: dict[tuple[int, int], RoomShape] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.walls = set()
        self._room_of = {}
        # Smaller rooms win where areas nest (a meeting room inside an open area).
        for room in sorted(self.rooms, key=lambda r: r.area, reverse=True):
            for tx in range(room.x, min(room.x + room.width, self.width)):
                for ty in range(room.y, min(room.y + room.height, self.height)):
                    self._room_of[(tx, ty)] = room
        for room in self.rooms:
            if not room.walled:
                continue
            for tx in range(room.x, room.x + room.width):
                for ty in (room.y, room.y + room.height - 1):
                    if (tx, ty) not in room.doors:
                        self.walls.add((tx, ty))
            for ty in range(room.y, room.y + room.height):
                for tx in (room.x, room.x + room.width - 1):
                    if (tx, ty) not in room.doors:
                        self.walls.add((tx, ty))

    def in_bounds(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height

    def passable(self, x: int, y: int) -> bool:
        return self.in_bounds(x, y) and (x, y) not in self.walls

    def room_at(self, x: int, y: int) -> RoomShape | None:
        return self._room_of.get((x, y))

    def room(self, room_id: int) -> RoomShape | None:
        for room in self.rooms:
            if room.id == room_id:
                return room
        return None

    def step_problem(self, start: tuple[int, int], end: tuple[int, int]) -> str | None:
        """Why a single step is illegal, or None. Steps are one tile, diagonals may not cut corners."""
        (x0, y0), (x1, y1) = start, end
        if not self.in_bounds(x1, y1):
            return "outside the map"
        if max(abs(x1 - x0), abs(y1 - y0)) > 1:
            return "too far in one step"
        if (x1, y1) in self.walls:
            return "a wall is in the way"
        if x1 != x0 and y1 != y0 and ((x1, y0) in self.walls or (x0, y1) in self.walls):
            return "cannot cut a wall corner"
        return None

    def entry_problem(self, room: RoomShape | None, *, from_room_id: int | None, member_of: set[int],
                      occupancy: Callable[[int], int]) -> str | None:
        """Why a member may not step into `room` from the room they are in, or None: private rooms
        admit their members only, and a full room admits no one more."""
        if room is None or room.id == from_room_id:
            return None
        if room.private and room.id not in member_of:
            return f"{room.name} is private: members only"
        if room.capacity is not None and occupancy(room.id) >= room.capacity:
            return f"{room.name} is full ({room.capacity} people)"
        return None

    def at_door_of(self, room: RoomShape, x: int, y: int) -> bool:
        """Whether (x, y) is outside `room` and next to one of its doors: where a knock is heard."""
        return not room.contains(x, y) and any(max(abs(x - dx), abs(y - dy)) <= 1 for dx, dy in room.doors)

    def nearest_free_tile(self, x: int, y: int) -> tuple[int, int]:
        """The passable tile closest to (x, y), for spawning on a map whose layout changed."""
        if self.passable(x, y):
            return (x, y)
        for radius in range(1, max(self.width, self.height)):
            for dx in range(-radius, radius + 1):
                for dy in range(-radius, radius + 1):
                    if self.passable(x + dx, y + dy):
                        return (x + dx, y + dy)
        return self.spawn


def overlapping_walled_rooms(rooms: list[RoomShape]) -> list[tuple[RoomShape, RoomShape]]:
    walled = [r for r in rooms if r.walled]
    pairs = []
    for i, a in enumerate(walled):
        for b in walled[i + 1:]:
            if a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height:
                pairs.append((a, b))
    return pairs
