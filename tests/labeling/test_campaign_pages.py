"""The campaign pages (list, campaign, agreement, adjudication) through the Django test client."""

import json
import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling import selectors
from labeling.models import Adjudication, Campaign, ExportSnapshot, Item, Task
from labeling.services import campaign_create, campaign_raters_add, items_import, judgment_submit, next_task_assign
from taxonomy.services import spec_create, spec_publish
from tests.conftest import small_document
from tests.pages import HX, XSS, json_script, page_text

ITEMS = [
    {"prompt": "How do I sharpen a kitchen knife?", "response_a": "Use a whetstone at 20 degrees.", "response_b": "I can't help."},
    {"prompt": "What is the boiling point of water?", "response_a": "100 °C at sea level.", "response_b": "Hot."},
    {"prompt": "Tell me a joke.", "responses": [{"text": "Why did the chicken cross the road?", "model": "m1"},
                                                {"text": "No.", "model": "m2"}]},
]
DISPUTED = ITEMS[0]["prompt"]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _upload(text: str, name: str = "items.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")


@pytest.fixture
def version(actors):
    """v1 of a spec edited by ``actors.policy`` (not by ``policy2``), published."""
    draft = spec_create(user=actors.policy, name="Harm spec", document=small_document())
    return spec_publish(spec=draft.spec, user=actors.policy)


@pytest.fixture
def campaign(actors, version) -> Campaign:
    return campaign_create(user=actors.admin, name="Harm pairs", spec_version=version, overlap=2)


def _judge_everything(campaign: Campaign, rater, decide) -> None:
    """``rater`` judges every task offered; ``decide(task)`` gives the canonical preference (negative: x better).

    Every rater tags reply y with "violence" at severity 1 and finds x more helpful.
    """
    while (assignment := next_task_assign(campaign=campaign, rater=rater)) is not None:
        wanted = decide(assignment.task)
        y, x = ("a", "b") if assignment.swapped else ("b", "a")  # the rater sees y as A when swapped
        judgment_submit(assignment_id=assignment.pk, rater=rater, data={
            "preference": -wanted if assignment.swapped else wanted,
            "severity": {x: 0, y: 1}, "categories": {x: [], y: ["violence"]},
            "axes": {"helpful": {x: 2, y: 1}}, "seconds": 20,
        })


@pytest.fixture
def judged(actors, campaign) -> Campaign:
    """Three tasks judged by two raters, who disagree on the knife task only."""
    items_import(campaign=campaign, text=_jsonl(ITEMS), fmt="jsonl")
    campaign_raters_add(campaign=campaign, usernames=[actors.rater.username, actors.rater2.username])
    _judge_everything(campaign, actors.rater, lambda task: -2)
    _judge_everything(campaign, actors.rater2, lambda task: 1 if task.item.prompt == DISPUTED else -1)
    return campaign


def _disputed_task(campaign: Campaign) -> Task:
    return Task.objects.get(campaign=campaign, item__prompt=DISPUTED)


# --- who may open what --------------------------------------------------------------------------------

PAGES = {
    "list": lambda c: reverse("campaigns:list"),
    "campaign": lambda c: reverse("campaigns:detail", args=[c.pk]),
    "agreement": lambda c: reverse("campaigns:agreement", args=[c.pk]),
    "adjudication": lambda c: reverse("campaigns:adjudicate", args=[c.pk, _disputed_task(c).pk]),
}
CAMPAIGN_PAGES = ["campaign", "agreement", "adjudication"]
ADMIN_POSTS = {
    "create": lambda c: (reverse("campaigns:list"), {"name": "Sneaky", "spec_version": str(c.spec_version_id),
                                                     "overlap": "3", "pairing": "all_pairs", "gold_share": "0",
                                                     "timeout_minutes": "30"}),
    "raters": lambda c: (reverse("campaigns:raters", args=[c.pk]), {"usernames": "rob_rater"}),
    "import": lambda c: (reverse("campaigns:import", args=[c.pk]),
                         {"file": _upload(_jsonl([{"prompt": "p", "response_a": "a", "response_b": "b"}])), "format": "auto"}),
    "export": lambda c: (reverse("campaigns:export-create", args=[c.pk]),
                         {"aggregation": "majority", "min_agreement": "0", "min_judgments": "1", "harmful_threshold": "2"}),
}


