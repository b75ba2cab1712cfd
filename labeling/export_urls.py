"""The export snapshots page: every snapshot a user can train on, and the bring-your-own-pairs import."""

from django.urls import path

from . import export_views

app_name = "exports"

urlpatterns = [
    path("", export_views.export_list_view, name="list"),
    path("import/", export_views.export_import_view, name="import"),
]
