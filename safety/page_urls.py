"""Safety pages for admins and the policy team, under /safety/."""

from django.urls import path

from . import views

app_name = "safety"

urlpatterns = [
    path("", views.prompt_set_list_view, name="list"),
    path("prompt-sets/import/", views.prompt_set_import_view, name="import"),
    path("prompt-sets/from-spec/", views.prompt_set_from_spec_view, name="from-spec"),
    path("prompt-sets/<int:prompt_set_id>/", views.prompt_set_detail_view, name="prompt-set"),
    path("imports/<int:job_id>/", views.prompt_set_import_job_view, name="import-job"),
    path("guards/", views.guard_list_view, name="guards"),
    path("guards/<int:guard_id>/", views.guard_detail_view, name="guard"),
    path("guards/<int:guard_id>/send/", views.guard_send_view, name="guard-send"),
    path("guards/<int:guard_id>/try/", views.guard_try_view, name="guard-try"),
]