def _state(campaign: Campaign) -> tuple:
    return (Campaign.objects.count(), campaign.raters.count(), Item.objects.count(), ExportSnapshot.objects.count())


@pytest.mark.parametrize("page", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, judged, page):
    response = client.get(PAGES[page](judged))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("who", ["rater", "outsider"])
@pytest.mark.parametrize("page", PAGES)
def test_raters_and_users_without_a_role_get_403(client, actors, judged, who, page):
    client.force_login(getattr(actors, who))

    assert client.get(PAGES[page](judged)).status_code == 403


@pytest.mark.parametrize("page", CAMPAIGN_PAGES)
def test_a_policy_user_who_does_not_edit_the_campaigns_spec_gets_404(client, actors, judged, page):
    client.force_login(actors.policy2)

    assert client.get(PAGES[page](judged)).status_code == 404


def test_a_policy_user_does_not_see_campaigns_on_specs_they_do_not_edit(client, actors, judged):
    client.force_login(actors.policy2)

    response = client.get(reverse("campaigns:list"))

    assert response.status_code == 200
    assert "Harm pairs" not in response.content.decode()


@pytest.mark.parametrize("who", ["admin", "policy"])
@pytest.mark.parametrize("page", PAGES)
def test_admins_and_the_specs_policy_editors_open_every_page(client, actors, judged, who, page):
    client.force_login(getattr(actors, who))

    response = client.get(PAGES[page](judged))

    assert response.status_code == 200
    assert judged.name in response.content.decode() or page == "adjudication"


@pytest.mark.parametrize("form", ADMIN_POSTS)
def test_a_policy_editor_reads_but_cannot_post_the_admin_forms(client, actors, judged, form):
    client.force_login(actors.policy)
    url, data = ADMIN_POSTS[form](judged)
    before = _state(judged)

    response = client.post(url, data, headers=HX)

    assert response.status_code == 403
    assert _state(judged) == before


@pytest.mark.parametrize("form", ADMIN_POSTS)
def test_an_anonymous_post_changes_nothing(client, judged, form):
    url, data = ADMIN_POSTS[form](judged)
    before = _state(judged)

    response = client.post(url, data)

    assert response.status_code == 302
    assert _state(judged) == before


def test_the_policy_editor_sees_no_admin_forms(client, actors, judged):
    client.force_login(actors.policy)

    body = client.get(reverse("campaigns:detail", args=[judged.pk])).content.decode()

    assert "Harm pairs" in body
    for control in ('name="usernames"', 'type="file"', "Create export snapshot"):
        assert control not in body
    assert "New campaign" not in client.get(reverse("campaigns:list")).content.decode()


def test_a_policy_user_cannot_adjudicate_a_task_of_a_spec_they_do_not_edit(client, actors, judged):
    client.force_login(actors.policy2)
    task = _disputed_task(judged)

    response = client.post(reverse("campaigns:adjudicate", args=[judged.pk, task.pk]),
                           {"preference": "-2", "severity_x": "0", "severity_y": "0"}, headers=HX)

    assert response.status_code == 404
    assert not Adjudication.objects.exists()


def test_a_task_under_another_campaigns_url_is_a_404(client, actors, judged, version):
    other = campaign_create(user=actors.admin, name="Other", spec_version=version)
    client.force_login(actors.admin)

    response = client.get(reverse("campaigns:adjudicate", args=[other.pk, _disputed_task(judged).pk]))

    assert response.status_code == 404


