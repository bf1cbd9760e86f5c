from django.urls import path

from . import api, outcome_views, views

api_urlpatterns = [
    path("me/", api.MeApi.as_view(), name="api-me"),
    path("me/export/", api.MyDataExportApi.as_view(), name="api-me-export"),
    path("members/", api.MemberListApi.as_view(), name="api-members"),
    path("members/<int:user_id>/erase/", api.MemberEraseApi.as_view(), name="api-member-erase"),
    path("maps/", api.MapListApi.as_view(), name="api-maps"),
    path("maps/<int:map_id>/", api.MapDetailApi.as_view(), name="api-map"),
    path("maps/<int:map_id>/presence/", api.MapPresenceApi.as_view(), name="api-map-presence"),
    path("maps/<int:map_id>/export/", api.MapExportApi.as_view(), name="api-map-export"),
    path("maps/<int:map_id>/announcements/", api.AnnouncementsApi.as_view(), name="api-map-announcements"),
    path("maps/<int:map_id>/announcements/<int:announcement_id>/audio/", api.AnnouncementAudioApi.as_view(),
         name="api-map-announcement-audio"),
    path("maps/<int:map_id>/export/tiled/", api.MapTiledExportApi.as_view(), name="api-map-export-tiled"),
    path("maps/import/", api.MapImportApi.as_view(), name="api-map-import"),
    path("desks/", api.DeskListApi.as_view(), name="api-desks"),
    path("desks/<int:desk_id>/", api.DeskDetailApi.as_view(), name="api-desk"),
    path("rooms/", api.RoomListApi.as_view(), name="api-rooms"),
    path("rooms/<int:room_id>/", api.RoomDetailApi.as_view(), name="api-room"),
    path("rooms/<int:room_id>/members/", api.RoomMembersApi.as_view(), name="api-room-members"),
    path("chat/threads/", api.ThreadListApi.as_view(), name="api-threads"),
    path("chat/threads/<int:thread_id>/messages/", api.ThreadMessagesApi.as_view(), name="api-thread-messages"),
    path("chat/threads/<int:thread_id>/read/", api.ThreadReadApi.as_view(), name="api-thread-read"),
    path("chat/direct/", api.DirectThreadApi.as_view(), name="api-direct"),
    path("outcomes/", outcome_views.OutcomesApi.as_view(), name="api-outcomes"),
]

page_urlpatterns = [
    path("", views.office_home, name="office-home"),
    path("office/<int:map_id>/", views.office_page, name="office-page"),
    path("office/<int:map_id>/edit/", views.map_editor_page, name="map-editor"),
    path("settings/tokens/", views.api_tokens_page, name="api-tokens"),
    path("outcomes/", outcome_views.outcomes_page, name="outcomes"),
    path("settings/tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api-token-revoke"),
]
