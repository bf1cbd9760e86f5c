from django.urls import path

from . import api, views

api_urlpatterns = [
    path("meetings/", api.MeetingListApi.as_view(), name="api-meetings"),
    path("meetings/<int:meeting_id>/", api.MeetingDetailApi.as_view(), name="api-meeting"),
    path("meetings/<int:meeting_id>/transcript/", api.MeetingTranscriptApi.as_view(), name="api-meeting-transcript"),
    path("meetings/<int:meeting_id>/transcript.<str:file_format>", api.MeetingTranscriptFileApi.as_view(),
         name="api-meeting-transcript-file"),
]

page_urlpatterns = [
    path("meetings/<int:meeting_id>/", views.meeting_page, name="meeting-page"),
]
