"""What rooms tell later stages (docs/adr/0013). They connect in their `AppConfig.ready()`; this
app never imports them.

- `room_presence_changed(user, left_room_id, entered_room_id)`: sent INSIDE the transaction that
  records a member's room visit, so what a receiver writes (transcription starts, joins and ends
  meetings) commits together with the visit. A receiver's exception rolls the move back.
- `chat_message_sent(message)`: sent INSIDE the transaction that stores a new chat message (never for
  a retried `client_id`, which stores nothing), so what a receiver writes (notifications for the
  people it @mentions, `rooms.mentions`) commits with the message and is announced after it.
"""

from django.dispatch import Signal

room_presence_changed = Signal()
chat_message_sent = Signal()

# Retention and personal data (rooms/personal_data.py). Each stage deletes, unlinks or exports only
# its own records; receivers return {what: count} (or, for an export, {section: rows}).
#
# - `records_expire(now)`: the daily sweep; each stage deletes its records older than their room's
#   retention (`rooms.selectors.expired_records_filter`), in its own transaction.
# - `records_removed()`: after an expiry or an erasure, derived stores (knowledge chunks, cached
#   answers) drop whatever lost its source.
# - `person_erasing(user, actor, reassign_to)`: sent INSIDE the erasure's transaction: a stage's failure
#   rolls the whole erasure back, so nobody is left half erased.
# - `person_exporting(user)`: a stage returns its sections of the person's export; a `files` entry
#   ({path: text}) adds files beside the JSON.
# - `personal_data_handled(action, user, actor, counts)`: an export, erasure or expiry happened (for
#   the audit trail); sent inside the erasure's transaction, after the export or the sweep otherwise.

records_expire = Signal()
records_removed = Signal()
person_erasing = Signal()
person_exporting = Signal()
personal_data_handled = Signal()

# The outcome dashboard (rooms/outcomes.py, docs/adr/0020) is a query hook: `outcomes_requested(scope)`
# is sent for each view of /outcomes/ or /api/outcomes/; each stage returns a list of its own sections
# (charts and tables of its figures over `scope`'s days and rooms, `rooms.outcomes.OutcomeScope`).
# Read only, outside any transaction.
outcomes_requested = Signal()
