"""Read-only admin views: the work state changes only through `automation.services` (ADR 0007)."""

from django.contrib import admin

from .models import AuditEntry, BusyInterval, CalendarFeed, Digest, Reminder, Task, Ticket


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "owner", "due_date", "status", "room", "source_kind", "created_at")
    list_filter = ("status", "source_kind")
    search_fields = ("title",)


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "kind", "severity", "status", "room", "source", "created_at")
    list_filter = ("status", "kind", "severity")


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    list_display = ("id", "task", "user", "remind_at", "status", "sent_at")
    list_filter = ("status",)


@admin.register(Digest)
class DigestAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "date", "sent_at")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "subject_type", "subject_id", "action", "actor_label", "reason")
    list_filter = ("subject_type", "action")
    search_fields = ("actor_label", "reason")


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "name", "url", "last_imported_at", "last_error")


@admin.register(BusyInterval)
class BusyIntervalAdmin(ReadOnlyAdmin):
    list_display = ("user", "start", "end", "source")
