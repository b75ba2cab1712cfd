"""The recipe of the default safety classifier: train it from the public files and register it.

    python manage.py safety_classifier_train --public-data ../shared/data [--spec ID]

1. The spec: the latest published version of ``--spec``; without one, the shipped example spec
   (taxonomy/example_spec.yaml), loaded and published once when no spec of its name exists.
2. The rows: ``training.ml.safety.public_rows`` reads Do-Not-Answer, AILuminate, HarmBench, AdvBench and
   HH-RLHF (the mix and label mapping are documented there), their public codes mapped to the spec's
   categories through the spec's crosswalk (``safety.crosswalk.crosswalk_index``).
3. The job: the rows and pairs are written once as a JSON-lines data file under MEDIA_ROOT/safety-data/
   (named by its sha256; see training/job_inputs.py) and a ``safety_classifier`` job is created on it
   through the same service as every job (``training_job_create``, config validated the same way), then
   run here in the foreground with the same claim, heartbeat and cancel machinery, printing its progress.
   A data file rather than prompt sets because public rows carry labels a prompt row cannot (several
   labelled replies per prompt, "no category label" apart from "labelled none", harm pairs).
4. The model is registered (kind ``safety``); its id is printed on the LAST line.
"""

import threading
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from specloop.errors import ValidationFailed
from specloop.roles import ADMIN
from training import job_inputs
from training import services as training_services
from training.models import TrainingJob

EXAMPLE_NAME = "SpecLoop example safety spec"  # the name `make demo` loads it under: one example spec, not two
SERVICE_USER = "safety-trainer"
PROGRESS_EVERY_SECONDS = 10.0


def _eta(seconds) -> str:
    from training.views import duration_label

    return duration_label(seconds) if seconds else "—"


