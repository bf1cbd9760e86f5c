"""The walkable office: map, rooms, presence, movement and chat."""
