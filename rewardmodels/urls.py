from django.urls import path

from . import api

api_urlpatterns = [
    path("reward-models/", api.RewardModelListApi.as_view(), name="api-reward-models"),
    path("reward-models/<int:model_id>/", api.RewardModelDetailApi.as_view(), name="api-reward-model"),
    path("reward-models/<int:model_id>/score/", api.RewardModelScoreApi.as_view(), name="api-reward-model-score"),
]
