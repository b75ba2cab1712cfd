"""The training pages (job list, launch form, live job page, cancel, compare) through the Django test client."""

import re

import pytest
from django.urls import reverse

from tests.pages import HX, XSS, json_script, page_text
from training import services
from training.models import JobLog, JobMetric, TrainingJob

from . import page_data

@pytest.fixture
def shared(actors):
    return page_data.imported_export(actors.admin)


@pytest.fixture
def done(actors, shared):
    """A succeeded reward-model job on an imported dataset, with curves, logs and a registered model."""
    job = page_data.job(actors.admin, [shared])
    page_data.series(job)
    page_data.logs(job, "queued by ada_admin", "succeeded in 300.0 s")
    page_data.registered(job, [shared])
    return job


@pytest.fixture
def running(actors, shared):
    job = page_data.job(actors.admin, [shared], status=TrainingJob.RUNNING, name="cost run", progress=0.3,
                        eta_seconds=200, steps=30, kind=TrainingJob.COST_MODEL,
                        config={**page_data.CONFIG, "learning_rate": 5e-5, "sign_weight": 1.0})
    page_data.series(job, 3)
    page_data.logs(job, "running on gpu-1:4242")
    return job


@pytest.fixture
def private(actors):
    """A job on a campaign export of a spec only ``actors.policy`` edits."""
    return page_data.job(actors.admin, [page_data.campaign_export(actors)], name="private job")


# --- who may open what --------------------------------------------------------------------------------

PAGES = {
    "list": lambda j: reverse("training:list"),
    "new": lambda j: reverse("training:new"),
    "detail": lambda j: reverse("training:detail", args=[j.pk]),
    "compare": lambda j: reverse("training:compare") + f"?jobs={j.pk}&jobs={j.pk + 1}",
}


@pytest.fixture
def two(done, running):
    assert running.pk == done.pk + 1  # PAGES["compare"] compares j and the next job
    return done


@pytest.mark.parametrize("page", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, two, page):
    response = client.get(PAGES[page](two))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("who", ["rater", "outsider"])
@pytest.mark.parametrize("page", PAGES)
def test_raters_and_users_without_a_role_get_403(client, actors, two, who, page):
    client.force_login(getattr(actors, who))

    assert client.get(PAGES[page](two)).status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_an_admin_opens_every_page(client, actors, two, page):
    client.force_login(actors.admin)

    assert client.get(PAGES[page](two)).status_code == 200


@pytest.mark.parametrize("page", ["list", "detail", "compare"])
def test_a_policy_user_reads_the_jobs_but_cannot_open_the_launch_form(client, actors, two, page):
    client.force_login(actors.policy)

    assert client.get(PAGES[page](two)).status_code == 200
    assert client.get(PAGES["new"](two)).status_code == 403


def test_a_policy_user_gets_404_for_a_job_on_a_campaign_they_cannot_see(client, actors, done, private):
    client.force_login(actors.policy2)

    assert client.get(reverse("training:detail", args=[private.pk])).status_code == 404
    assert client.get(reverse("training:detail", args=[private.pk]), headers=HX).status_code == 404
    assert client.get(reverse("training:compare") + f"?jobs={done.pk}&jobs={private.pk}").status_code == 404
    listing = client.get(reverse("training:list")).content.decode()
    assert "private job" not in listing and "rm baseline" in listing


def test_the_campaigns_policy_editor_sees_that_job(client, actors, private):
    client.force_login(actors.policy)

    assert client.get(reverse("training:detail", args=[private.pk])).status_code == 200


def test_an_unknown_job_is_a_404(client, actors):
    client.force_login(actors.admin)

    assert client.get(reverse("training:detail", args=[999999])).status_code == 404


def test_the_nav_links_to_training_models_and_exports_for_admin_and_policy_only(client, actors):
    links = [f'href="{reverse(name)}"' for name in ("training:list", "models:list", "exports:list")]
    for who, expected in (("admin", True), ("policy", True), ("rater", False)):
        client.force_login(getattr(actors, who))
        body = client.get(reverse("training:list") if expected else "/?all=1").content.decode()
        assert all((link in body) == expected for link in links), who