def test_the_nav_links_to_campaigns_for_admin_and_policy_only(client, actors, campaign):
    link = f'href="{reverse("campaigns:list")}"'
    for who, expected in (("admin", True), ("policy", True), ("rater", False)):
        client.force_login(getattr(actors, who))
        assert (link in client.get("/").content.decode() or link in client.get("/specs/").content.decode()) == expected


# --- campaign list -----------------------------------------------------------------------------------


def test_the_list_shows_progress_and_judgments_per_campaign(client, actors, judged):
    client.force_login(actors.admin)

    response = client.get(reverse("campaigns:list"))

    text = page_text(response)
    assert "Harm pairs" in text and "Harm spec v1" in text
    assert "3 / 3" in text  # all three tasks have k = 2 judgments
    assert re.search(r"Harm pairs .*?\b6\b", text)  # six judgments
    assert 'value="3" max="3"' in response.content.decode()


def test_the_list_page_costs_the_same_queries_for_one_campaign_or_many(client, actors, judged, version,
                                                                      django_assert_num_queries):
    for n in range(3):
        campaign_create(user=actors.admin, name=f"More {n}", spec_version=version)
    client.force_login(actors.admin)
    client.get(reverse("campaigns:list"))  # warm the session

    # session, user, the user's roles, visible specs' published versions (form), campaigns with
    # their progress subqueries (one query for all campaigns)
    with django_assert_num_queries(5):
        response = client.get(reverse("campaigns:list"))

    assert response.content.decode().count("<progress") == 4


def test_an_admin_creates_a_campaign_with_the_form(client, actors, version):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:list"), {
        "name": "Borderline pairs", "spec_version": str(version.pk), "guidelines": "Read the spec first.",
        "overlap": "5", "pairing": "adjacent", "category_weights": "violence: 3\nweapons: 1.5",
        "gold_share": "0.1", "timeout_minutes": "45",
    })

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:detail", args=[campaign.pk])
    assert (campaign.name, campaign.spec_version_id, campaign.overlap, campaign.pairing) == (
        "Borderline pairs", version.pk, 5, "adjacent")
    assert campaign.category_weights == {"violence": 3.0, "weapons": 1.5}
    assert (campaign.gold_share, campaign.assignment_timeout_seconds, campaign.created_by) == (0.1, 2700, actors.admin)
    assert campaign.guidelines == "Read the spec first."


CREATE = {"name": "Pairs", "overlap": "3", "pairing": "all_pairs", "gold_share": "0", "timeout_minutes": "30"}


@pytest.mark.parametrize("field, value, message", [
    ("overlap", "0", "Ensure this value is greater than or equal to 1."),
    ("gold_share", "0.9", "Ensure this value is less than or equal to 0.5."),
    ("category_weights", "violence 3", "line 1: write 'category_key: weight'"),
    ("category_weights", "arson: 2", "category_weights.arson: 'arson' is not a category of the spec version"),
    ("category_weights", "violence: -1", "category_weights.violence: must be a positive number"),
    ("name", "   ", "This field is required."),
])
def test_a_bad_value_names_its_field_and_saves_nothing(client, actors, version, field, value, message):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:list"), {**CREATE, "spec_version": str(version.pk), field: value})

    assert response.status_code == 400
    body = response.content.decode()
    field_html = re.search(rf'<div class="field has-error">\s*<label for="id_{field}">.*?</div>\s*</div>', body, re.S)
    assert field_html, f"the {field} field is not marked"
    assert message in unescape(field_html.group(0))
    assert not Campaign.objects.exists()


def test_a_draft_or_invisible_spec_version_cannot_be_chosen(client, actors, version):
    hidden = spec_create(user=actors.policy2, name="Other spec", document=small_document())
    spec_publish(spec=hidden.spec, user=actors.policy2)
    draft = spec_create(user=actors.policy, name="Draft spec", document=small_document())
    client.force_login(actors.admin)

    page = client.get(reverse("campaigns:list")).content.decode()
    response = client.post(reverse("campaigns:list"), {**CREATE, "spec_version": str(draft.pk)})

    offered = set(re.findall(r'<option value="(\d+)"', page))  # ids alone can match another field's value
    assert str(version.pk) in offered and str(draft.pk) not in offered
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Campaign.objects.exists()


