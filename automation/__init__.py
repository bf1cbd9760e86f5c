"""The work kernel: tasks, tickets, reminders, digests, free/busy calendars and their audit log
(ADR 0007), plus durable workflows (`automation.workflows`, ADR 0008).

Public modules: `services`, `selectors`, `serializers`, `receivers` (approved action items become
tasks; ownerless proposals get a calendar-based owner suggestion; tickets feed the room knowledge
through `knowledge`), `consumers` (`WorkSocketMixin`: notifications, task and ticket changes on the
office socket), `calendars` (ICS parsing). Builds on assistant and rooms (docs/adr/0013).
"""
