from django.urls import path

from . import api, views

api_urlpatterns = [
    path("workflows/runs/", api.RunListApi.as_view(), name="api-workflow-runs"),
    path("workflows/runs/<int:run_id>/", api.RunDetailApi.as_view(), name="api-workflow-run"),
    path("workflows/runs/<int:run_id>/<str:action>/", api.RunActionApi.as_view(), name="api-workflow-run-action"),
    path("workflows/connector-checks/", api.ConnectorCheckListApi.as_view(), name="api-connector-checks"),
    path("workflows/approvals/", api.ApprovalListApi.as_view(), name="api-approvals"),
    path("workflows/approvals/<int:approval_id>/decide/", api.ApprovalDecideApi.as_view(), name="api-approval-decide"),
    path("notifications/", api.NotificationListApi.as_view(), name="api-notifications"),
    path("notifications/read/", api.NotificationReadApi.as_view(), name="api-notifications-read"),
]

page_urlpatterns = [
    path("workflows/", views.runs_page, name="workflows-runs"),
    path("workflows/runs/<int:run_id>/", views.run_page, name="workflows-run"),
    path("workflows/runs/<int:run_id>/<str:action>/", views.run_action, name="workflows-run-action"),
    path("workflows/approvals/", views.approvals_page, name="workflows-approvals"),
    path("workflows/approvals/<int:approval_id>/decide/", views.approval_decide, name="workflows-approval-decide"),
    path("notifications/", views.notifications_page, name="workflows-notifications"),
    path("notifications/read/", views.notifications_read, name="workflows-notifications-read"),
]
