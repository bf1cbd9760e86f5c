"""The work kernel: tasks, tickets, reminders, digests, free/busy calendars and their audit log."""
