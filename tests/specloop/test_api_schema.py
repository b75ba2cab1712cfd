"""The OpenAPI schema states what the API accepts and answers: schemathesis runs every operation.

Each operation is called in-process through the WSGI app, as an admin, a policy editor and a rater,
with bodies and parameters the schema allows (positive) and ones it forbids (negative), on a database
holding a spec (a published version and a draft), a campaign with items and raters, an open
assignment, a judgment, an export snapshot, a training job and a registered model. Path ids are the
real objects' ids half the time, so the operations get past their 404s. Checked on every answer: no
5xx; the status code is one the schema lists; the body and content type match what it documents; a
body or parameter the schema forbids is refused with a 4xx.

Deterministic (derandomized Hypothesis, no example database) so CI sees the same cases every run.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings, strategies as st
from hypothesis.errors import Unsatisfiable

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.config._checks import (  # noqa: E402
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    NegativeDataRejectionConfig,
)
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from django.conf import settings as django_settings  # noqa: E402

from labeling import services as labeling_services  # noqa: E402
from labeling.models import ExportSnapshot  # noqa: E402
from rewardmodels.models import RewardModel  # noqa: E402
from tests.conftest import small_document  # noqa: E402
from tests.labeling.helpers import judge, jsonl, make_campaign  # noqa: E402
from training.models import TrainingJob  # noqa: E402

# Cases per operation, role and mode; SPECLOOP_SCHEMA_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("SPECLOOP_SCHEMA_EXAMPLES", "12"))
ROLES = ("admin", "policy", "rater")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
# Item and pair files are documented as strings; they go on the wire as the text itself.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


# Operations no generated case can get a 2xx from here, and why.
NO_SUCCESS_HERE = {
    "GET /api/v1/imports/{job_id}/": "import jobs exist only for files over IMPORT_ASYNC_BYTES",
    "POST /api/v1/reward-models/{model_id}/score/": "scoring needs a trained checkpoint (tests/rewardmodels train one)",
}


def _valid_requests(ids: dict, actors) -> dict[str, dict]:
    """A request each write operation takes (as the role allowed to), sent in place of a generated one
    now and then, so the success paths and their documented answers are checked too."""
    pairs = '{"prompt": "p", "chosen": "yes", "rejected": "no"}'
    requests = {
        "POST /api/v1/specs/": {"body": {"name": "Generated", "document": small_document()}},
        "POST /api/v1/specs/{spec_id}/versions/": {"body": {"document": small_document()}},
        "PUT /api/v1/specs/{spec_id}/versions/{number}/": {"body": {"document": small_document()}},
        "POST /api/v1/specs/{spec_id}/editors/": {"body": {"usernames": [actors.policy2.username]}},
        "POST /api/v1/campaigns/": {"body": {"name": "Generated", "spec": ids["spec_id"], "overlap": 2}},
        "POST /api/v1/campaigns/{campaign_id}/raters/": {"body": {"usernames": [actors.rater.username]}},
        "POST /api/v1/campaigns/{campaign_id}/items/": {
            "body": jsonl(1, prefix="generated"), "media_type": "application/x-ndjson", "query": {}},
        "POST /api/v1/assignments/{assignment_id}/skip/": {  # one the judgment operation leaves open
            "body": {"reason": "unclear"}, "path_parameters": {"assignment_id": ids["skippable_assignment_id"]}},
        "POST /api/v1/tasks/{task_id}/adjudication/": {"body": {"preference": 1, "note": "x is safer"}},
        "POST /api/v1/exports/import/": {"body": pairs, "media_type": "application/x-ndjson",
                                         "query": {"format": "trl", "name": "generated"}},
        "POST /api/v1/training-jobs/": {"body": {"kind": "reward_model", "export": ids["export_id"],
                                                 "config": {"epochs": 1}}},
        "POST /api/v1/prompt-sets/": {"body": '{"prompt": "p", "label": "safe"}', "media_type": "application/x-ndjson",
                                      "query": {"name": "generated", "spec": ids["spec_id"]}},
        "POST /api/v1/prompt-sets/from-spec/": {"body": {"spec": ids["spec_id"]}},
        "POST /api/v1/guards/": {"body": {"name": "generated", "safety_classifier": ids["safety_classifier_id"]}},
        "POST /api/v1/guard/score/": {"body": {"prompt": "p", "response": "r"}},
        "POST /api/v1/guards/{guard_id}/decisions/send/": {
            "body": {"decisions": [ids["decision_id"]], "campaign": ids["campaign_id"]}},
    }
    for request in requests.values():
        request.setdefault("media_type", "application/json")
    return requests


def _world(actors) -> dict[str, object]:
    """Real objects for the path parameters, named as the URL patterns name them."""
    campaign = make_campaign(actors, overlap=2, n_items=4, raters=("rater", "rater2"))
    labeling_services.items_import(campaign=campaign, text=jsonl(2, prefix="more"), fmt="jsonl")
    judgment = judge(campaign, actors.rater2, prefer_x=1)
    assignment = labeling_services.next_task_assign(campaign=campaign, rater=actors.rater)
    other = make_campaign(actors, overlap=1, n_items=1, raters=("rater",))
    skippable = labeling_services.next_task_assign(campaign=other, rater=actors.rater)
    export = labeling_services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={})
    spec = campaign.spec_version.spec  # its draft, version 2, is made by the draft-create operation
    job = TrainingJob.objects.create(kind=TrainingJob.REWARD_MODEL, name="running", status=TrainingJob.RUNNING,
                                     config={}, created_by=actors.admin,
                                     artifacts=[{"name": "config.json", "path": "jobs/1/config.json"}])
    job.exports.set([export])
    artifact = Path(django_settings.MEDIA_ROOT) / "jobs/1/config.json"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_text("{}")
    done = TrainingJob.objects.create(kind=TrainingJob.REWARD_MODEL, name="done", status=TrainingJob.SUCCEEDED,
                                      config={}, created_by=actors.admin)
    model = RewardModel.objects.create(name="rm", kind=RewardModel.REWARD, job=done, path="missing-model",
                                       backbone="tiny", created_by=actors.admin)
    assert isinstance(export, ExportSnapshot)
    from django.utils import timezone

    from safety import services as safety_services
    from safety.models import PromptSetImport
    from training.ml.safety import build_tiny_classifier

    version = campaign.spec_version
    prompt_set = safety_services.prompt_set_from_spec_examples(user=actors.admin, spec_version=version)
    build_tiny_classifier(Path(django_settings.MEDIA_ROOT) / "models/tiny-safety", version.document["categories"])
    trained = TrainingJob.objects.create(kind=TrainingJob.SAFETY_CLASSIFIER, name="safety", status=TrainingJob.SUCCEEDED,
                                         config={}, created_by=actors.admin)
    classifier = RewardModel.objects.create(name="safety", kind=RewardModel.SAFETY, job=trained, path="models/tiny-safety",
                                            backbone="tiny", spec_version=version, created_by=actors.admin)
    guard = safety_services.guard_create(user=actors.admin, name="guard", safety_classifier=classifier,
                                         spec_version=version, log_decisions=True)
    decision = safety_services.guard_score(guard=guard, items=[{"prompt": "p", "response": "r"}], user=actors.admin)
    finished = PromptSetImport.objects.create(owner=actors.admin, spec_version=version, name="done", status="succeeded",
                                              prompt_set=prompt_set, progress=1.0, finished_at=timezone.now())
    return {
        "prompt_set_id": prompt_set.pk, "guard_id": guard.pk, "decision_id": decision[0]["decision_id"],
        "safety_classifier_id": classifier.pk, "import_id": finished.pk,
        "spec_id": spec.pk, "number": 2, "campaign_id": campaign.pk, "assignment_id": assignment.pk, "skippable_assignment_id": skippable.pk,
        "judgment_id": judgment.pk, "task_id": judgment.task_id, "export_id": export.pk, "job_id": job.pk,
        "model_id": model.pk, "name": "config.json",
    }


@pytest.fixture
def wsgi_app():
    """The project's WSGI app, keeping the test's database connection (and transaction) open between requests."""
    from django.core import signals
    from django.db import close_old_connections

    from specloop.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield application
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_every_operation_answers_what_the_schema_states(actors, wsgi_app, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    ids = _world(actors)
    valid = _valid_requests(ids, actors)
    tokens = {role: getattr(actors, f"{role}_token") for role in ROLES}
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", wsgi_app, headers={"Authorization": f"Token {tokens['admin']}"})
    # The API refuses NUL in text (PostgreSQL cannot store it): 400, documented; valid cases leave it out.
    schema.config.generation.update(allow_x00=False)
    # A body over the upload limit is refused with 413 (documented), before anything reads it.
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=[*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"])
    failures: dict[str, set[str]] = defaultdict(set)
    answered: dict[str, set[int]] = defaultdict(set)  # status codes seen per operation
    n_cases = 0

    def run(operation, role: str, mode) -> None:
        @given(case=operation.as_strategy(generation_mode=mode), how=st.sampled_from(("generated", "real ids", "known")))
        @hypothesis_settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def check(case, how: str) -> None:
            nonlocal n_cases
            if how != "generated" and mode.is_positive and case.path_parameters:
                case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
            if how == "known" and mode.is_positive and operation.label in valid:
                for attribute, value in valid[operation.label].items():
                    setattr(case, attribute, value)
            n_cases += 1
            headers = {"Authorization": f"Token {tokens[role]}"}
            response = case.call(headers=headers)
            answered[operation.label].add(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:  # recorded, not raised: shrinking would only cost time
                for failure in group.exceptions:
                    message = " ".join(failure.message.split())[:240]
                    failures[f"{operation.label} as {role} ({mode.value})"].add(
                        f"{failure.title}: {message} [{response.status_code} {response.text[:200]}]"
                        f"\n      {case.as_curl_command(headers=headers)[:300]}")

        try:
            check()
        except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
            assert not mode.is_positive, f"no valid case for {operation.label}"

    operations = [result.ok() for result in schema.get_all_operations()]
    # Publishing and cancelling end what the other operations work on (the draft, the running job): last.
    for operation in sorted(operations, key=lambda op: op.label.endswith(("/publish/", "/cancel/"))):
        for role in ROLES:
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                run(operation, role, mode)

    # The cases reach the operations' work, not only their 400s, 403s and 404s.
    never_succeeded = sorted(label for label, codes in answered.items()
                             if not any(200 <= c < 300 for c in codes) and label not in NO_SUCCESS_HERE)
    assert not never_succeeded, "operations no case got a 2xx from: " + ", ".join(
        f"{label} (answered {sorted(answered[label])})" for label in never_succeeded)
    report = "\n".join(f"{where}:\n  " + "\n  ".join(sorted(msgs)) for where, msgs in sorted(failures.items()))
    assert not failures, f"{len(failures)} operation/role/mode runs failed out of {n_cases} cases:\n{report}"
