"""Model registry pages (the REST API lives in urls.py)."""

from django.urls import path

from . import views

app_name = "models"

urlpatterns = [
    path("", views.model_list_view, name="list"),
    path("<int:model_id>/", views.model_detail_view, name="detail"),
    path("<int:model_id>/score/", views.model_score_view, name="score"),
]
