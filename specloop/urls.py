from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from labeling.urls import api_urlpatterns as labeling_api
from rewardmodels.urls import api_urlpatterns as rewardmodels_api
from safety.urls import api_urlpatterns as safety_api
from taxonomy.urls import api_urlpatterns as taxonomy_api
from training.urls import api_urlpatterns as training_api

from . import views

urlpatterns = [
    path("", views.home_view, name="home"),
    path("healthz", views.health_view, name="health"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("specs/", include("taxonomy.urls")),
    path("", include("labeling.rater_urls")),
    path("", include("labeling.page_urls")),
    path("exports/", include("labeling.export_urls")),
    path("training/", include("training.page_urls")),
    path("models/", include("rewardmodels.page_urls")),
    path("safety/", include("safety.page_urls")),
    path("api/v1/", include(taxonomy_api)),
    path("api/v1/", include(labeling_api)),
    path("api/v1/", include(training_api)),
    path("api/v1/", include(rewardmodels_api)),
    path("api/v1/", include(safety_api)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up code as a script file (?script), not inline: the CSP holds.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

# JSON under /api/, Django's pages elsewhere (specloop/errors.py).
handler400 = "specloop.errors.bad_request"
handler404 = "specloop.errors.not_found"
handler500 = "specloop.errors.server_error"
