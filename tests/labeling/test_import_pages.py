"""The import forms: a large file is imported in the background with a progress bar that polls its job."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling.models import ExportSnapshot, ImportJob, Item
from labeling import import_jobs
from specloop.services import user_upsert
from tests.labeling.helpers import jsonl, make_campaign
from tests.pages import HX

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def campaign(actors):
    return make_campaign(actors, n_items=0)


def upload(text: str, name: str = "items.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")


def running_job(actors, campaign, progress: float, lines: int) -> ImportJob:
    path, size = import_jobs.upload_spool([b"{}\n" * 100], field="file")
    job = ImportJob.objects.create(kind=ImportJob.ITEMS, owner=actors.admin, campaign=campaign, upload=path,
                                   size_bytes=size, status=ImportJob.RUNNING,
                                   options={"format": "jsonl", "filename": "big.jsonl"})
    import_jobs._Progress(job)(progress, lines)
    return job


def test_a_running_import_shows_a_bar_that_polls_every_second_until_the_job_ends(client, actors, campaign):
    client.force_login(actors.admin)
    job = running_job(actors, campaign, 0.25, 1200)
    url = reverse("campaigns:import-job", args=[job.pk])
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 1s"' in page and 'value="0.250"' in page  # the card shows it too

    bar = client.get(url, headers=HX).content.decode()
    assert 'hx-trigger="every 1s"' in bar and '<progress value="0.250" max="1"' in bar and "1200" in bar
    assert "<script" not in bar

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.SUCCEEDED, progress=1.0, lines=3000, upload="",
                                               result={"created_items": 2999, "created_tasks": 2999, "duplicates": 1})
    done = client.get(url, headers=HX).content.decode()
    assert "hx-trigger" not in done.split('id="progress-card"')[0]  # the bar stops polling
    assert 'data-count="created_items">2999<' in done and 'id="progress-card"' in done  # and the counts refresh


def test_a_large_upload_on_the_campaign_page_is_handed_to_a_job(client, actors, campaign, settings,
                                                                django_capture_on_commit_callbacks):
    settings.IMPORT_ASYNC_BYTES = 100
    client.force_login(actors.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("campaigns:import", args=[campaign.pk]),
                               {"file": upload(jsonl(30)), "format": "auto"}, headers=HX)
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert f'id="import-job-{job.pk}"' in response.content.decode()
    assert job.status == "succeeded" and Item.objects.filter(campaign=campaign).count() == 30
    without_js = client.post(reverse("campaigns:import", args=[campaign.pk]), {"file": upload(jsonl(40)), "format": "jsonl"})
    assert without_js.status_code == 302 and without_js["Location"].startswith("/imports/")
    assert client.get(without_js["Location"]).status_code == 200


def test_the_keep_empty_box_keeps_empty_replies_and_without_it_the_line_is_named(client, actors, campaign):
    client.force_login(actors.admin)
    text = json.dumps({"prompt": "p", "response_a": "something", "response_b": ""})
    url = reverse("campaigns:import", args=[campaign.pk])
    refused = client.post(url, {"file": upload(text), "format": "jsonl"}, headers=HX)
    assert refused.status_code == 400 and "line 1: response_b is empty; pass keep_empty=1" in refused.content.decode()
    assert 'name="keep_empty"' in client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    kept = client.post(url, {"file": upload(text), "format": "jsonl", "keep_empty": "on"}, headers=HX)
    assert kept.status_code == 200 and Item.objects.filter(campaign=campaign).count() == 1


def test_a_large_pairs_upload_on_the_exports_page_is_handed_to_a_job(client, actors, settings,
                                                                     django_capture_on_commit_callbacks):
    settings.IMPORT_ASYNC_BYTES = 100
    client.force_login(actors.admin)
    body = "\n".join(json.dumps({"prompt": f"p{i}", "chosen": "good", "rejected": ""}) for i in range(20))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("exports:import"), {"file": upload(body, "pairs.jsonl"), "format": "trl",
                                                           "keep_empty": "on"}, headers=HX)
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert f'id="import-job-{job.pk}"' in response.content.decode() and 'name="keep_empty"' in response.content.decode()
    assert job.status == "succeeded" and ExportSnapshot.objects.get().n_pairs == 20


def test_another_users_import_page_is_not_found(client, actors, campaign):
    job = running_job(actors, campaign, 0.5, 10)
    other, _, _ = user_upsert(username="adam_admin", role_names=["admin"], password="pw-adam-123")
    client.force_login(other)
    assert client.get(reverse("campaigns:import-job", args=[job.pk]), headers=HX).status_code == 404
    client.force_login(actors.policy)
    assert client.get(reverse("campaigns:import-job", args=[job.pk])).status_code == 403
