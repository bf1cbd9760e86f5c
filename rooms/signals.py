"""What rooms tell later stages (docs/adr/0013). They connect in their `AppConfig.ready()`; this
app never imports them.

- `room_presence_changed(user, left_room_id, entered_room_id)`: sent INSIDE the transaction that
  records a member's room visit, so what a receiver writes (transcription starts, joins and ends
  meetings) commits together with the visit. A receiver's exception rolls the move back.
"""

from django.dispatch import Signal

room_presence_changed = Signal()