# --- campaign page: progress, raters, import, exports --------------------------------------------------


def test_the_campaign_page_shows_progress_raters_and_the_per_day_chart(client, actors, judged):
    client.force_login(actors.admin)

    response = client.get(reverse("campaigns:detail", args=[judged.pk]))

    body = response.content.decode()
    text = page_text(response)
    assert re.search(r'<span id="tasks-done">3</span>.*<span id="tasks-total">3</span>', body, re.S)
    assert "6 of 6 needed (100%)" in text
    assert actors.rater.username in text and actors.rater2.username in text
    data = json_script(response, "progress-data")
    assert sum(day["n"] for day in data["per_day"]) == 6
    assert 'data-chart="per_day"' in body and "vendor/chart.umd.min.js" in body


@pytest.mark.parametrize("page", ["campaign", "agreement"])
def test_a_new_campaign_without_items_or_judgments_renders(client, actors, campaign, page):
    client.force_login(actors.policy)

    response = client.get(reverse(f"campaigns:{'detail' if page == 'campaign' else page}", args=[campaign.pk]))

    assert response.status_code == 200
    text = page_text(response)
    assert "No judgments yet." in text
    if page == "agreement":
        assert "Nothing disputed yet." in text
        assert re.search(r'<tr data-key="preference">.*?>—</span>.*?<td class="num">0</td>', response.content.decode(), re.S)


def test_an_admin_adds_raters_by_username(client, actors, campaign):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:raters", args=[campaign.pk]),
                           {"usernames": "rita_rater, rob_rater"}, headers=HX)

    assert response.status_code == 200
    assert sorted(campaign.raters.values_list("username", flat=True)) == ["rita_rater", "rob_rater"]
    text = page_text(response)
    assert "Added rita_rater, rob_rater." in text
    assert 'id="raters"' in response.content.decode()


def test_adding_an_unknown_user_or_a_non_rater_names_them_and_adds_nobody(client, actors, campaign):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:raters", args=[campaign.pk]),
                           {"usernames": "rita_rater nobody_here"}, headers=HX)
    response2 = client.post(reverse("campaigns:raters", args=[campaign.pk]), {"usernames": "paula_policy"}, headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert "no user named 'nobody_here'" in unescape(response.content.decode())
    assert "'paula_policy' does not have the rater role" in unescape(response2.content.decode())
    assert not campaign.raters.exists()


def test_an_upload_imports_the_items_and_shows_the_counts(client, actors, campaign):
    client.force_login(actors.admin)
    url = reverse("campaigns:import", args=[campaign.pk])

    response = client.post(url, {"file": _upload(_jsonl(ITEMS)), "format": "auto"}, headers=HX)
    again = client.post(url, {"file": _upload(_jsonl(ITEMS[:2] + [{"prompt": "New", "response_a": "a", "response_b": "b"}])),
                              "format": "jsonl"}, headers=HX)

    assert response.status_code == 200
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', response.content.decode()))
    assert counts == {"created_items": "3", "created_tasks": "3", "duplicates": "0"}
    assert 'id="progress-card" hx-swap-oob="true"' in response.content.decode()  # the progress card updates too
    assert dict(re.findall(r'data-count="(\w+)">(\d+)<', again.content.decode())) == {
        "created_items": "1", "created_tasks": "1", "duplicates": "2"}
    assert Item.objects.filter(campaign=campaign).count() == 4


def test_an_upload_without_javascript_redirects_with_a_banner(client, actors, campaign):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:import", args=[campaign.pk]),
                           {"file": _upload(_jsonl(ITEMS)), "format": "auto"}, follow=True)

    assert response.redirect_chain[-1][0].endswith(f"/campaigns/{campaign.pk}/#import")
    assert "3 new items, 3 tasks, 0 duplicates skipped" in page_text(response)


