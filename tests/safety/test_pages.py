"""The safety pages: prompt sets (list, detail, import with its progress, the spec's examples in one click),
guards and the decision log with send-to-campaign. Texts from files and clients are escaped."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling import services as labeling_services
from labeling.models import Item
from safety import services
from safety.models import GuardDecision, PromptSet
from tests.pages import HX, XSS, page_text

from .conftest import SMALL_CATEGORIES
from .helpers import FakeClassifier, make_guard, register_classifier, small_version


@pytest.fixture
def version(actors):
    return small_version(actors.policy)


@pytest.fixture
def prompt_set(actors, version, media):
    import io

    data = "\n".join(json.dumps(line) for line in [
        {"prompt": XSS, "label": "unsafe", "category": "violence", "response": XSS},
        {"prompt": "hello", "label": "safe", "codes": {"llama_guard": ["S1", "S42"]}}]).encode()
    return services.prompt_set_import(user=actors.admin, name=f"set {XSS}", spec_version=version,
                                      source=io.BytesIO(data), options={"format": "jsonl"})


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("policy", 200), ("rater", 403)])
def test_who_sees_the_prompt_set_list(client, actors, prompt_set, who, status):
    client.force_login(getattr(actors, who))
    assert client.get("/safety/").status_code == status


def test_the_list_offers_admins_the_import_and_examples_forms_and_policy_only_the_list(client, actors, prompt_set):
    client.force_login(actors.admin)
    page = client.get("/safety/").content.decode()
    assert 'id="import-form"' in page and 'id="from-spec"' in page and XSS not in page
    client.force_login(actors.policy)
    page = client.get("/safety/").content.decode()
    assert 'id="import-form"' not in page and "set &lt;script&gt;" in page


def test_the_detail_page_counts_categories_labels_and_unmapped_codes_and_escapes_the_sample(client, actors, prompt_set):
    client.force_login(actors.policy)
    response = client.get(f"/safety/prompt-sets/{prompt_set.pk}/")
    page = response.content.decode()
    text = page_text(response)
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Violence violence 2 1 1 0" in text  # one by category (unsafe), one by the crosswalk (S1, safe)
    assert "llama_guard:S42 1" in text and "safe 1" in text and "unsafe 1" in text
    client.force_login(actors.policy2)
    assert client.get(f"/safety/prompt-sets/{prompt_set.pk}/").status_code == 404


def test_an_admin_imports_a_file_and_the_htmx_answer_is_the_finished_jobs_summary(client, actors, version, media,
                                                                                 django_capture_on_commit_callbacks):
    client.force_login(actors.admin)
    upload = SimpleUploadedFile("advbench.csv", b"goal,target\nDo harm,Sure\nDo more harm,Sure\n", content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/safety/prompt-sets/import/", {
            "name": "AdvBench head", "spec_version": version.pk, "file": upload, "format": "auto", "label": "unsafe",
            "prompt_column": "goal"}, headers=HX)
    assert response.status_code == 202
    job_id = int(response.content.decode().split('id="prompt-import-')[1].split('"')[0])
    poll = client.get(f"/safety/imports/{job_id}/", headers=HX)
    prompt_set = PromptSet.objects.get(name="AdvBench head")
    assert prompt_set.n_prompts == 2 and prompt_set.by_label["unsafe"] == 2
    assert 'data-status="succeeded"' in poll.content.decode() and "hx-trigger" not in poll.content.decode()


def test_a_running_import_shows_a_bar_that_polls(client, actors, version, media):
    from safety.models import PromptSetImport

    job = PromptSetImport.objects.create(owner=actors.admin, spec_version=version, name="x", upload="imports/none.upload",
                                         size_bytes=10, options={"format": "jsonl"}, status=PromptSetImport.RUNNING)
    client.force_login(actors.admin)
    page = client.get(f"/safety/imports/{job.pk}/", headers=HX).content.decode()
    assert "<progress" in page and 'hx-trigger="every 1s"' in page
    client.force_login(actors.policy)
    assert client.get(f"/safety/imports/{job.pk}/").status_code == 403


def test_a_failed_import_names_the_line_and_saves_nothing(client, actors, version, media,
                                                          django_capture_on_commit_callbacks):
    client.force_login(actors.admin)
    upload = SimpleUploadedFile("bad.jsonl", b'{"prompt": "ok"}\n{"prompt": "x", "label": "maybe"}\n')
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/safety/prompt-sets/import/", {"name": "bad", "spec_version": version.pk,
                                                               "file": upload, "format": "auto"}, headers=HX)
    job_id = int(response.content.decode().split('id="prompt-import-')[1].split('"')[0])
    text = page_text(client.get(f"/safety/imports/{job_id}/"))
    assert "The import failed; nothing was saved. line 2" in text
    assert not PromptSet.objects.exists()


def test_the_specs_examples_become_a_set_in_one_click(client, actors, version):
    client.force_login(actors.admin)
    response = client.post("/safety/prompt-sets/from-spec/", {"spec_version": version.pk})
    prompt_set = PromptSet.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/safety/prompt-sets/{prompt_set.pk}/"
    assert prompt_set.source == "spec_examples" and prompt_set.n_prompts == 1
    client.force_login(actors.policy)
    assert client.post("/safety/prompt-sets/from-spec/", {"spec_version": version.pk}).status_code == 403


@pytest.fixture
def guard(actors, version, media, tiny_classifier_dir, monkeypatch):
    classifier = register_classifier(actors, tiny_classifier_dir, spec_version=version)
    guard = make_guard(actors, version, classifier, name=f"guard {XSS}", log_decisions=True)
    fake = FakeClassifier(SMALL_CATEGORIES, {XSS: {"prompt_harmful": 0.9, "categories": {"violence": 0.9},
                                                "response_harmful": 0.9}})
    monkeypatch.setattr(services, "classifier_get", lambda model: fake)
    services.guard_score(guard=guard, items=[{"prompt": XSS, "response": "one"}, {"prompt": XSS, "response": XSS},
                                             {"prompt": "fine"}], user=actors.admin)
    return guard


def test_an_admin_creates_a_guard_from_the_form(client, actors, version, media, tiny_classifier_dir):
    classifier = register_classifier(actors, tiny_classifier_dir, spec_version=version)
    client.force_login(actors.admin)
    assert "New guard" in client.get("/safety/guards/").content.decode()
    response = client.post("/safety/guards/", {"name": "prod", "safety_classifier": classifier.pk, "log_decisions": "on"})
    assert response.status_code == 302
    bad = client.post("/safety/guards/", {"name": "", "safety_classifier": classifier.pk})
    assert bad.status_code == 400
    client.force_login(actors.policy)
    assert client.post("/safety/guards/", {"name": "p", "safety_classifier": classifier.pk}).status_code == 403


def test_policy_opens_the_guard_log_and_texts_are_escaped(client, actors, guard):
    client.force_login(actors.policy)
    response = client.get(f"/safety/guards/{guard.pk}/")
    page = response.content.decode()
    assert response.status_code == 200 and XSS not in page
    assert page.count('name="decisions"') == 3 and "block 2" in page_text(response)
    blocked = client.get(f"/safety/guards/{guard.pk}/?decision=block").content.decode()
    assert blocked.count('name="decisions"') == 2
    client.force_login(actors.policy2)
    assert client.get(f"/safety/guards/{guard.pk}/").status_code == 404
    client.force_login(actors.rater)
    assert client.get(f"/safety/guards/{guard.pk}/").status_code == 403


def test_ticked_decisions_are_sent_to_a_campaign_from_the_log(client, actors, guard, version):
    campaign = labeling_services.campaign_create(user=actors.admin, name="Failures", spec_version=version)
    ids = list(GuardDecision.objects.order_by("id").values_list("pk", flat=True))
    client.force_login(actors.policy)
    response = client.post(f"/safety/guards/{guard.pk}/send/", {"decisions": ids, "campaign": campaign.pk}, headers=HX)
    text = page_text(response)
    assert "Sent 2 decisions" in text and "no reply" in text
    assert Item.objects.get(campaign=campaign).prompt == XSS
    assert XSS not in response.content.decode()


def test_the_nav_links_the_safety_pages_for_policy_and_admins_only(client, actors):
    client.force_login(actors.policy)
    assert 'href="/safety/"' in client.get("/specs/").content.decode()
    client.force_login(actors.rater)
    home = client.get("/")
    assert home.status_code == 200 and 'href="/safety/"' not in home.content.decode()


def test_the_guard_page_judges_a_try_without_logging_it(client, actors, guard):
    client.force_login(actors.policy)
    before = GuardDecision.objects.count()
    response = client.post(f"/safety/guards/{guard.pk}/try/", {"prompt": XSS, "response": "Here is how"}, headers=HX)
    page = response.content.decode()
    assert response.status_code == 200 and 'data-decision="block"' in page
    assert "violence: harmful reply in a category the spec refuses" in page_text(response)
    alone = client.post(f"/safety/guards/{guard.pk}/try/", {"prompt": "fine"})
    assert alone.status_code == 200 and "the prompt is judged alone" in page_text(alone)
    assert GuardDecision.objects.count() == before
    assert client.post(f"/safety/guards/{guard.pk}/try/", {"prompt": ""}, headers=HX).status_code == 400
    client.force_login(actors.rater)
    assert client.post(f"/safety/guards/{guard.pk}/try/", {"prompt": "x"}).status_code == 403


def test_an_admin_launches_an_evaluation_or_a_classifier_from_the_set(client, actors, prompt_set):
    client.force_login(actors.admin)
    page = client.get(f"/safety/prompt-sets/{prompt_set.pk}/").content.decode()
    assert f'href="/training/new/?kind=evaluation&amp;prompt_sets={prompt_set.pk}"' in page
    launch = client.get(f"/training/new/?kind=evaluation&prompt_sets={prompt_set.pk}")
    assert launch.status_code == 200
    client.force_login(actors.policy)
    assert 'id="launch"' not in client.get(f"/safety/prompt-sets/{prompt_set.pk}/").content.decode()
