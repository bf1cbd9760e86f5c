from django.contrib import admin

from .models import Approval, Notification, WebhookDelivery, WebhookEndpoint, WorkflowRun


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Admins configure receivers here; the secret is generated and shown for the receiver's setup."""

    list_display = ("url", "description", "event_types", "active", "created_at")
    list_filter = ("active",)
    readonly_fields = ("secret", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_type", "endpoint", "status", "attempts", "response_code", "last_attempt_at")
    list_filter = ("status", "event_type")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    """Read-only: operator actions go through the run history page, which keeps the audit trail."""

    list_display = ("id", "name", "version", "status", "created_at", "updated_at")
    list_filter = ("status", "name")
    readonly_fields = [f.name for f in WorkflowRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "summary", "decision", "decided_by", "decided_at")
    list_filter = ("decision",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "created_at", "read_at")
    search_fields = ("title", "user__username")
