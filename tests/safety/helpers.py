"""Building blocks for the safety tests: published specs, a tiny safety classifier registered as a model, guards,
and a classifier whose outputs a test sets (for decisions that must come out a given way)."""

from pathlib import Path

import yaml
from django.conf import settings

from rewardmodels.models import RewardModel
from safety import services
from taxonomy import services as spec_services
from tests.conftest import EXAMPLE_SPEC, small_document
from training.models import TrainingJob


def example_version(user):
    """The shipped example spec, published (its crosswalk covers the public taxonomies)."""
    draft = spec_services.spec_create(user=user, name="Example spec",
                                      document=yaml.safe_load(EXAMPLE_SPEC.read_text(encoding="utf-8")))
    return spec_services.spec_publish(spec=draft.spec, user=user)


def small_version(user, **overrides):
    draft = spec_services.spec_create(user=user, name="Small spec", document=small_document(**overrides))
    return spec_services.spec_publish(spec=draft.spec, user=user)


def register_classifier(actors, folder: Path, *, spec_version=None, kind=RewardModel.SAFETY, name="tiny safety"):
    """A registry row for a checkpoint folder under MEDIA_ROOT (a finished job is its provenance)."""
    job = TrainingJob.objects.create(kind=TrainingJob.SAFETY_CLASSIFIER if kind == RewardModel.SAFETY else TrainingJob.COST_MODEL,
                                     name=name, status=TrainingJob.SUCCEEDED, config={}, created_by=actors.admin)
    return RewardModel.objects.create(name=name, kind=kind, job=job,
                                      path=str(Path(folder).relative_to(settings.MEDIA_ROOT)), backbone="tiny",
                                      spec_version=spec_version, created_by=actors.admin)


def make_guard(actors, version, classifier, **kwargs):
    return services.guard_create(user=actors.admin, name=kwargs.pop("name", "Guard"), safety_classifier=classifier,
                                 spec_version=version, **kwargs)


class FakeClassifier:
    """Answers what the test set: ``outputs[prompt]`` → the classify() dict's parts (missing parts: 0.0)."""

    def __init__(self, categories: list[dict], outputs: dict[str, dict]):
        self.categories = [{"key": c["key"], "name": c["name"]} for c in categories]
        self.thresholds = {"prompt_harmful": 0.5, "response_harmful": 0.5,
                           "categories": {c["key"]: 0.5 for c in categories}}
        self.outputs = outputs
        self.calls = 0

    def classify(self, prompts, responses, batch_size=32):
        self.calls += 1
        out = []
        for prompt, response in zip(prompts, responses):
            want = self.outputs.get(prompt, {})
            refusal = want.get("refusal", "compliance")
            out.append({
                "prompt_harmful": want.get("prompt_harmful", 0.0),
                "categories": {c["key"]: want.get("categories", {}).get(c["key"], 0.0) for c in self.categories},
                "response_refusal": {k: (0.9 if k == refusal else 0.05) for k in ("compliance", "partial_refusal", "full_refusal")},
                "response_harmful": want.get("response_harmful", 0.0) if response is not None else None,
            })
        return out
