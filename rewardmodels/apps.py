from django.apps import AppConfig


class RewardmodelsConfig(AppConfig):
    name = "rewardmodels"
