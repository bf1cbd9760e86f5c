from django.urls import path

from . import api, registry_views, topic_views, views

api_urlpatterns = [
    path("assistant/ask/", api.AskApi.as_view(), name="api-assistant-ask"),
    path("assistant/ask/stream/", api.AskStreamApi.as_view(), name="api-assistant-ask-stream"),
    path("assistant/jobs/<uuid:job_id>/", api.AssistantJobApi.as_view(), name="api-assistant-job"),
    path("assistant/status/", api.AssistantStatusApi.as_view(), name="api-assistant-status"),
    path("rooms/<int:room_id>/catch-up/", api.CatchUpApi.as_view(), name="api-room-catch-up"),
    path("rooms/<int:room_id>/catch-up/stream/", api.CatchUpStreamApi.as_view(), name="api-room-catch-up-stream"),
    path("rooms/<int:room_id>/documents/", api.RoomDocumentsApi.as_view(), name="api-room-documents"),
    path("documents/<int:document_id>/", api.DocumentDetailApi.as_view(), name="api-document"),
    path("meetings/<int:meeting_id>/notes/", api.MeetingNotesApi.as_view(), name="api-meeting-notes"),
    path("meetings/search/", api.MeetingSearchApi.as_view(), name="api-meeting-search"),
    path("meetings/<int:meeting_id>/related/", topic_views.RelatedMeetingsApi.as_view(), name="api-meeting-related"),
    path("experts/", api.ExpertsApi.as_view(), name="api-experts"),
    path("meetings/<int:meeting_id>/notes.md", api.MeetingNotesFileApi.as_view(), {"what": "notes.md"},
         name="api-meeting-notes-file"),
    path("meetings/<int:meeting_id>/export.json", api.MeetingNotesFileApi.as_view(), {"what": "export.json"},
         name="api-meeting-export"),
    path("action-items/", api.ActionItemListApi.as_view(), name="api-action-items"),
    path("action-items/<int:item_id>/decision/", api.ActionItemDecisionApi.as_view(), name="api-action-item-decision"),
]

page_urlpatterns = [
    path("meetings/", views.meetings_archive_page, name="meetings-archive"),
    path("documents/<int:document_id>/", views.document_page, name="document-page"),
    path("topics/", topic_views.topics_page, name="topics"),
    path("topics/<int:topic_id>/", topic_views.topic_page, name="topic-page"),
    path("assistant/versions/", registry_views.versions_page, name="assistant-versions"),
    path("assistant/versions/<str:kind>/rollback/", registry_views.version_rollback, name="assistant-version-rollback"),
    path("assistant/versions/<str:kind>/<str:version>/<str:action>/", registry_views.version_action,
         name="assistant-version-action"),
]
