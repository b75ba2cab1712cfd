"""`manage.py demo_setup` (run by `make demo`) loads the example and prints working logins; twice is safe."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from labeling.models import Campaign, ExportSnapshot, Judgment
from rewardmodels.models import RewardModel
from safety.models import Guard, PromptSet
from training.models import TrainingJob
from taxonomy.models import Spec, SpecVersion


def run_demo_setup(*args: str) -> str:
    out = StringIO()
    call_command("demo_setup", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)  # the demo trains in a second thread, on its own connection
def test_demo_setup_loads_the_example_spec_and_a_labeled_campaign_and_prints_working_logins(
        client, tmp_path, settings, tiny_model_dir, models_dir):
    from training.ml.evaluation import build_tiny_policy

    settings.MEDIA_ROOT = tmp_path
    policy = build_tiny_policy(models_dir / "tiny-policy-demo")
    output = run_demo_setup("--backbone", tiny_model_dir, "--policy", policy.name)
    spec = Spec.objects.get()
    assert [(v.number, v.status) for v in SpecVersion.objects.filter(spec=spec)] == [(1, "published"), (2, "draft")]
    # The login lockout's backend needs the request (whose address it counts).
    assert authenticate(RequestFactory().post("/login/"), username="policy", password="policy-demo-pass") is not None
    token_line = next(line for line in output.splitlines() if line.strip().startswith("policy "))
    token = token_line.split()[-1]
    assert client.get(f"/api/v1/specs/{spec.id}/diff/", HTTP_AUTHORIZATION=f"Token {token}").json()["n_changes"] > 0
    # The demo campaign holds real pairs and clearly labelled simulated judgments.
    campaign = Campaign.objects.get()
    assert campaign.tasks.count() == 240 and campaign.spec_version.status == "published"
    raters = {j.rater.username: j.rater for j in Judgment.objects.select_related("rater")}
    assert raters and all(name.startswith("sim-rater-") and u.first_name == "Simulated" for name, u in raters.items())
    # Part of the work is left for the human demo raters.
    assert 0 < Judgment.objects.count() < campaign.tasks.count() * campaign.overlap
    assert set(campaign.raters.values_list("username", flat=True)) >= {"rater1", "rater2"}
    export = ExportSnapshot.objects.get(campaign=campaign)
    assert export.n_pairs > 0
    # A reward and a cost model trained from that export, in the registry with their jobs.
    models = {m.kind: m for m in RewardModel.objects.select_related("job")}
    assert set(models) == {"reward", "cost", "safety"}
    assert all(m.job.status == "succeeded" and list(m.exports.all()) == [export] for m in models.values())
    assert f"/training/{models['reward'].job_id}/" in output and "held-out pair accuracy" in output
    # The safety instruments: the spec's examples and the shipped samples as prompt sets, a classifier trained on
    # them, a guard whose log has rows, and one evaluation of a policy with its per-label figures.
    sets = {p.source: p for p in PromptSet.objects.all()}
    assert PromptSet.objects.count() == 4 and {"spec_examples", "csv", "jsonl"} <= set(sets)
    assert sets["csv"].n_prompts == 60 and not sets["csv"].unmapped and sets["csv"].by_label["unsafe"] == 60
    assert set(models["safety"].job.prompt_sets.all()) == set(PromptSet.objects.all())
    guard = Guard.objects.get()
    assert guard.safety_classifier == models["safety"] and guard.log_decisions and guard.decisions.count() == 6
    evaluation = TrainingJob.objects.get(kind="evaluation")
    assert evaluation.status == "succeeded", evaluation.error
    assert evaluation.final_metrics["n"] == 48 and set(evaluation.final_metrics["by_label"]) == {"safe", "unsafe"}
    assert f"/training/{evaluation.pk}/" in output and "over-refusal on safe prompts" in output


@pytest.mark.django_db
def test_demo_setup_twice_changes_nothing(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    run_demo_setup("--skip-training")
    judgments = Judgment.objects.count()
    run_demo_setup("--skip-training")
    assert Spec.objects.count() == 1 and SpecVersion.objects.count() == 2
    assert Campaign.objects.count() == 1 and Judgment.objects.count() == judgments
    assert PromptSet.objects.count() == 4
