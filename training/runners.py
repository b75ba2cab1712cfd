"""The safety-classifier and evaluation runs: inputs in (job_inputs.py), the ml call, results out.

Called by ``services._train`` on a job ``services.training_job_run`` has claimed: the claim, the heartbeat
thread, the error handling and the lost-worker check are the same as for every kind; these functions only
turn the job's rows into the ml arguments and its results into the job's end state.
"""

import dataclasses
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from . import job_inputs
from .models import TrainingJob
from .services import _finish, _log, artifacts_of, metadata_backbone_name, train_hooks


def _device(requested: str) -> str:
    """The device label the trainer will report (shown on the job page while the job runs)."""
    from rewardmodels.ml.device import choose_device

    return choose_device(requested)[1]


def _spec_version_of(job: TrainingJob, prompt_sets: list, exports: list):
    """The spec version whose categories a safety classifier learns: the first prompt set's, else the
    data file's, else the first campaign export's."""
    from taxonomy.models import SpecVersion

    if prompt_sets:
        return prompt_sets[0].spec_version
    for entry in job.data_files or []:
        if entry.get("spec_version"):
            return SpecVersion.objects.select_related("spec").get(pk=entry["spec_version"])
    return next((e.spec_version for e in exports if e.spec_version_id), None)


def _export_provenance(exports: list) -> list[dict]:
    return [{"id": e.pk, "sha256": e.sha256, "name": e.name, "source": e.source, "campaign": e.campaign_id,
             "n_pairs": e.n_pairs, "spec_version": str(e.spec_version) if e.spec_version_id else None} for e in exports]


def _prompt_set_provenance(prompt_sets: list) -> list[dict]:
    return [{"id": p.pk, "sha256": p.sha256, "name": p.name, "n_prompts": p.n_prompts,
             "spec_version": str(p.spec_version)} for p in prompt_sets]


# --- the safety classifier ----------------------------------------------------------------------------


def safety_classifier_run(job: TrainingJob, host: str) -> str:
    from rewardmodels import ml
    from rewardmodels import services as registry

    from .ml import safety as safety_ml

    cfg = safety_ml.safety_config_from_dict(job.config)
    named = cfg.backbone
    cfg.backbone = ml.resolve_backbone(named, Path(settings.MODELS_DIR))  # fetches a missing default once
    prompt_sets = list(job.prompt_sets.select_related("spec_version__spec").order_by("pk"))
    exports = list(job.exports.select_related("spec_version__spec", "campaign").order_by("pk"))
    version = _spec_version_of(job, prompt_sets, exports)
    categories = [{"key": c["key"], "name": c["name"]} for c in job_inputs.spec_categories(version)]
    keys = {c["key"] for c in categories}
    dropped: dict[str, int] = {}
    rows, pairs, counts = [], [], []
    for prompt_set in prompt_sets:
        got = job_inputs.prompt_set_safety_rows(prompt_set, keys=keys, dropped=dropped)
        rows += got
        counts.append(f"{len(got)} rows from prompt set {prompt_set.pk}")
    for export in exports:
        path = Path(settings.MEDIA_ROOT) / export.path
        if not path.is_file():
            raise FileNotFoundError(f"the file of export {export.pk} is missing from storage ({export.path})")
        got_rows, got_pairs = job_inputs.export_rows(path, source=f"export {export.pk}", keys=keys, dropped=dropped)
        rows += got_rows
        pairs += got_pairs
        counts.append(f"{len(got_rows)} rows and {len(got_pairs)} pairs from export {export.pk}")
    for entry in job.data_files or []:
        got_rows, got_pairs = job_inputs.data_file_rows(entry, keys=keys, dropped=dropped)
        rows += got_rows
        pairs += got_pairs
        counts.append(f"{len(got_rows)} rows and {len(got_pairs)} pairs from data file {entry.get('name')}")
    device = _device(cfg.device)
    TrainingJob.objects.filter(pk=job.pk).update(device=device)
    _log(job.pk, f"running on {host}, device {device}; backbone {named}; {len(categories)} categories of "
                 f"{version}; {'; '.join(counts)}")
    if dropped:
        _log(job.pk, "category keys not in the spec version were left out: "
                     + ", ".join(f"{k} ({n})" for k, n in sorted(dropped.items())), level="warning")
    output_dir = Path(settings.MEDIA_ROOT) / "models" / f"job-{job.pk}"
    provenance = {
        "job": job.pk, "kind": job.kind,
        "spec_version": {"id": version.pk, "label": str(version)} if version is not None else None,
        "prompt_sets": _prompt_set_provenance(prompt_sets), "exports": _export_provenance(exports),
        "data_files": [{k: e.get(k) for k in ("name", "sha256", "n_rows", "n_pairs")} for e in job.data_files or []],
    }
    hooks, _ = train_hooks(job.pk)
    result = safety_ml.train_safety_classifier(cfg, rows=rows, pairs=pairs, categories=categories,
                                               output_dir=output_dir, provenance=provenance, hooks=hooks)
    metadata_backbone_name(result.output_dir, named)
    common = {"device": result.device, "versions": result.versions, "steps": result.steps}
    if result.status == "cancelled":
        _log(job.pk, f"cancelled after {result.steps} steps")
        _finish(job.pk, TrainingJob.CANCELLED, **common)
        return TrainingJob.CANCELLED
    with transaction.atomic():
        if not _finish(job.pk, TrainingJob.SUCCEEDED, progress=1.0, final_metrics=result.metrics,
                       artifacts=artifacts_of(result.output_dir), **common):
            return TrainingJob.objects.get(pk=job.pk).status
        registry.reward_model_register(job=job, exports=exports, output_dir=result.output_dir, metrics=result.metrics,
                                       config={**dataclasses.asdict(cfg), "backbone": named}, spec_version=version)
        _log(job.pk, f"succeeded in {result.seconds:.1f} s: {result.n_train} training rows, {result.n_eval} held out")
    return TrainingJob.SUCCEEDED


