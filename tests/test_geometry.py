from rooms.geometry import MapGeometry, RoomShape


def build():
    meeting = RoomShape(id=2, name="Atlas", kind="meeting", x=2, y=1, width=5, height=4, doors=frozenset({(4, 4)}))
    open_space = RoomShape(id=1, name="Open", kind="open", x=0, y=0, width=20, height=10)
    return MapGeometry(width=20, height=10, spawn=(10, 8), rooms=[open_space, meeting])


def test_walls_are_the_edge_of_walled_rooms_except_doors():
    # given a meeting room with one door on its bottom edge
    geometry = build()
    # then the edge is wall, the door and the inside are free, open areas have no walls
    assert (2, 1) in geometry.walls and (6, 4) in geometry.walls
    assert (4, 4) not in geometry.walls
    assert geometry.passable(4, 2)
    assert not any(geometry.room_at(*w).kind == "open" for w in geometry.walls)


def test_smallest_room_wins_where_rooms_nest():
    geometry = build()
    assert geometry.room_at(4, 2).name == "Atlas"
    assert geometry.room_at(4, 4).name == "Atlas"  # the door belongs to the room
    assert geometry.room_at(12, 8).name == "Open"


def test_step_rules():
    geometry = build()
    assert geometry.step_problem((4, 5), (4, 4)) is None  # through the door
    assert geometry.step_problem((3, 5), (3, 4)) == "a wall is in the way"
    assert geometry.step_problem((4, 5), (4, 3)) == "too far in one step"
    assert geometry.step_problem((0, 0), (-1, 0)) == "outside the map"
    # diagonal from the door tile's outside neighbour into the room would cut a wall corner
    assert geometry.step_problem((5, 5), (4, 4)) == "cannot cut a wall corner"


def test_nearest_free_tile_skips_walls():
    geometry = build()
    assert geometry.nearest_free_tile(2, 1) != (2, 1)
    assert geometry.passable(*geometry.nearest_free_tile(2, 1))


def test_entry_rules_for_private_and_full_rooms():
    vault = RoomShape(id=3, name="Vault", kind="private", x=8, y=1, width=5, height=4, doors=frozenset({(10, 4)}))
    atlas = RoomShape(id=2, name="Atlas", kind="meeting", x=2, y=1, width=5, height=4, doors=frozenset({(4, 4)}),
                      capacity=2)
    geometry = MapGeometry(width=20, height=10, spawn=(10, 8), rooms=[vault, atlas])
    nobody = lambda room_id: 0  # noqa: E731
    assert geometry.entry_problem(vault, from_room_id=None, member_of=set(), occupancy=nobody) == \
        "Vault is private: members only"
    assert geometry.entry_problem(vault, from_room_id=None, member_of={3}, occupancy=nobody) is None
    assert geometry.entry_problem(atlas, from_room_id=None, member_of=set(), occupancy=lambda r: 2) == \
        "Atlas is full (2 people)"
    assert geometry.entry_problem(atlas, from_room_id=2, member_of=set(), occupancy=lambda r: 2) is None  # already in
