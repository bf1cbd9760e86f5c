"""What the assistant tells later stages (automation). They connect in their `AppConfig.ready()`;
this app never imports them (docs/adr/0013).

- `action_item_approved(item, actor)`: sent INSIDE the approving transaction, so a receiver's writes
  (the task it creates) commit or roll back together with the approval: an approved item can never
  end up without its task, nor a task without its approval.
- `action_item_proposed(item)`: sent inside the transaction that stores a proposal the meeting gave
  no owner, so a receiver may fill `suggested_owner` / `owner_reason` (by calendars) before anyone
  sees it. A receiver's failure is logged and the proposal kept.
- `knowledge_sweep(limit)`: sent by the periodic index sweep; a stage that feeds its own sources
  into the knowledge index re-indexes what a lost enqueue left behind and returns `{name: count}`.
- `expert_evidence(user, query, vector, room_ids)`: sent by "who knows about X?" (assistant.experts);
  a stage that knows what people did (automation: completed tasks) returns evidence on the topic from
  `room_ids` only (the asker's readable rooms, already checked): `[{"person": user id, "kind", "text",
  "similarity": cosine to `vector`, "key", "room", "citation": {"label", "url"}}]`. Read-only.
"""

from django.dispatch import Signal

action_item_approved = Signal()
action_item_proposed = Signal()
knowledge_sweep = Signal()
expert_evidence = Signal()
