from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from components.views import ComponentViewSet, TagViewSet
from mltrace_site import health
from runs.views import FlagView, QueueView, ReviewView, RunViewSet, TraceView, UnflagView

router = SimpleRouter()
router.register("components", ComponentViewSet, basename="component")
router.register("tags", TagViewSet, basename="tag")
router.register("runs", RunViewSet, basename="run")

api_v1 = [
    *router.urls,
    path("trace/", TraceView.as_view(), name="trace"),
    path("flag/", FlagView.as_view(), name="flag"),
    path("unflag/", UnflagView.as_view(), name="unflag"),
    path("review/", ReviewView.as_view(), name="review"),
    path("queue/", QueueView.as_view(), name="queue"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

handler404 = "mltrace_site.exceptions.not_found"
handler500 = "mltrace_site.exceptions.server_error"
