"""The rater's pages, at the site root: /campaigns/<id>/rate/ and the htmx posts of one assignment."""

from django.urls import path

from . import rater_views

urlpatterns = [
    path("campaigns/<int:campaign_id>/rate/", rater_views.rate_view, name="rate"),
    path("assignments/<int:assignment_id>/judge/", rater_views.judge_view, name="rate-judge"),
    path("assignments/<int:assignment_id>/skip/", rater_views.skip_view, name="rate-skip"),
]
