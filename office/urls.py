from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from assistant import urls as assistant_urls
from automation import urls as automation_urls
from automation.workflows import urls as workflow_urls
from iot import urls as iot_urls
from rooms.urls import api_urlpatterns, page_urlpatterns
from transcription import urls as transcription_urls

from . import oidc, views
from .signin import SignInView, SignOutView

admin.site.site_header = "Office administration"
handler404 = "office.views.not_found"

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", SignOutView.as_view(), name="logout"),
    path("oidc/", include(oidc.urlpatterns)),  # 404 while OIDC_ENABLED is off
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include(api_urlpatterns)),
    path("api/", include(transcription_urls.api_urlpatterns)),
    path("api/", include(assistant_urls.api_urlpatterns)),
    path("api/", include(automation_urls.api_urlpatterns)),
    path("api/", include(workflow_urls.api_urlpatterns)),
    path("api/", include(iot_urls.api_urlpatterns)),
    path("", include(page_urlpatterns)),
    path("", include(iot_urls.page_urlpatterns)),
    path("", include(transcription_urls.page_urlpatterns)),
    path("", include(assistant_urls.page_urlpatterns)),
    path("", include(automation_urls.page_urlpatterns)),
    path("", include(workflow_urls.page_urlpatterns)),
]