def test_a_bad_line_names_its_line_and_imports_nothing(client, actors, campaign):
    client.force_login(actors.admin)
    text = _jsonl(ITEMS[:1]) + '{"prompt": "broken", "response_a": "x"}\n' + _jsonl(ITEMS[1:])

    response = client.post(reverse("campaigns:import", args=[campaign.pk]), {"file": _upload(text), "format": "auto"},
                           headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert "line 2: needs responses (a list) or response_a and response_b" in unescape(response.content.decode())
    assert not Item.objects.exists() and not Task.objects.exists()


def test_a_file_that_is_not_utf8_is_refused(client, actors, campaign):
    client.force_login(actors.admin)
    upload = SimpleUploadedFile("items.csv", "prompt,response_a,response_b\nCafé,a,b\n".encode("latin-1"))

    response = client.post(reverse("campaigns:import", args=[campaign.pk]), {"file": upload, "format": "csv"}, headers=HX)

    assert response.status_code == 400
    assert "not UTF-8" in response.content.decode()
    assert not Item.objects.exists()


def test_hh_rlhf_is_detected_and_csv_can_be_chosen(client, actors, campaign):
    client.force_login(actors.admin)
    url = reverse("campaigns:import", args=[campaign.pk])
    hh = json.dumps({"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."})
    csv_text = "prompt,response_a,response_b,category\nWhat is 2+2?,4,5,\n"

    hh_response = client.post(url, {"file": _upload(hh + "\n"), "format": "auto"}, headers=HX)
    csv_response = client.post(url, {"file": _upload(csv_text, "items.csv"), "format": "csv"}, headers=HX)

    assert '<span class="badge">hh</span>' in hh_response.content.decode()
    assert '<span class="badge">csv</span>' in csv_response.content.decode()
    # The HH prompt keeps the dialogue up to its last assistant cue (the one split training uses).
    assert sorted(Item.objects.values_list("prompt", flat=True)) == ["\n\nHuman: Hi?\n\nAssistant:", "What is 2+2?"]


def test_an_admin_creates_an_export_and_sees_it_listed_with_a_working_download(client, actors, judged):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:export-create", args=[judged.pk]), {
        "aggregation": "mean", "min_agreement": "0", "min_judgments": "2", "harmful_threshold": "1",
        "categories": ["violence"],
    }, headers=HX)

    export = ExportSnapshot.objects.get()
    assert response.status_code == 200
    assert export.filters["aggregation"] == "mean" and export.filters["categories"] == ["violence"]
    assert export.filters["min_judgments"] == 2 and export.filters["harmful_threshold"] == 1.0
    body = response.content.decode()
    assert f"Export #{export.pk}: {export.n_pairs} pairs, {export.n_ties} ties left out." in body
    assert export.sha256[:12] in body
    download = f"/api/v1/exports/{export.pk}/pairs.jsonl?download=1"
    assert f'href="{download}"' in body
    page = client.get(reverse("campaigns:detail", args=[judged.pk])).content.decode()
    assert export.sha256[:12] in page
    file = client.get(download)  # session auth, no token
    assert file.status_code == 200
    lines = b"".join(file.streaming_content).decode().splitlines()
    assert len(lines) == export.n_pairs == 3


def test_a_policy_editor_sees_exports_and_may_download_them(client, actors, judged):
    client.force_login(actors.admin)
    client.post(reverse("campaigns:export-create", args=[judged.pk]),
                {"aggregation": "majority", "min_agreement": "0", "min_judgments": "1", "harmful_threshold": "2"})
    export = ExportSnapshot.objects.get()
    client.force_login(actors.policy)

    page = client.get(reverse("campaigns:detail", args=[judged.pk])).content.decode()

    assert export.sha256[:12] in page
    assert client.get(f"/api/v1/exports/{export.pk}/pairs.jsonl?download=1").status_code == 200


