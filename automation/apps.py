from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Subscribe to what earlier stages announce (docs/adr/0013): approved and ownerless action
        items, chat @mentions, the knowledge index's sweep, erasures and exports; and index this app's own tickets as room
        knowledge."""
        from django.db.models.signals import post_delete, post_save

        from assistant import signals as assistant_signals
        from rooms import signals as rooms_signals

        from . import receivers
        from .models import CalendarFeed, Ticket

        assistant_signals.action_item_approved.connect(
            receivers.task_from_approved_action_item, dispatch_uid="automation.task_from_action_item")
        assistant_signals.action_item_proposed.connect(
            receivers.owner_suggested_for_proposal, dispatch_uid="automation.owner_for_proposal")
        assistant_signals.knowledge_sweep.connect(receivers.tickets_swept, dispatch_uid="automation.tickets_swept")
        assistant_signals.expert_evidence.connect(receivers.completed_tasks_as_expert_evidence,
                                                  dispatch_uid="automation.expert_evidence")
        rooms_signals.chat_message_sent.connect(receivers.chat_mentions_notified,
                                                dispatch_uid="automation.chat_mentions")
        post_save.connect(receivers.ticket_saved, sender=Ticket, dispatch_uid="automation.index_ticket")
        # A feed URL set up or removed is checked at once (docs/adr/0017).
        post_save.connect(receivers.calendar_feed_changed, sender=CalendarFeed, dispatch_uid="automation.check_feed")
        post_delete.connect(receivers.calendar_feed_changed, sender=CalendarFeed,
                            dispatch_uid="automation.check_deleted_feed")
        # Personal data (rooms/personal_data.py): this stage's records of a person, and the audit trail.
        rooms_signals.person_erasing.connect(receivers.person_work_erase, dispatch_uid="automation.erase")
        rooms_signals.person_exporting.connect(receivers.person_work_export, dispatch_uid="automation.export")
        rooms_signals.personal_data_handled.connect(receivers.personal_data_audit, dispatch_uid="automation.audit")
        # The outcome dashboard (rooms/outcomes.py): what became of action items, tickets, cost per task.
        rooms_signals.outcomes_requested.connect(receivers.work_outcomes, dispatch_uid="automation.outcomes")
