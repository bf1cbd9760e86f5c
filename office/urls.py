from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from assistant import urls as assistant_urls
from automation import urls as automation_urls
from automation.workflows import urls as workflow_urls
from iot import urls as iot_urls
from rooms.urls import api_urlpatterns, page_urlpatterns
from transcription import urls as transcription_urls

from . import views
from .signin import ThrottledAuthenticationForm

admin.site.site_header = "Office administration"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True,
                                              authentication_form=ThrottledAuthenticationForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
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