def test_a_bad_export_filter_is_shown_on_its_field_and_nothing_is_written(client, actors, judged):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:export-create", args=[judged.pk]), {
        "aggregation": "majority", "min_agreement": "1.5", "min_judgments": "1", "harmful_threshold": "2"}, headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#export-form"
    assert re.search(r'has-error">\s*<label for="id_min_agreement">', response.content.decode())
    assert not ExportSnapshot.objects.exists()


def test_a_bad_export_filter_without_javascript_gets_an_error_page_naming_it(client, actors, judged):
    client.force_login(actors.admin)

    response = client.post(reverse("campaigns:export-create", args=[judged.pk]), {
        "aggregation": "majority", "min_agreement": "0", "min_judgments": "0", "harmful_threshold": "2"})

    assert response.status_code == 400
    assert "min_judgments: Ensure this value is greater than or equal to 1." in response.content.decode()
    assert not ExportSnapshot.objects.exists()


# --- agreement ---------------------------------------------------------------------------------------


def test_the_agreement_page_shows_the_rater_table_and_the_alphas(client, actors, judged):
    client.force_login(actors.policy)
    result = selectors.campaign_agreement(campaign=judged)

    response = client.get(reverse("campaigns:agreement", args=[judged.pk]))

    body = response.content.decode()
    table = re.search(r'<table id="rater-table">(.*?)</table>', body, re.S).group(1)
    rows = {m[0]: m[1] for m in re.findall(r'<tr data-rater="(\w+)">\s*<td>\w+</td>\s*<td class="num">(\d+)</td>', table)}
    assert rows == {"rita_rater": "3", "rob_rater": "3"}
    # rita's and rob's directions match on two of three tasks
    assert re.search(r'data-rater="rita_rater">.*?67%', table, re.S)
    pref = result["preference"]
    row = re.search(r'<tr data-key="preference">(.*?)</tr>', body, re.S).group(1)
    assert f"{pref['alpha']:.3f}" in row and f'<td class="num">{pref["n_units"]}</td>' in row
    data = json_script(response, "agreement-data")
    assert data["fields"][0] == {"label": "Preference (5-point)", "alpha": pref["alpha"], "n_units": pref["n_units"],
                                 "why": data["fields"][0]["why"]}
    assert [f["label"] for f in data["fields"]] == ["Preference (5-point)", "Preference direction", "Severity", "Helpful"]
    assert data["thresholds"] == [0.667, 0.8]


def test_an_undefined_alpha_shows_a_dash_with_the_reason(client, actors, judged):
    client.force_login(actors.admin)

    body = client.get(reverse("campaigns:agreement", args=[judged.pk])).content.decode()

    # Nobody tagged "weapons": every value is "absent", so alpha is undefined.
    row = re.search(r'<tr data-key="weapons">(.*?)</tr>', body, re.S).group(1)
    assert 'title="undefined: every judgment gave the same value' in row and ">—</span>" in row
    assert re.search(r'<td class="num">6</td>', row)  # units: 3 tasks × 2 replies


def test_the_disagreement_queue_lists_the_disputed_task_in_xy_order(client, actors, judged):
    client.force_login(actors.policy)

    response = client.get(reverse("campaigns:agreement", args=[judged.pk]))

    task = _disputed_task(judged)
    item = re.search(rf'<article class="queue-item" id="task-{task.pk}">(.*?)</article>', response.content.decode(), re.S)
    text = unescape(re.sub(r"<[^>]+>", " ", item.group(1)))
    assert DISPUTED in text
    assert text.index("Use a whetstone at 20 degrees.") < text.index("I can't help.")  # x, then y
    assert "50% agree" in text and "X 1 · tie 0 · Y 1" in text
    assert "X ≫" in text and "Y >" in text
    # The other two tasks differ only in strength (-2 and -1): listed after the split one.
    order = re.findall(r'<article class="queue-item" id="task-(\d+)">', response.content.decode())
    assert len(order) == 3 and order[0] == str(task.pk)


