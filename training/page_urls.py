"""Training pages (the REST API lives in urls.py)."""

from django.urls import path

from . import views

app_name = "training"

urlpatterns = [
    path("", views.job_list_view, name="list"),
    path("new/", views.job_new_view, name="new"),
    path("compare/", views.job_compare_view, name="compare"),
    path("<int:job_id>/", views.job_detail_view, name="detail"),
    path("<int:job_id>/cancel/", views.job_cancel_view, name="cancel"),
]