# --- escaping -----------------------------------------------------------------------------------------


def test_job_names_log_lines_and_errors_are_escaped_everywhere(client, actors, shared, done):
    bad = page_data.job(actors.admin, [shared], status=TrainingJob.FAILED, name=XSS, error=f"boom {XSS}",
                        config={**page_data.CONFIG, "backbone": XSS})
    page_data.logs(bad, f"line {XSS}")
    client.force_login(actors.admin)

    pages = [client.get(reverse("training:list")), client.get(reverse("training:detail", args=[bad.pk])),
             client.get(reverse("training:detail", args=[bad.pk]) + "?logs_after=0", headers=HX),
             client.get(reverse("training:compare") + f"?jobs={bad.pk}&jobs={done.pk}")]

    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200
        assert XSS not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --- list ---------------------------------------------------------------------------------------------


def test_the_list_shows_status_progress_inputs_device_and_final_accuracy(client, actors, done, running):
    client.force_login(actors.admin)

    response = client.get(reverse("training:list"))

    text = page_text(response)
    body = response.content.decode()
    assert re.search(r"rm baseline .*?succeeded .*?hh harmless sample .*?cuda:0 \(NVIDIA H100\) .*?ada_admin .*?87\.5%", text)
    assert re.search(r"cost run .*?running .*?30% · step 30", text)
    assert f'<progress value="0.3" max="1" aria-label="job {running.pk} progress">' in body
    assert "5 min 00 s" in text  # the succeeded job's duration
    assert body.count('name="jobs"') == 2  # compare checkboxes
    assert "New job" in text


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ("status=running", "cost run", "rm baseline"),
    ("kind=reward_model", "rm baseline", "cost run"),
    ("status=succeeded&kind=cost_model", None, "cost run"),
])
def test_the_list_filters_by_status_and_kind(client, actors, done, running, query, shown, hidden):
    client.force_login(actors.admin)

    body = client.get(reverse("training:list") + "?" + query).content.decode()

    assert hidden not in body
    assert shown is None and "No job matches these filters" in body or shown in body


def test_the_filter_form_gets_only_the_table_over_htmx(client, actors, done, running):
    client.force_login(actors.admin)

    body = client.get(reverse("training:list") + "?status=running", headers=HX).content.decode()

    assert body.lstrip().startswith('<div id="job-table"')
    assert "<html" not in body and "cost run" in body and "rm baseline" not in body


def test_a_policy_user_sees_no_launch_button(client, actors, done):
    client.force_login(actors.policy)

    assert "New job" not in client.get(reverse("training:list")).content.decode()


def test_the_list_costs_the_same_queries_for_one_job_or_many(client, actors, shared, done, django_assert_num_queries):
    client.force_login(actors.admin)
    client.get(reverse("training:list"))  # warm the session

    def queries():
        # session, user, roles, the lost-worker check, count, the page of jobs (with user and model), their
        # exports, their prompt sets
        with django_assert_num_queries(8):
            return client.get(reverse("training:list"))

    assert queries().content.decode().count("<tr data-job=") == 1
    for n in range(4):
        page_data.job(actors.admin, [shared], name=f"more {n}", status=TrainingJob.QUEUED)
    assert queries().content.decode().count("<tr data-job=") == 5


# --- the job page -------------------------------------------------------------------------------------