def test_a_policy_editor_adjudicates_inline_and_the_next_export_marks_the_pair(client, actors, judged):
    client.force_login(actors.policy)
    task = _disputed_task(judged)
    url = reverse("campaigns:adjudicate", args=[judged.pk, task.pk])

    form = client.get(url, headers=HX)
    response = client.post(url, {"preference": "2", "categories_x": ["violence"], "severity_x": "2",
                                 "severity_y": "0", "note": "Refusal is right here."}, headers=HX)

    assert form.status_code == 200 and 'name="preference"' in form.content.decode()
    assert response.status_code == 200
    adjudication = Adjudication.objects.get(task=task)
    assert (adjudication.preference_xy, adjudication.categories_x, adjudication.categories_y) == (2, ["violence"], [])
    assert (adjudication.severity_x, adjudication.severity_y, adjudication.decided_by) == (2, 0, actors.policy)
    assert adjudication.note == "Refusal is right here."
    assert f'<article class="queue-item adjudicated" id="task-{task.pk}">' in response.content.decode()
    assert "adjudicated: Y much better · paula_policy" in page_text(response)
    page = client.get(reverse("campaigns:agreement", args=[judged.pk])).content.decode()
    assert f'<article class="queue-item adjudicated" id="task-{task.pk}">' in page

    client.force_login(actors.admin)
    client.post(reverse("campaigns:export-create", args=[judged.pk]),
                {"aggregation": "majority", "min_agreement": "0", "min_judgments": "1", "harmful_threshold": "2"})
    export = ExportSnapshot.objects.get()
    pairs = [json.loads(line) for line in b"".join(
        client.get(f"/api/v1/exports/{export.pk}/pairs.jsonl").streaming_content).decode().splitlines()]
    adjudicated = [p for p in pairs if p.get("adjudicated")]
    assert len(adjudicated) == 1
    assert adjudicated[0]["prompt"] == DISPUTED
    assert (adjudicated[0]["chosen"], adjudicated[0]["rejected"]) == ("I can't help.", "Use a whetstone at 20 degrees.")
    assert adjudicated[0]["harmful"] == {"chosen": False, "rejected": True}


def test_an_adjudication_without_a_preference_is_refused_on_its_field(client, actors, judged):
    client.force_login(actors.admin)
    task = _disputed_task(judged)

    response = client.post(reverse("campaigns:adjudicate", args=[judged.pk, task.pk]),
                           {"severity_x": "0", "severity_y": "0"}, headers=HX)

    assert response.status_code == 400
    assert response["HX-Retarget"] == f"#adjudicate-{task.pk}"
    assert "This field is required." in response.content.decode()
    assert not Adjudication.objects.exists()


def test_adjudication_works_without_javascript(client, actors, judged):
    client.force_login(actors.admin)
    task = _disputed_task(judged)
    url = reverse("campaigns:adjudicate", args=[judged.pk, task.pk])

    page = client.get(url)
    response = client.post(url, {"preference": "-1", "severity_x": "0", "severity_y": "1"})

    assert page.status_code == 200 and "<h1>Adjudicate task" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/agreement/#task-{task.pk}")
    assert Adjudication.objects.get(task=task).preference_xy == -1


def test_a_prompt_with_markup_is_escaped_in_the_disagreement_queue(client, actors, campaign):
    items_import(campaign=campaign, text=_jsonl([{"prompt": XSS, "response_a": f"A {XSS}", "response_b": "B"}]),
                 fmt="jsonl")
    _judge_everything(campaign, actors.rater, lambda task: -1)
    _judge_everything(campaign, actors.rater2, lambda task: 1)
    client.force_login(actors.admin)

    body = client.get(reverse("campaigns:agreement", args=[campaign.pk])).content.decode()
    form = client.get(reverse("campaigns:adjudicate", args=[campaign.pk, Task.objects.get().pk])).content.decode()

    assert 'class="queue-item"' in body
    assert XSS not in body and XSS not in form
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