# --- the evaluation -----------------------------------------------------------------------------------


def _registry_folder(model_id: int) -> Path:
    from rewardmodels.models import RewardModel

    model = RewardModel.objects.get(pk=model_id)
    folder = Path(settings.MEDIA_ROOT) / model.path
    if not folder.is_dir():
        raise FileNotFoundError(f"the checkpoint of model {model_id} is missing from storage ({model.path})")
    return folder


def evaluation_run(job: TrainingJob, host: str) -> str:
    from rewardmodels import ml

    from .ml import evaluation as evaluation_ml
    from .ml import safety as safety_ml

    cfg = evaluation_ml.evaluation_config_from_dict(job.config)
    prompt_sets = list(job.prompt_sets.select_related("spec_version__spec").order_by("pk"))
    version = prompt_sets[0].spec_version
    spec = job_inputs.evaluation_spec(version)
    prompts = []
    for prompt_set in prompt_sets:
        # "<prompt set>:<index>": each line of items.jsonl traces back to its prompt
        prompts += [{**row, "id": f"{prompt_set.pk}:{i}"} for i, row in enumerate(job_inputs.prompt_set_rows(prompt_set))]
    device = _device(cfg.device)
    TrainingJob.objects.filter(pk=job.pk).update(device=device)
    started = time.monotonic()
    classifier = safety_ml.load_classifier(_registry_folder(cfg.safety_classifier), device=cfg.device)
    reward_scorer = ml.load_scorer(_registry_folder(cfg.reward_model), device=cfg.device) if cfg.reward_model else None
    cost_scorer = ml.load_scorer(_registry_folder(cfg.cost_model), device=cfg.device) if cfg.cost_model else None
    policy_folder = None
    if not cfg.use_responses:
        policy_folder = evaluation_ml.resolve_policy(cfg.policy, Path(settings.MODELS_DIR))
    replies = "the prompt sets' own responses" if cfg.use_responses else f"replies generated by {cfg.policy}"
    _log(job.pk, f"running on {host}, device {device}; {len(prompts)} prompts from prompt set(s) "
                 f"{', '.join(str(p.pk) for p in prompt_sets)} (spec {version}); scoring {replies} with safety "
                 f"classifier {cfg.safety_classifier}"
                 + (f", reward model {cfg.reward_model}" if cfg.reward_model else "")
                 + (f", cost model {cfg.cost_model}" if cfg.cost_model else "")
                 + f"; models loaded in {time.monotonic() - started:.1f} s")
    if len(prompt_sets) > 1 and len({p.spec_version_id for p in prompt_sets}) > 1:
        _log(job.pk, f"the prompt sets come from several spec versions; categories, behaviours and budgets are "
                     f"those of {version}", level="warning")
    output_dir = Path(settings.MEDIA_ROOT) / "evaluations" / f"job-{job.pk}"
    hooks, _ = train_hooks(job.pk)
    result = evaluation_ml.evaluate(cfg, prompts=prompts, classifier=classifier, reward_scorer=reward_scorer,
                                    cost_scorer=cost_scorer, spec=spec, policy_folder=policy_folder,
                                    output_dir=output_dir, hooks=hooks)
    common = {"device": result.device, "versions": result.versions}
    if result.status == "cancelled":
        _log(job.pk, f"cancelled after {result.n_items} items")
        _finish(job.pk, TrainingJob.CANCELLED, **common)
        return TrainingJob.CANCELLED
    metrics = dict(result.metrics)
    metrics.setdefault("replies_per_second", result.replies_per_second)
    if not _finish(job.pk, TrainingJob.SUCCEEDED, progress=1.0, final_metrics=metrics,
                   artifacts=artifacts_of(output_dir), steps=result.n_items, **common):
        return TrainingJob.objects.get(pk=job.pk).status
    over_refusal = metrics.get("over_refusal")
    _log(job.pk, f"succeeded in {result.seconds:.1f} s: {result.n_items} replies scored "
                 f"({result.replies_per_second:.1f} replies/s); over-refusal "
                 + (f"{100 * over_refusal:.1f}%" if isinstance(over_refusal, (int, float)) else "n/a (no safe prompt)"))
    return TrainingJob.SUCCEEDED
