"""Campaign pages for admins and the policy team (the rater pages live in rater_urls.py)."""

from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list_view, name="list"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail_view, name="detail"),
    path("campaigns/<int:campaign_id>/raters/", views.raters_add_view, name="raters"),
    path("campaigns/<int:campaign_id>/items/", views.items_import_view, name="import"),
    path("imports/<int:job_id>/", views.import_job_view, name="import-job"),
    path("campaigns/<int:campaign_id>/exports/", views.export_create_view, name="export-create"),
    path("campaigns/<int:campaign_id>/agreement/", views.agreement_view, name="agreement"),
    path("campaigns/<int:campaign_id>/tasks/<int:task_id>/adjudication/", views.adjudication_view, name="adjudicate"),
]
