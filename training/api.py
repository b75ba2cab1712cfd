"""REST API for training jobs (SPEC section 6): launch, list, detail with metric series, logs, cancel."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from specloop.errors import ValidationFailed
from specloop.roles import IsAdmin, IsPolicyOrAdmin
from specloop.serializers import Body, Choice, Integer, List, Object, Text, body_parse

from . import selectors, services
from .models import JobLog, TrainingJob


def job_out(job: TrainingJob, *, full: bool = False) -> dict[str, Any]:
    reward_model = getattr(job, "reward_model", None) if job.status == TrainingJob.SUCCEEDED else None
    out = {
        "id": job.pk, "name": job.name, "kind": job.kind, "status": job.status,
        "progress": round(job.progress, 4), "eta_seconds": job.eta_seconds,
        "exports": sorted(e.pk for e in job.exports.all()),
        "prompt_sets": sorted(p.pk for p in job.prompt_sets.all()),
        "reward_model": reward_model.pk if reward_model else None,
        "error": job.error, "cancel_requested": job.cancel_requested, "steps": job.steps,
        "worker_host": job.worker_host, "device": job.device,
        "created_by": job.created_by.username, "created_at": job.created_at, "started_at": job.started_at,
        "heartbeat_at": job.heartbeat_at, "finished_at": job.finished_at, "seconds": job.seconds,
    }
    if full:
        out.update({
            "config": job.config, "attempts": job.attempts, "versions": job.versions, "artifacts": job.artifacts,
            "data_files": [{k: f.get(k) for k in ("name", "sha256", "n_rows", "n_pairs")} for f in job.data_files or []],
            "metrics": {"final": job.final_metrics, "series": selectors.job_metric_series(job=job)},
        })
    return out


def log_out(line: JobLog) -> dict[str, Any]:
    return {"id": line.pk, "at": line.created_at, "level": line.level, "message": line.message}


class JobOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(TrainingJob.KIND_CHOICES)
    status = serializers.CharField()
    progress = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)
    exports = serializers.ListField(child=serializers.IntegerField())
    prompt_sets = serializers.ListField(child=serializers.IntegerField(), help_text="prompt set ids")
    reward_model = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    cancel_requested = serializers.BooleanField()
    steps = serializers.IntegerField()
    worker_host = serializers.CharField()
    device = serializers.CharField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)


class JobDetailOut(JobOut):
    config = serializers.DictField()
    attempts = serializers.IntegerField()
    versions = serializers.DictField()
    artifacts = serializers.ListField(child=serializers.DictField())
    data_files = serializers.ListField(child=serializers.DictField(), help_text=(
        "server-side inputs (manage.py safety_classifier_train's public rows): name, sha256, n_rows, n_pairs"))
    metrics = inline_serializer("JobMetrics", {"final": serializers.DictField(), "series": serializers.DictField()})


class LogOut(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    level = serializers.CharField()
    message = serializers.CharField()


class JobCreateIn(Body):
    """A launch; the config's keys and ranges, and the exports you may use, are checked by the job service."""

    not_object_message = 'send a JSON object: {"kind", "export" or "exports" and/or "prompt_sets", "config"}'
    kind = Choice(TrainingJob.KIND_CHOICES,
                  message=f"must be one of {', '.join(k for k, _ in TrainingJob.KIND_CHOICES)}")
    export = Integer(required=False, help_text="one export snapshot id")
    exports = List(child=Integer(), required=False, allow_empty=False, help_text="several snapshots, trained together",
                   message='name at least one export snapshot: "export": id or "exports": [ids]')
    prompt_sets = List(child=Integer(), required=False, help_text=(
        "prompt set ids: an evaluation's prompts (at least one), a safety classifier's labelled rows"),
        message='send a list of prompt set ids, e.g. "prompt_sets": [3, 4]')
    config = Object(required=False, allow_null=True, help_text=(
        "per kind. reward_model / cost_model: backbone, max_length, batch_size, epochs, learning_rate, seed, "
        "eval_fraction, use_margin, center_rewards, sign_weight, grad_accum, max_steps, eval_every, device, bf16, "
        "max_pairs. safety_classifier: backbone, max_length, batch_size, epochs, learning_rate, seed, "
        "eval_fraction, per-head loss weights, ... evaluation: policy, use_responses, safety_classifier, "
        "reward_model, cost_model (registry ids), max_new_tokens, batch_size, do_sample, temperature, top_p, "
        "seed, max_prompts, device, bf16"))
    name = Text(required=False, allow_blank=True, max_length=200, message="must be text of at most 200 characters")
    idempotency_key = Text(required=False, max_length=200, help_text=(
        "makes a retry safe: the same key (here or in the Idempotency-Key header) with the same request "
        "returns the first job and creates nothing; with a different request it is a 409"))

    def validate(self, attrs):
        if "export" in attrs and "exports" in attrs:
            raise serializers.ValidationError({"exports": 'send either "export" or "exports", not both'})
        return attrs