class Command(BaseCommand):
    help = ("Train the default safety classifier from the public files (../shared/data layout) on a spec's "
            "categories, register it, and print its model id on the last line.")

    def add_arguments(self, parser):
        parser.add_argument("--public-data", required=True, type=Path, help="folder in the ../shared/data layout")
        parser.add_argument("--spec", type=int, help="spec id (its latest published version); default: the example spec")
        parser.add_argument("--backbone", default="", help="a folder in MODELS_DIR or a hub id; default: MiniLM")
        parser.add_argument("--max-rows", type=int, default=0,
                            help="read at most this many items of each public file (a quick run); 0 = the default mix")
        parser.add_argument("--epochs", type=int, help="passes over the rows (default: the trainer's)")
        parser.add_argument("--max-steps", type=int, help="optimizer steps cap (default: none)")
        parser.add_argument("--device", default="", help="auto | cpu | cuda (default: auto)")
        parser.add_argument("--name", default="default safety classifier", help="the registered model's name")
        parser.add_argument("--user", default="", help=(
            "who the job and a loaded example spec are recorded under (an admin); default: the first admin, "
            f"else a user {SERVICE_USER!r} made for it"))

    def handle(self, *args, **options):
        from safety.crosswalk import crosswalk_index
        from training.ml import safety as safety_ml

        data_dir = options["public_data"]
        if not data_dir.is_dir():
            raise CommandError(f"--public-data: no folder {data_dir}")
        user = self._user(options["user"])
        version = self._spec_version(options["spec"], user)
        categories = [c for c in version.document.get("categories") or [] if isinstance(c, dict)]
        self.stdout.write(f"spec: {version} ({len(categories)} categories)")

        limits = {}
        if options["max_rows"]:
            limits = {k: options["max_rows"] for k in safety_ml.data.DEFAULT_LIMITS if k != "do_not_answer_replies"}
        started = time.monotonic()
        rows, pairs, report = safety_ml.public_rows(data_dir, crosswalk=crosswalk_index(categories), seed=0, **limits)
        if not rows or len(report.get("missing") or []) >= len(safety_ml.data.FILES):
            raise CommandError(f"--public-data: none of the public files is under {data_dir} (looked for "
                               f"{', '.join(safety_ml.data.FILES.values())})")
        self._report(report, time.monotonic() - started)

        entry = job_inputs.data_file_write(rows=rows, pairs=pairs, spec_version=version, name=f"public data ({data_dir.name})")
        config = {}
        if options["backbone"]:
            config["backbone"] = options["backbone"]
        for key in ("epochs", "max_steps"):
            if options[key] is not None:
                config[key] = options[key]
        if options["device"]:
            config["device"] = options["device"]
        try:
            job = training_services.training_job_create(
                user=user, kind=TrainingJob.SAFETY_CLASSIFIER, config=config, data_files=[entry],
                name=options["name"], dispatch=False)
        except ValidationFailed as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"job {job.pk}: /training/{job.pk}/ · {entry['n_rows']} rows, {entry['n_pairs']} pairs "
                          f"(data file sha256 {entry['sha256'][:12]})")
        job = self._run(job)
        if job.status != TrainingJob.SUCCEEDED:
            raise CommandError(f"job {job.pk} {job.status}: {job.error or 'see its log'}")
        self._summary(job)
        self.stdout.write(str(job.reward_model.pk))

    # --- steps -------------------------------------------------------------------------------------

    def _user(self, username: str):
        from specloop.roles import has_role
        from specloop.services import user_upsert

        User = get_user_model()
        if username:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"--user: no user {username!r}")
            return user
        for user in User.objects.filter(is_active=True).order_by("pk"):
            if user.is_superuser or has_role(user, ADMIN):
                return user
        return user_upsert(username=SERVICE_USER, role_names=[ADMIN])[0]

    def _spec_version(self, spec_id: int | None, user):
        from taxonomy import services as spec_services
        from taxonomy.models import Spec, SpecVersion
        from taxonomy.views import example_document

        if spec_id is not None:
            version = (SpecVersion.objects.select_related("spec").filter(spec_id=spec_id, status=SpecVersion.PUBLISHED)
                       .order_by("-number").first())
            if version is None:
                raise CommandError(f"--spec: spec {spec_id} does not exist or has no published version; publish one first")
            return version
        spec = Spec.objects.filter(name=EXAMPLE_NAME).order_by("pk").first()
        if spec is not None:
            version = spec.versions.filter(status=SpecVersion.PUBLISHED).order_by("-number").first()
            if version is not None:
                return version
        draft = spec_services.spec_create(user=user, name=EXAMPLE_NAME, document=example_document(), description=(
            "Written for SpecLoop from public taxonomies (AILuminate, Llama Guard, BeaverTails, Do-Not-Answer)."))
        self.stdout.write(f"loaded the example spec as spec {draft.spec_id}")
        return spec_services.spec_publish(spec=draft.spec, user=user)

    def _report(self, report: dict, seconds: float) -> None:
        self.stdout.write(f"read {report['rows']} rows and {report['pairs']} harm pairs in {seconds:.1f} s:")
        for source, counts in report["by_source"].items():
            heads = ", ".join(f"{head} {n}" for head, n in counts.items() if head not in ("rows", "pairs") and n)
            self.stdout.write(f"  {source:<14} {counts['rows']:>6} rows {counts['pairs']:>5} pairs  ({heads})")
        for taxonomy, codes in (report.get("unmapped") or {}).items():
            shown = ", ".join(f"{code} ({n})" for code, n in sorted(codes.items(), key=lambda kv: -kv[1])[:8])
            self.stdout.write(f"  unmapped {taxonomy} codes (rows left without a category label): {shown}")
        if report.get("missing"):
            self.stdout.write(f"  missing files (skipped): {', '.join(report['missing'])}")

    def _run(self, job: TrainingJob) -> TrainingJob:
        """Run the job in a thread here and print its progress from the job row (what the job page shows)."""
        finished = threading.Event()

        def run() -> None:
            try:
                training_services.training_job_run(job_id=job.pk)
            finally:
                connection.close()
                finished.set()

        thread = threading.Thread(target=run, name=f"safety-classifier-job-{job.pk}")
        thread.start()
        started = time.monotonic()
        last = -1.0
        while not finished.wait(1.0):
            row = TrainingJob.objects.filter(pk=job.pk).values("status", "progress", "eta_seconds", "steps").first()
            elapsed = time.monotonic() - started
            if row and row["status"] == TrainingJob.RUNNING and elapsed - last >= PROGRESS_EVERY_SECONDS:
                last = elapsed
                self.stdout.write(f"  {100 * row['progress']:5.1f}% · step {row['steps']} · "
                                  f"{_eta(elapsed)} so far · ETA {_eta(row['eta_seconds'])}")
        thread.join()
        job.refresh_from_db()
        self.stdout.write(f"  {100 * job.progress:5.1f}% · step {job.steps} · {job.status} in "
                          f"{_eta(time.monotonic() - started)}")
        return job

    def _summary(self, job: TrainingJob) -> None:
        metrics = job.final_metrics or {}

        def fig(value) -> str:
            return f"{value:.3f}" if isinstance(value, (int, float)) else "—"

        refusal = metrics.get("response_refusal") or {}
        comparison = refusal.get("string_match") or {}
        self.stdout.write(f"held out: prompt_harmful AUROC {fig((metrics.get('prompt_harmful') or {}).get('auroc'))}, "
                          f"response_harmful AUROC {fig((metrics.get('response_harmful') or {}).get('auroc'))}, "
                          f"categories macro AUROC {fig((metrics.get('categories') or {}).get('macro_auroc'))}, "
                          f"refusal accuracy {fig(refusal.get('accuracy'))} / macro F1 {fig(refusal.get('macro_f1'))}")
        for subset in ("overall", "non_templated"):
            part = comparison.get(subset) or {}
            self.stdout.write(f"  refusal {subset}: head macro F1 {fig((part.get('head') or {}).get('macro_f1'))} vs "
                              f"string match {fig((part.get('string_match') or {}).get('macro_f1'))}")
        model = job.reward_model
        self.stdout.write(self.style.SUCCESS(f"registered {model.name!r}: /models/{model.pk}/ (job {job.pk})"))