def test_the_job_page_shows_the_run_config_inputs_artifacts_and_the_model(client, actors, done, shared):
    client.force_login(actors.policy)

    response = client.get(reverse("training:detail", args=[done.pk]))

    text = page_text(response)
    body = response.content.decode()
    for expected in ("succeeded", "gpu-1:4242", "cuda:0 (NVIDIA H100)", "torch 2.5.1", "transformers 4.46.0",
                     "learning_rate", "2e-05", "hh harmless sample", "sha256 " + shared.sha256, "model.safetensors",
                     "85.8 MB", "accuracy 0.8750", "calibration.ece 0.0520", "5 min 00 s in all",
                     "queued by ada_admin", "succeeded in 300.0 s"):
        assert expected in text, expected
    model = done.reward_model
    assert f'href="{reverse("models:detail", args=[model.pk])}"' in body
    assert "hx-trigger" not in body  # finished: no polling
    assert "Cancel job" not in text
    series = json_script(response, "job-series")["series"]
    assert series["train"]["loss"][0] == [1, 0.68] and len(series["train"]["loss"]) == 10
    assert series["eval"]["accuracy"] == [[5, 0.7], [10, 0.8]]
    assert "kind" not in series["eval"]  # text values are not plotted


def test_a_running_job_polls_every_two_seconds_and_shows_progress_and_eta(client, actors, running):
    client.force_login(actors.admin)

    response = client.get(reverse("training:detail", args=[running.pk]))

    body = response.content.decode()
    last_metric = JobMetric.objects.filter(job=running).latest("pk").pk
    last_log = JobLog.objects.filter(job=running).latest("pk").pk
    assert (f'hx-get="{reverse("training:detail", args=[running.pk])}?metrics_after={last_metric}'
            f'&amp;logs_after={last_log}" hx-trigger="every 2s"') in body
    assert '<progress id="job-progress" value="0.3" max="1"' in body
    assert "ETA 3 min 20 s" in page_text(response)
    assert 'id="cancel-button"' in body


def test_the_poll_returns_only_what_came_after_the_cursors(client, actors, running):
    client.force_login(actors.admin)
    metric_cursor = JobMetric.objects.filter(job=running).latest("pk").pk
    log_cursor = JobLog.objects.filter(job=running).latest("pk").pk
    page_data.series(running, 2, start=4)
    JobLog.objects.create(job=running, message="step 5: held-out accuracy 0.7000", level="info")
    TrainingJob.objects.filter(pk=running.pk).update(progress=0.55, steps=55)

    response = client.get(reverse("training:detail", args=[running.pk])
                          + f"?metrics_after={metric_cursor}&logs_after={log_cursor}", headers=HX)

    body = response.content.decode()
    assert body.lstrip().startswith('<section id="job-live"')
    assert '<progress id="job-progress" value="0.55" max="1"' in body
    assert json_script(response, "metric-delta") == {
        "train": {"loss": [[4, 0.62], [5, 0.6]], "accuracy": [[4, 0.62], [5, 0.65]], "lr": [[4, 2e-05], [5, 2e-05]]},
        "eval": {"accuracy": [[5, 0.7]], "loss": [[5, 0.6]]}}
    oob = re.search(r'<ol hx-swap-oob="beforeend:#log-lines">(.*?)</ol>', body, re.S).group(1)
    assert "step 5: held-out accuracy 0.7000" in oob and "running on gpu-1" not in oob
    new_cursor = JobMetric.objects.filter(job=running).latest("pk").pk
    assert f"metrics_after={new_cursor}&amp;" in body


def test_the_poll_stops_when_the_job_has_finished(client, actors, running):
    client.force_login(actors.admin)
    TrainingJob.objects.filter(pk=running.pk).update(status=TrainingJob.FAILED, error="CUDA out of memory")

    response = client.get(reverse("training:detail", args=[running.pk]) + "?metrics_after=0&logs_after=0", headers=HX)

    body = response.content.decode()
    assert "hx-trigger" not in body and "Cancel job" not in body
    assert "The job failed" in body and "CUDA out of memory" in body


