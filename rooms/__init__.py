"""The walkable office, the first stage: maps, rooms and desks, presence and movement (a per-process
hub batching moves, ADR 0001), room and direct chat stored before it is announced (ADR 0002).

Public modules: `services` (writes: visits, chat, map edits), `selectors` (reads, and
`rooms_visible_to` / `room_get_visible`, the one answer to "may this user see this room"),
`serializers` (output shapes), `signals` (what later stages hear: `room_presence_changed`),
`consumers` (the base of the office socket), `protocol` (socket frame validation), `geometry`.
Imports no other stage (docs/adr/0013).
"""
