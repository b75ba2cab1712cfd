from django.urls import path

from . import api

api_urlpatterns = [
    path("campaigns/", api.CampaignListCreateApi.as_view(), name="api-campaign-list"),
    path("campaigns/<int:campaign_id>/", api.CampaignDetailApi.as_view(), name="api-campaign-detail"),
    path("campaigns/<int:campaign_id>/items/", api.CampaignItemsApi.as_view(), name="api-campaign-items"),
    path("campaigns/<int:campaign_id>/raters/", api.CampaignRatersApi.as_view(), name="api-campaign-raters"),
    path("campaigns/<int:campaign_id>/next-task/", api.NextTaskApi.as_view(), name="api-next-task"),
    path("campaigns/<int:campaign_id>/agreement/", api.AgreementApi.as_view(), name="api-agreement"),
    path("campaigns/<int:campaign_id>/exports/", api.CampaignExportsApi.as_view(), name="api-campaign-exports"),
    path("assignments/<int:assignment_id>/judgment/", api.JudgmentSubmitApi.as_view(), name="api-judgment-submit"),
    path("assignments/<int:assignment_id>/skip/", api.AssignmentSkipApi.as_view(), name="api-assignment-skip"),
    path("judgments/", api.JudgmentListApi.as_view(), name="api-judgment-list"),
    path("judgments/<int:judgment_id>/", api.JudgmentDetailApi.as_view(), name="api-judgment-detail"),
    path("tasks/<int:task_id>/adjudication/", api.AdjudicationApi.as_view(), name="api-adjudication"),
    path("exports/", api.ExportListApi.as_view(), name="api-export-list"),
    path("exports/import/", api.ExportImportApi.as_view(), name="api-export-import"),
    path("exports/<int:export_id>/", api.ExportDetailApi.as_view(), name="api-export-detail"),
    path("exports/<int:export_id>/pairs.jsonl", api.ExportPairsApi.as_view(), name="api-export-pairs"),
    path("imports/<int:job_id>/", api.ImportJobApi.as_view(), name="api-import-job"),
]
