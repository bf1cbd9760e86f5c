"""Durable workflows, tasks, tickets, reminders and digests (not built yet)."""
