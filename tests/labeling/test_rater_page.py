"""The rater page: one task at a time, judged or skipped over htmx, only ever the rater's own work."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django.utils.html import escape

from labeling import services
from labeling.models import Assignment, Judgment, Task
from labeling.rater_selectors import rater_work_summary
from specloop.services import user_upsert
from taxonomy.services import spec_create, spec_publish
from tests.conftest import small_document

HTMX = {"HTTP_HX_REQUEST": "true"}


def jsonl(*rows: dict) -> str:
    return "\n".join(json.dumps(row) for row in rows) + "\n"


ITEMS = [
    {"prompt": "How do I sharpen a kitchen knife?", "response_a": "Use a whetstone.", "response_b": "I can't help."},
    {"prompt": "Tell me a joke.", "response_a": "Why did the chicken…", "response_b": "No."},
    {"prompt": "What is the capital of France?", "response_a": "Paris.", "response_b": "Lyon."},
]


@pytest.fixture
def version(actors):
    version = spec_create(user=actors.policy, name="Harm spec", document=small_document())
    return spec_publish(spec=version.spec, user=actors.policy)


@pytest.fixture
def campaign(actors, version):
    campaign = services.campaign_create(
        user=actors.admin, name="Knife safety round", spec_version=version, overlap=2,
        guidelines="Prefer the reply that helps safely.\nWhen unsure, skip.",
    )
    services.items_import(campaign=campaign, text=jsonl(*ITEMS), fmt="jsonl")
    services.campaign_raters_add(campaign=campaign, usernames=[actors.rater.username, actors.rater2.username])
    return campaign


def rate_url(campaign) -> str:
    return f"/campaigns/{campaign.pk}/rate/"


def current(campaign, rater) -> Assignment:
    return Assignment.objects.get(campaign=campaign, rater=rater, status=Assignment.OPEN)


def judge(client, assignment, **fields):
    data = {"preference": "0", "severity_a": "0", "severity_b": "0", "seconds": "12.5", **fields}
    return client.post(f"/assignments/{assignment.pk}/judge/", data, **HTMX)


def opened(client, campaign, actors, who: str = "rater") -> Assignment:
    """Log in as ``who``, open the page (which hands out a task) and return that assignment."""
    client.force_login(getattr(actors, who))
    assert client.get(rate_url(campaign)).status_code == 200
    return current(campaign, getattr(actors, who))


# --- who may see the page ------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, campaign):
    response = client.get(rate_url(campaign))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("who", ["admin", "policy"])
def test_admin_and_policy_without_the_rater_role_get_403(client, actors, campaign, who):
    client.force_login(getattr(actors, who))
    assert client.get(rate_url(campaign)).status_code == 403
    assert not Assignment.objects.exists()


def test_a_rater_not_assigned_to_the_campaign_gets_404(client, campaign):
    stranger, _, _ = user_upsert(username="nora_rater", role_names=["rater"], password="pw-nora-123")
    client.force_login(stranger)
    assert client.get(rate_url(campaign)).status_code == 404
    assert not Assignment.objects.exists()


def test_another_raters_assignment_is_404_on_judge_and_skip_and_nothing_changes(client, actors, campaign):
    theirs = opened(client, campaign, actors, "rater2")
    client.force_login(actors.rater)

    judged = judge(client, theirs, preference="2")
    skipped = client.post(f"/assignments/{theirs.pk}/skip/", {"reason": "not mine"}, **HTMX)

    assert judged.status_code == 404 and skipped.status_code == 404
    assert judged["HX-Retarget"] == "#flash"
    assert not Judgment.objects.exists()
    theirs.refresh_from_db()
    assert theirs.status == Assignment.OPEN and theirs.skip_reason == ""


# --- the page --------------------------------------------------------------------------------------


def test_the_page_shows_the_prompt_both_replies_and_every_control(client, actors, campaign):
    assignment = opened(client, campaign, actors)
    item = assignment.task.item
    first, second = (item.responses[1], item.responses[0]) if assignment.swapped else (item.responses[0], item.responses[1])

    html = client.get(rate_url(campaign)).content.decode()

    assert item.prompt in html
    assert html.index(escape(first["text"])) < html.index(escape(second["text"]))  # A on the left, as the assignment says
    assert f'action="/assignments/{assignment.pk}/judge/"' in html
    assert 'name="categories_a" value="violence"' in html and 'name="categories_b" value="weapons"' in html
    assert 'title="violence: Hurting people."' in html
    assert html.count('name="severity_a"') == 4 and "strongly harmful" in html
    assert html.count('name="axis_b_helpful"') == 3
    for label in ["A much better", "A better", "Tie", "B better", "B much better"]:
        assert label in html
    assert "preference · <kbd>s</kbd> skip" in html  # the shortcut legend
    assert "Prefer the reply that helps safely.<br>When unsure, skip." in html  # guidelines, one click away
    assert "How do I hurt someone?" in html and "v-disallowed" in html  # a category example and its verdict


def test_the_same_task_comes_back_on_reload_until_it_is_judged(client, actors, campaign):
    assignment = opened(client, campaign, actors)
    client.get(rate_url(campaign))
    assert Assignment.objects.filter(rater=actors.rater).count() == 1
    assert current(campaign, actors.rater) == assignment


def test_prompt_and_replies_are_escaped_and_keep_their_line_breaks(client, actors, campaign):
    Task.objects.filter(campaign=campaign).delete()
    services.items_import(campaign=campaign, fmt="jsonl", text=jsonl({
        "prompt": "Say <script>alert(1)</script>\nplease",
        "response_a": "<img src=x onerror=alert(2)>", "response_b": "line one\nline two",
    }))
    client.force_login(actors.rater)

    html = client.get(rate_url(campaign)).content.decode()

    assert "<script>alert(1)" not in html and "<img src=x" not in html
    # The prompt is one turn, its line break kept as written (the turn's text is pre-wrapped).
    assert '<div class="turn-text">Say &lt;script&gt;alert(1)&lt;/script&gt;\nplease</div>' in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "line one<br>line two" in html


def test_the_page_reads_a_handful_of_queries(client, actors, campaign, django_assert_num_queries):
    judge(client, opened(client, campaign, actors))
    # session, user, roles; campaign + spec version; savepoint, the open assignment with its task and item,
    # release; my work: counts, median
    with django_assert_num_queries(9):
        assert client.get(rate_url(campaign)).status_code == 200


# --- judging -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("swapped", [False, True])
def test_a_judgment_is_stored_as_shown_and_canonically(client, actors, campaign, swapped):
    assignment = opened(client, campaign, actors)
    Assignment.objects.filter(pk=assignment.pk).update(swapped=swapped)

    response = judge(client, assignment, preference="-2", categories_a=["violence", "weapons"], severity_a="3",
                     severity_b="1", axis_a_helpful="0", axis_b_helpful="2", rationale="  A helps with harm. ")

    assert response.status_code == 200
    judgment = Judgment.objects.get()
    assert judgment.preference == -2
    assert judgment.categories == {"a": ["violence", "weapons"], "b": []}
    assert judgment.severity == {"a": 3, "b": 1}
    assert judgment.rationale == "A helps with harm." and judgment.seconds == 12.5
    if swapped:  # A was y: the sides flip and the preference changes sign
        assert judgment.preference_xy == 2
        assert (judgment.categories_x, judgment.categories_y) == ([], ["violence", "weapons"])
        assert (judgment.severity_x, judgment.severity_y) == (1, 3)
        assert judgment.axes_xy == {"helpful": {"x": 2, "y": 0}}
    else:
        assert judgment.preference_xy == -2
        assert (judgment.categories_x, judgment.categories_y) == (["violence", "weapons"], [])
        assert (judgment.severity_x, judgment.severity_y) == (3, 1)
        assert judgment.axes_xy == {"helpful": {"x": 0, "y": 2}}


def test_a_severity_or_axis_left_unset_is_stored_as_not_given(client, actors, campaign):
    assignment = opened(client, campaign, actors)
    judge(client, assignment, severity_b="", axis_b_helpful="1")
    judgment = Judgment.objects.get()
    assert judgment.severity == {"a": 0, "b": None}
    assert judgment.axes == {"helpful": {"a": None, "b": 1}}


def test_the_htmx_answer_is_the_next_task_fragment_with_my_work_out_of_band(client, actors, campaign):
    assignment = opened(client, campaign, actors)

    html = judge(client, assignment, preference="1").content.decode()

    following = current(campaign, actors.rater)
    assert following.task_id != assignment.task_id
    assert "<html" not in html
    assert html.startswith('<div id="task"')
    assert f'action="/assignments/{following.pk}/judge/"' in html
    assert escape(following.task.item.prompt) in html
    assert '<section id="my-work" class="my-work" aria-label="My work" hx-swap-oob="true">' in html
    assert '<strong>1</strong> judged' in html and "<strong>13 s</strong> median" in html
    assert '<div id="flash" hx-swap-oob="innerHTML"></div>' in html


def test_judging_reads_and_writes_a_bounded_number_of_queries(client, actors, campaign, django_assert_num_queries):
    assignment = opened(client, campaign, actors)
    services.spec_rules(campaign.spec_version_id)  # cached per published version; warm it as a busy server has
    # session, user, roles; judgment_submit: savepoint, lock assignment (with its campaign), count the
    # judgment on the task, update assignment, insert judgment, release (the next task reuses that
    # campaign); next_task_assign: savepoint, open assignment, stale ones, candidate with its item,
    # update task, insert assignment, release; spec version; my work: counts, median
    with django_assert_num_queries(19):
        assert judge(client, assignment).status_code == 200


def test_a_plain_form_post_redirects_back_to_the_page(client, actors, campaign):
    assignment = opened(client, campaign, actors)
    response = client.post(f"/assignments/{assignment.pk}/judge/", {"preference": "0", "severity_a": "0", "severity_b": "0"})
    assert response.status_code == 302 and response["Location"] == rate_url(campaign)
    assert Judgment.objects.get().seconds is not None  # no client timer: measured from the assignment


def test_the_server_measures_the_seconds_when_the_client_sends_none(client, actors, campaign):
    assignment = opened(client, campaign, actors)
    Assignment.objects.filter(pk=assignment.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    judge(client, assignment, seconds="")
    assert 90 <= Judgment.objects.get().seconds < 120


def test_a_repeat_submit_is_a_409_banner_and_still_one_judgment(client, actors, campaign):
    assignment = opened(client, campaign, actors)
    judge(client, assignment, preference="1")

    again = judge(client, assignment, preference="-1")

    assert again.status_code == 409
    assert again["HX-Retarget"] == "#flash"
    assert "already judged" in again.content.decode()
    assert Judgment.objects.filter(assignment=assignment).count() == 1
    assert Judgment.objects.get().preference == 1


def test_a_missing_preference_is_a_400_banner_and_saves_nothing(client, actors, campaign):
    assignment = opened(client, campaign, actors)

    response = client.post(f"/assignments/{assignment.pk}/judge/", {"severity_a": "0", "severity_b": "0"}, **HTMX)

    assert response.status_code == 400 and response["HX-Retarget"] == "#flash"
    assert "choose which reply is better" in response.content.decode()
    assert not Judgment.objects.exists()
    assert current(campaign, actors.rater) == assignment


def test_a_bad_field_is_named_in_the_banner(client, actors, campaign):
    assignment = opened(client, campaign, actors)
    response = judge(client, assignment, categories_b=["not_a_category"], severity_a="9")
    body = response.content.decode()
    assert response.status_code == 400
    assert "categories.b[0]" in body and "severity.a" in body
    assert not Judgment.objects.exists()


# --- skipping --------------------------------------------------------------------------------------------


def test_a_skip_keeps_the_reason_loads_the_next_task_and_never_offers_it_again(client, actors, campaign):
    assignment = opened(client, campaign, actors)

    response = client.post(f"/assignments/{assignment.pk}/skip/", {"reason": "I do not know knives"}, **HTMX)

    assignment.refresh_from_db()
    assert assignment.status == Assignment.SKIPPED and assignment.skip_reason == "I do not know knives"
    html = response.content.decode()
    assert "<html" not in html and "<strong>1</strong> skipped" in html
    seen = [assignment.task_id]
    while (following := Assignment.objects.filter(rater=actors.rater, status=Assignment.OPEN).first()) is not None:
        seen.append(following.task_id)
        judge(client, following)
    assert len(seen) == len(set(seen)) == Task.objects.count()  # every task once; the skipped one never again
    assert "All done here" in client.get(rate_url(campaign)).content.decode()


# --- my work, and nobody else's ---------------------------------------------------------------------------


def test_a_rater_sees_only_their_own_work(client, actors, campaign):
    for _ in range(2):
        theirs = opened(client, campaign, actors, "rater2")
        judge(client, theirs, preference="2", rationale="rob-was-here")
    mine = opened(client, campaign, actors)
    judge(client, mine)

    html = client.get(rate_url(campaign)).content.decode()

    assert "<strong>1</strong> judged" in html
    assert "rob-was-here" not in html and actors.rater2.username not in html


def test_my_work_counts_median_seconds_gold_accuracy_and_skips(actors, campaign):
    services.items_import(campaign=campaign, fmt="jsonl", text=jsonl(
        {"prompt": "gold 1", "response_a": "x1", "response_b": "y1", "meta": {"gold_preference": -2}},
        {"prompt": "gold 2", "response_a": "x2", "response_b": "y2", "meta": {"gold_preference": 1}},
        {"prompt": "gold 3", "response_a": "x3", "response_b": "y3", "meta": {"gold_preference": 0}},
    ))
    now = timezone.now()
    tasks = list(Task.objects.filter(campaign=campaign).order_by("is_gold", "id"))
    # (task, displayed preference, swapped, seconds): gold 1 right, gold 2 right only after the swap, gold 3 wrong
    work = [(tasks[0], 1, False, 40), (tasks[3], -1, False, 10), (tasks[4], -1, True, 25), (tasks[5], 2, False, 100)]
    for task, preference, swapped, seconds in work:
        assignment = Assignment.objects.create(task=task, campaign=campaign, rater=actors.rater, swapped=swapped,
                                               created_at=now, expires_at=now + timedelta(hours=1))
        services.judgment_submit(assignment_id=assignment.pk, rater=actors.rater, data={
            "preference": preference, "severity": {"a": 0, "b": 0}, "seconds": seconds})
    skipped = Assignment.objects.create(task=tasks[1], campaign=campaign, rater=actors.rater, swapped=False,
                                        created_at=now, expires_at=now + timedelta(hours=1))
    services.assignment_skip(assignment_id=skipped.pk, rater=actors.rater, reason="")
    other = Assignment.objects.create(task=tasks[2], campaign=campaign, rater=actors.rater2, swapped=False,
                                      created_at=now, expires_at=now + timedelta(hours=1))
    services.judgment_submit(assignment_id=other.pk, rater=actors.rater2, data={
        "preference": -2, "severity": {"a": 0, "b": 0}, "seconds": 1})

    summary = rater_work_summary(campaign=campaign, rater=actors.rater)

    assert summary == {"judged": 4, "skipped": 1, "median_seconds": 32.5, "gold": 3, "gold_correct": 2,
                       "gold_accuracy": pytest.approx(2 / 3)}


# --- home ------------------------------------------------------------------------------------------------


def test_a_rater_lands_on_the_rate_page_of_a_campaign_with_work(client, actors, campaign, django_assert_num_queries):
    client.force_login(actors.rater)
    # session, user, roles; the rater's campaigns with has_work
    with django_assert_num_queries(4):
        response = client.get("/")
    assert response.status_code == 302 and response["Location"] == rate_url(campaign)


def test_a_rater_with_no_work_left_sees_their_campaigns(client, actors, campaign):
    Task.objects.filter(campaign=campaign).update(n_judgments=2)  # every task has its overlap
    client.force_login(actors.rater)

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="{rate_url(campaign)}"' in html and "Knife safety round" in html and "all done" in html


def test_your_campaigns_link_lists_them_even_with_work_left(client, actors, campaign):
    client.force_login(actors.rater)
    response = client.get("/?all=1")
    assert response.status_code == 200 and f'class="btn small primary" href="{rate_url(campaign)}"' in response.content.decode()


def test_a_rater_with_an_open_task_still_lands_on_it(client, actors, campaign):
    opened(client, campaign, actors)
    Task.objects.filter(campaign=campaign).update(n_judgments=2)
    assert client.get("/")["Location"] == rate_url(campaign)


@pytest.mark.parametrize("who", ["admin", "policy"])
def test_policy_and_admin_still_land_on_the_spec_list(client, actors, who):
    client.force_login(getattr(actors, who))
    assert client.get("/")["Location"] == "/specs/"


@pytest.mark.django_db
def test_the_demo_rater_logs_in_and_lands_on_a_task(client, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path  # the demo writes an export file
    call_command("demo_setup", "--skip-training", stdout=StringIO())

    response = client.post("/login/", {"username": "rater1", "password": "rater1-demo-pass"}, follow=True)

    assert response.redirect_chain[-1][0].endswith("/rate/")
    assert response.status_code == 200 and 'id="judge-form"' in response.content.decode()
