from django.urls import path

from . import api

api_urlpatterns = [
    path("prompt-sets/", api.PromptSetListCreateApi.as_view(), name="api-prompt-set-list"),
    path("prompt-sets/from-spec/", api.PromptSetFromSpecApi.as_view(), name="api-prompt-set-from-spec"),
    path("prompt-sets/imports/<int:import_id>/", api.PromptSetImportApi.as_view(), name="api-prompt-set-import"),
    path("prompt-sets/<int:prompt_set_id>/", api.PromptSetDetailApi.as_view(), name="api-prompt-set-detail"),
    path("prompt-sets/<int:prompt_set_id>/prompts.jsonl", api.PromptSetPromptsApi.as_view(), name="api-prompt-set-prompts"),
    path("guards/", api.GuardListCreateApi.as_view(), name="api-guard-list"),
    path("guards/<int:guard_id>/", api.GuardDetailApi.as_view(), name="api-guard-detail"),
    path("guards/<int:guard_id>/decisions/", api.GuardDecisionsApi.as_view(), name="api-guard-decisions"),
    path("guards/<int:guard_id>/decisions/send/", api.GuardDecisionsSendApi.as_view(), name="api-guard-decisions-send"),
    path("guard/score/", api.GuardScoreApi.as_view(), name="api-guard-score"),
]