def test_a_job_whose_worker_stopped_beating_is_shown_failed(client, actors, running, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.TRAINING_HEARTBEAT_TIMEOUT_SECONDS = 60
    TrainingJob.objects.filter(pk=running.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    client.force_login(actors.policy)

    body = client.get(reverse("training:detail", args=[running.pk]), headers=HX).content.decode()

    assert 'data-status="failed"' in body and "stopped sending heartbeats" in body


def test_a_policy_user_sees_no_cancel_button(client, actors, running):
    client.force_login(actors.policy)

    assert "Cancel job" not in client.get(reverse("training:detail", args=[running.pk])).content.decode()


def test_the_poll_costs_a_fixed_number_of_queries(client, actors, running, django_assert_num_queries):
    client.force_login(actors.admin)
    url = reverse("training:detail", args=[running.pk]) + "?metrics_after=0&logs_after=0"
    client.get(url, headers=HX)

    # session, user, roles, the lost-worker check, the job (with user and model), metric points, log lines
    with django_assert_num_queries(7):
        client.get(url, headers=HX)


# --- cancel -------------------------------------------------------------------------------------------


def test_an_admin_cancels_a_running_job_from_the_page(client, actors, running):
    client.force_login(actors.admin)
    cursor = JobLog.objects.filter(job=running).latest("pk").pk

    response = client.post(reverse("training:cancel", args=[running.pk]),
                           {"metrics_after": "999999", "logs_after": str(cursor)}, headers=HX)

    running.refresh_from_db()
    body = response.content.decode()
    assert response.status_code == 200
    assert running.cancel_requested and running.status == TrainingJob.RUNNING
    assert 'id="cancel-requested"' in body and 'id="cancel-button"' not in body
    assert "hx-trigger" in body  # keeps polling until the worker stops
    assert "cancel requested by ada_admin" in body  # the new log line, appended


def test_cancelling_a_queued_job_cancels_it_at_once(client, actors, shared):
    queued = page_data.job(actors.admin, [shared], status=TrainingJob.QUEUED, name="waiting")
    client.force_login(actors.admin)

    response = client.post(reverse("training:cancel", args=[queued.pk]), headers=HX)

    queued.refresh_from_db()
    assert queued.status == TrainingJob.CANCELLED
    assert 'data-status="cancelled"' in response.content.decode() and "hx-trigger" not in response.content.decode()


def test_cancel_without_javascript_redirects_back_to_the_job(client, actors, running):
    client.force_login(actors.admin)

    response = client.post(reverse("training:cancel", args=[running.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("training:detail", args=[running.pk])
    assert TrainingJob.objects.get(pk=running.pk).cancel_requested


def test_a_finished_job_cannot_be_cancelled(client, actors, done):
    client.force_login(actors.admin)

    response = client.post(reverse("training:cancel", args=[done.pk]), headers=HX)

    assert response.status_code == 409
    assert response["HX-Retarget"] == "#flash"
    assert "has already succeeded" in response.content.decode()


@pytest.mark.parametrize("who", ["policy", "rater"])
def test_only_an_admin_may_cancel(client, actors, running, who):
    client.force_login(getattr(actors, who))

    assert client.post(reverse("training:cancel", args=[running.pk]), headers=HX).status_code == 403
    assert not TrainingJob.objects.get(pk=running.pk).cancel_requested


def test_cancelling_an_unknown_job_is_a_404(client, actors):
    client.force_login(actors.admin)

    assert client.post(reverse("training:cancel", args=[999999]), headers=HX).status_code == 404


# --- launch -------------------------------------------------------------------------------------------


@pytest.fixture
def no_dispatch(monkeypatch):
    """Launched jobs stay queued: nothing trains in these tests."""
    sent = []
    monkeypatch.setattr(services, "training_job_dispatch", lambda *, job_id: sent.append(job_id))
    return sent


def test_the_launch_form_is_prefilled_with_the_trainers_defaults(client, actors, shared):
    from rewardmodels import ml

    defaults = ml.TrainConfig()
    client.force_login(actors.admin)

    response = client.get(reverse("training:new") + f"?exports={shared.pk}")

    body = response.content.decode()
    assert f'name="learning_rate" value="{defaults.learning_rate}"' in body
    assert f'name="batch_size" value="{defaults.batch_size}"' in body
    assert f'name="backbone" value="{defaults.backbone}"' in body
    assert re.search(r'name="bf16"[^>]*checked', body)
    assert re.search(r'value="constrained_finetune"[^>]*disabled', body)
    assert not re.search(r'value="evaluation"[^>]*disabled', body)
    assert not re.search(r'value="safety_classifier"[^>]*disabled', body)
    assert f'value="{shared.pk}" id="export-{shared.pk}" checked' in body
    assert "<details class=\"advanced\">" in body and 'name="max_grad_norm"' in body
    defaults_json = json_script(response, "kind-defaults")
    assert set(defaults_json) == {"reward_model", "cost_model", "safety_classifier", "evaluation"}
    assert defaults_json["cost_model"]["sign_weight"] == defaults.sign_weight


def test_an_admin_launches_a_job_and_lands_on_its_page(client, actors, shared, no_dispatch):
    client.force_login(actors.admin)

    response = client.post(reverse("training:new"), {
        "kind": "cost_model", "exports": [str(shared.pk)], "name": "cost v2", "backbone": "my/backbone",
        "epochs": "2", "batch_size": "8", "learning_rate": "3e-5", "max_length": "128", "eval_fraction": "0.2",
        "seed": "7", "device": "cpu", "max_steps": "", "sign_weight": "0.5",  # bf16 unticked, max_steps blank
    })

    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("training:detail", args=[job.pk])
    assert (job.kind, job.name, job.status, list(job.exports.all())) == ("cost_model", "cost v2", "queued", [shared])
    assert job.config["backbone"] == "my/backbone" and job.config["epochs"] == 2 and job.config["learning_rate"] == 3e-5
    assert job.config["bf16"] is False and job.config["sign_weight"] == 0.5 and job.config["device"] == "cpu"
    assert job.config["max_steps"] == 0  # blank keeps the default
    assert job.config["kind"] == "cost"


def test_the_service_errors_show_next_to_their_fields(client, actors, shared, no_dispatch):
    client.force_login(actors.admin)

    response = client.post(reverse("training:new"), {
        "kind": "reward_model", "exports": [str(shared.pk)], "learning_rate": "0", "eval_fraction": "0.95",
        "max_grad_norm": "-1", "device": "auto", "epochs": "1",
    })

    body = response.content.decode()
    assert response.status_code == 400
    assert not TrainingJob.objects.exists()
    assert re.search(r'id="error-learning_rate">must be in \(0, 1\] \(got 0\.0\)<', body)
    assert re.search(r'id="error-eval_fraction">must be in \[0, 0\.5\] \(got 0\.95\)<', body)
    assert 'id="error-max_grad_norm"' in body
    assert '<details class="advanced" open>' in body  # an error in an advanced setting opens the section
    assert 'name="learning_rate" value="0"' in body  # what was typed stays


def test_the_form_asks_for_an_export_and_for_numbers(client, actors, shared, no_dispatch):
    client.force_login(actors.admin)

    response = client.post(reverse("training:new"), {"kind": "reward_model", "epochs": "two"})

    body = response.content.decode()
    assert response.status_code == 400 and not TrainingJob.objects.exists()
    assert 'id="error-exports">Pick at least one export snapshot to train on.' in body
    assert 'id="error-epochs">Enter a whole number.' in body


def test_a_kind_no_worker_runs_is_refused_by_the_service(client, actors, shared, no_dispatch):
    client.force_login(actors.admin)

    response = client.post(reverse("training:new"), {"kind": "constrained_finetune", "exports": [str(shared.pk)]})

    assert response.status_code == 400 and not TrainingJob.objects.exists()
    assert "constrained_finetune jobs are not available yet" in response.content.decode()


def test_a_policy_user_cannot_launch(client, actors, shared, no_dispatch):
    client.force_login(actors.policy)

    response = client.post(reverse("training:new"), {"kind": "reward_model", "exports": [str(shared.pk)]})

    assert response.status_code == 403 and not TrainingJob.objects.exists() and not no_dispatch


# --- compare ------------------------------------------------------------------------------------------


def test_compare_highlights_config_differences_and_lays_the_curves_over_each_other(client, actors, shared, done,
                                                                                  running):
    better = page_data.job(actors.admin, [shared], name="rm v2", final_metrics=page_data.metrics(0.9))
    client.force_login(actors.policy)

    response = client.get(reverse("training:compare") + f"?jobs={done.pk}&jobs={running.pk}&jobs={better.pk}")

    body = response.content.decode()
    rows = {m.group(2): m.group(1) for m in re.finditer(r'<tr class="(differs|same)"><th scope="row"><code>(\w+)</code>', body)}
    assert rows["learning_rate"] == "differs" and rows["sign_weight"] == "differs" and rows["epochs"] == "same"
    assert "2 of 10 settings differ" in page_text(response)
    assert ('<code>accuracy</code></th><td class="num">0.8750</td><td class="num"><span class="muted">—</span></td>'
            '<td class="num best">0.9000</td>') in body
    assert '<code>loss</code></th><td class="num">0.4100</td>' in body  # equal losses: no best
    data = json_script(response, "compare-data")
    assert [j["id"] for j in data["jobs"]] == [done.pk, running.pk, better.pk]
    assert len(data["jobs"][0]["series"]["train"]["loss"]) == 10 and len(data["jobs"][1]["series"]["train"]["loss"]) == 3
    assert data["jobs"][2]["series"] == {}


@pytest.mark.parametrize("query", ["", "?jobs=1", "?jobs=x&jobs=2"])
def test_compare_needs_two_or_more_job_ids(client, actors, done, query):
    client.force_login(actors.admin)

    response = client.get(reverse("training:compare") + query)

    assert response.status_code == 400
    assert "tick two or more jobs" in response.content.decode()


# --- with the real trainer ----------------------------------------------------------------------------


def test_the_pages_read_a_job_the_ml_package_trained(client, actors, media, tiny_model_dir,
                                                     django_capture_on_commit_callbacks):
    """Launched from the form, trained in-process on a tiny BERT: the job, model and compare pages read its
    real metric series and held-out metrics (keys as the ml package writes them), and "try it" scores."""
    from rewardmodels.models import RewardModel

    from .helpers import learnable_snapshot, tiny_config

    snapshot = learnable_snapshot(actors.admin, n=24)
    client.force_login(actors.admin)
    form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in tiny_config(tiny_model_dir).items()}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("training:new"), {**form, "kind": "cost_model", "exports": [str(snapshot.pk)],
                                                         "name": "tiny cost", "device": "cpu"})
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and job.status == TrainingJob.SUCCEEDED, job.error

    page = client.get(reverse("training:detail", args=[job.pk]))
    series = json_script(page, "job-series")["series"]
    assert len(series["train"]["loss"]) == job.steps and series["eval"]["accuracy"]
    text = page_text(page)
    assert "sign_accuracy" in text and "calibration.ece" in text and "model.safetensors" in text

    model = RewardModel.objects.get(job=job)
    detail = client.get(reverse("models:detail", args=[model.pk]))
    charts = json_script(detail, "model-data")
    assert charts["calibration"]["bins"] and charts["distributions"]["harmful"]["hist"]
    assert sum(charts["distributions"]["harmful"]["hist"]) + sum(charts["distributions"]["safe"]["hist"]) > 0
    scored = client.post(reverse("models:score", args=[model.pk]), {"prompt": "question", "response": "answer rude"},
                         headers=HX)
    assert scored.status_code == 200 and 'id="score-value">' in scored.content.decode()


def test_the_list_refreshes_itself_only_while_a_job_is_queued_or_running(client, actors, done, running):
    client.force_login(actors.admin)
    assert b'hx-trigger="every 5s' in client.get("/training/").content
    assert b'hx-trigger="every 5s' not in client.get("/training/?status=succeeded").content
