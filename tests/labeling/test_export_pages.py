"""The export snapshots page and its bring-your-own-pairs import form, through the Django test client."""

import json
import re
from html import unescape
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling.models import ExportSnapshot
from tests.pages import HX, XSS, page_text
from tests.training import page_data



@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _pairs(n: int = 3) -> str:
    return "".join(json.dumps({"prompt": f"question {i}", "chosen": f"kind answer {i}", "rejected": f"rude answer {i}",
                               "harmful": {"chosen": False, "rejected": True}}) + "\n" for i in range(n))


def _upload(text: str, name: str = "pairs.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/x-ndjson")


@pytest.fixture
def snapshots(actors):
    return page_data.imported_export(actors.admin, name="shared pairs"), page_data.campaign_export(actors)


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, snapshots):
    response = client.get(reverse("exports:list"))

    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_an_anonymous_import_changes_nothing(client, snapshots):
    response = client.post(reverse("exports:import"), {"file": _upload(_pairs()), "format": "trl"})

    assert response.status_code == 302 and ExportSnapshot.objects.count() == 2


@pytest.mark.parametrize("who", ["rater", "outsider"])
def test_raters_and_users_without_a_role_get_403(client, actors, snapshots, who):
    client.force_login(getattr(actors, who))

    assert client.get(reverse("exports:list")).status_code == 403
    assert client.post(reverse("exports:import"), {"file": _upload(_pairs()), "format": "trl"}).status_code == 403
    assert ExportSnapshot.objects.count() == 2


def test_a_policy_user_reads_the_page_but_cannot_import(client, actors, snapshots):
    client.force_login(actors.policy)

    page = client.get(reverse("exports:list")).content.decode()
    response = client.post(reverse("exports:import"), {"file": _upload(_pairs()), "format": "trl"}, headers=HX)

    assert "shared pairs" in page and "round 1 consensus" in page
    assert 'type="file"' not in page and "Train →" not in page
    assert response.status_code == 403 and ExportSnapshot.objects.count() == 2


def test_a_policy_user_sees_imported_datasets_but_not_other_specs_campaign_exports(client, actors, snapshots):
    client.force_login(actors.policy2)

    page = client.get(reverse("exports:list")).content.decode()

    assert "shared pairs" in page and "round 1 consensus" not in page


def test_the_page_costs_the_same_queries_for_one_snapshot_or_many(client, actors, snapshots, django_assert_num_queries):
    client.force_login(actors.policy)
    client.get(reverse("exports:list"))  # warm the session

    def queries():
        # session, user, roles, the snapshots (with campaign and creator; visibility as a subquery)
        with django_assert_num_queries(4):
            return client.get(reverse("exports:list"))

    assert queries().content.decode().count("<tr data-export=") == 2
    for n in range(3):
        page_data.imported_export(actors.admin, name=f"more {n}")
    assert queries().content.decode().count("<tr data-export=") == 5


def test_the_page_lists_source_pairs_sha256_and_download_links(client, actors, snapshots):
    imported, campaign_export = snapshots
    client.force_login(actors.admin)

    response = client.get(reverse("exports:list"))

    text = page_text(response)
    body = response.content.decode()
    assert re.search(r"round 1 consensus #\d+ majority · 3 ties left out .*?Harm pairs 80 2\.0 KB b2b2b2b2b2b2", text)
    assert re.search(r"shared pairs #\d+ imported trl · 120 with harmful flags .*?imported dataset 120", text)
    assert f'href="{reverse("api-export-pairs", args=[imported.pk])}?download=1"' in body
    assert f'href="{reverse("training:new")}?exports={campaign_export.pk}"' in body


def test_snapshot_names_are_escaped(client, actors):
    page_data.imported_export(actors.admin, name=XSS)
    client.force_login(actors.policy)

    body = client.get(reverse("exports:list")).content.decode()

    assert XSS not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_an_admin_imports_pairs_and_the_new_snapshot_is_listed(client, actors, media):
    client.force_login(actors.admin)

    response = client.post(reverse("exports:import"), {"file": _upload(_pairs(4)), "format": "trl", "name": "my pairs"},
                           headers=HX)

    export = ExportSnapshot.objects.get()
    body = response.content.decode()
    assert response.status_code == 200
    assert (export.source, export.name, export.n_pairs, export.filters["format"]) == ("imported", "my pairs", 4, "trl")
    assert (Path(media) / export.path).is_file()
    assert body.lstrip().startswith('<section class="card" id="import-card">')
    assert f"Imported “my pairs”: 4 pairs as snapshot #{export.pk}." in unescape(body)
    assert '<section class="card" id="exports-card" hx-swap-oob="true">' in body
    assert f'<tr data-export="{export.pk}" class="fresh">' in body


def test_an_import_without_a_name_is_named_after_its_file(client, actors):
    client.force_login(actors.admin)

    response = client.post(reverse("exports:import"), {"file": _upload(_pairs(), "hh-sample.jsonl"), "format": "trl"})

    assert response.status_code == 302 and response["Location"] == reverse("exports:list")
    assert ExportSnapshot.objects.get().name == "hh-sample.jsonl"


def test_a_bad_line_shows_its_number_and_nothing_is_saved(client, actors, media):
    client.force_login(actors.admin)
    text = _pairs(2) + '{"prompt": "q", "chosen": "same", "rejected": "same"}\n'

    response = client.post(reverse("exports:import"), {"file": _upload(text), "format": "trl"}, headers=HX)

    body = unescape(response.content.decode())
    assert response.status_code == 400
    assert re.search(r'id="import-error" role="alert">line 3: chosen and rejected are identical', body)
    assert not ExportSnapshot.objects.exists()
    assert not list(Path(media).rglob("*.jsonl"))


def test_a_line_that_is_not_json_shows_its_number_without_javascript_too(client, actors):
    client.force_login(actors.admin)

    response = client.post(reverse("exports:import"), {"file": _upload(_pairs(4) + "{oops\n"), "format": "trl"})

    assert response.status_code == 400
    assert "line 5: not valid JSON" in page_text(response)
    assert "<h1>Export snapshots</h1>" in response.content.decode()
    assert not ExportSnapshot.objects.exists()


def test_the_format_decides_how_lines_are_read(client, actors):
    client.force_login(actors.admin)

    response = client.post(reverse("exports:import"), {"file": _upload(_pairs()), "format": "hh"}, headers=HX)

    assert response.status_code == 400
    assert "line 1: chosen and rejected do not share a dialogue" in unescape(response.content.decode())


@pytest.mark.parametrize(("data", "message"), [
    ({"format": "trl"}, "Choose a JSON-lines file of pairs to upload."),
    ({"file": "", "format": "csv"}, "Select a valid choice. csv is not one of the available choices."),
])
def test_the_form_says_what_is_missing(client, actors, data, message):
    client.force_login(actors.admin)
    if "file" in data:
        data = {**data, "file": _upload(_pairs())}

    response = client.post(reverse("exports:import"), data, headers=HX)

    assert response.status_code == 400 and message in unescape(response.content.decode())
    assert not ExportSnapshot.objects.exists()


def test_a_file_that_is_not_utf8_is_refused(client, actors):
    client.force_login(actors.admin)
    upload = SimpleUploadedFile("pairs.jsonl", b"\xff\xfe\x00bad", content_type="application/x-ndjson")

    response = client.post(reverse("exports:import"), {"file": upload, "format": "trl"}, headers=HX)

    assert response.status_code == 400 and "not UTF-8 text" in response.content.decode()