class TrainingJobListCreateApi(APIView):
    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "POST" else [IsPolicyOrAdmin()]

    @extend_schema(operation_id="training_jobs_list", summary="Training jobs, newest first",
                   parameters=[OpenApiParameter("status", str), OpenApiParameter("kind", str)],
                   responses=JobOut(many=True))
    def get(self, request: Request) -> Response:
        services.training_jobs_reap()
        jobs = selectors.job_list(user=request.user).prefetch_related("exports", "prompt_sets")
        for field in ("status", "kind"):
            if value := request.query_params.get(field):
                jobs = jobs.filter(**{field: value})
        return Response([job_out(j) for j in jobs[:500]])

    @extend_schema(summary="Launch a training job on the gpu queue", request=JobCreateIn,
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, description=(
                       "a key made once per launch (a UUID) and sent again on retries: a retry returns the "
                       "first job (200) instead of launching a second"))],
                   responses={201: JobDetailOut, 200: JobDetailOut})
    def post(self, request: Request) -> Response:
        data = body_parse(JobCreateIn, request.data)
        key = request.headers.get("Idempotency-Key", "")
        if "idempotency_key" in data and key and data["idempotency_key"] != key:
            raise ValidationFailed.one("idempotency_key", "differs from the Idempotency-Key header; send one of them")
        job = services.training_job_create(
            user=request.user, kind=data.get("kind"), export_ids=data.get("exports", data.get("export")),
            prompt_set_ids=data.get("prompt_sets"), config=data.get("config"), name=data.get("name", ""), idempotency_key=data.get("idempotency_key", key))
        replayed = job.replayed
        job.refresh_from_db()
        return Response(job_out(job, full=True), status=200 if replayed else 201)


class TrainingJobDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="A job: status, progress, metric series, artifacts, model", responses=JobDetailOut)
    def get(self, request: Request, job_id: int) -> Response:
        services.training_jobs_reap()
        return Response(job_out(selectors.job_get(user=request.user, job_id=job_id), full=True))


class TrainingJobLogsApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Log lines (the tail, or those after ?after=ID)",
                   parameters=[OpenApiParameter("after", int)], responses=LogOut(many=True))
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            raise ValidationFailed.one("after", "must be a log line id (a whole number)")
        return Response([log_out(line) for line in selectors.job_logs(job=job, after=int(after))])


class TrainingJobCancelApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(summary="Cancel a queued or running job", request=None, responses=JobOut)
    def post(self, request: Request, job_id: int) -> Response:
        job = services.training_job_cancel(job=selectors.job_get(user=request.user, job_id=job_id), user=request.user)
        return Response(job_out(job))


class TrainingJobArtifactApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Download one artifact of a job (checkpoint weights, config, tokenizer, metadata)",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, job_id: int, name: str) -> FileResponse:
        job = selectors.job_get(user=request.user, job_id=job_id)
        artifact = next((a for a in job.artifacts if a.get("name") == name), None)
        if artifact is None:
            raise Http404("No such artifact.")
        path = Path(settings.MEDIA_ROOT) / artifact["path"]
        if not path.is_file():
            raise Http404("The artifact is missing from storage.")
        # A download whatever the file's kind (weights, json, txt): never typed from its name, never rendered.
        return FileResponse(open(path, "rb"), as_attachment=True, filename=f"job-{job.pk}-{name}",
                            content_type="application/octet-stream")
