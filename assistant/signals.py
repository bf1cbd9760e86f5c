"""Signals other apps build on.

`action_item_approved(item, actor)` is sent INSIDE the approving transaction, so a receiver's writes
(the task it creates) commit or roll back together with the approval: an approved item can never
end up without its task, nor a task without its approval.
"""

from django.dispatch import Signal

action_item_approved = Signal()
