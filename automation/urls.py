from django.urls import path

from . import api, views

api_urlpatterns = [
    path("tasks/", api.TaskListApi.as_view(), name="api-tasks"),
    path("tasks/<int:task_id>/", api.TaskDetailApi.as_view(), name="api-task"),
    path("tasks/<int:task_id>/history/", api.TaskHistoryApi.as_view(), name="api-task-history"),
    path("tickets/", api.TicketListApi.as_view(), name="api-tickets"),
    path("tickets/<int:ticket_id>/", api.TicketDetailApi.as_view(), name="api-ticket"),
    path("digests/", api.DigestListApi.as_view(), name="api-digests"),
    path("digests/<str:date>/", api.DigestDetailApi.as_view(), name="api-digest"),
    path("calendar/feeds/", api.CalendarFeedApi.as_view(), name="api-calendar-feeds"),
]

page_urlpatterns = [
    path("tasks/", views.tasks_page, name="automation-tasks"),
    path("tasks/new/", views.task_create_view, name="automation-task-create"),
    path("tasks/<int:task_id>/status/", views.task_status_view, name="automation-task-status"),
    path("tickets/", views.tickets_page, name="automation-tickets"),
    path("tickets/new/", views.ticket_report_view, name="automation-ticket-report"),
    path("tickets/<int:ticket_id>/status/", views.ticket_status_view, name="automation-ticket-status"),
]
