from django.urls import path

from . import api

api_urlpatterns = [
    path("training-jobs/", api.TrainingJobListCreateApi.as_view(), name="api-training-jobs"),
    path("training-jobs/<int:job_id>/", api.TrainingJobDetailApi.as_view(), name="api-training-job"),
    path("training-jobs/<int:job_id>/logs/", api.TrainingJobLogsApi.as_view(), name="api-training-job-logs"),
    path("training-jobs/<int:job_id>/artifacts/<str:name>", api.TrainingJobArtifactApi.as_view(),
         name="api-training-job-artifact"),
    path("training-jobs/<int:job_id>/cancel/", api.TrainingJobCancelApi.as_view(), name="api-training-job-cancel"),
]
