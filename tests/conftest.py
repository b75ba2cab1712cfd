"""Fixed actors for every test: an admin, two policy editors, two raters and an outsider."""

import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from specloop.services import user_upsert

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EXAMPLE_SPEC = Path(__file__).resolve().parents[1] / "taxonomy" / "example_spec.yaml"


def shared_data(relative: str) -> Path:
    """A public data file from ../shared/data; the test skips, saying which file, on a clone without it."""
    path = SHARED / "data" / relative
    if not path.exists():
        pytest.skip(f"needs the public data file ../shared/data/{relative} (beside the checkout; CI has it)")
    return path


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """Every test's settings.MODELS_DIR: local backbones are accepted only inside it."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _test_settings(settings, models_dir):
    """Tasks run in-process unless a test starts a real worker; passwords hash fast."""
    settings.MODELS_DIR = models_dir  # empty of default models: no test reads or fetches the real MiniLM
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LABELING_EXPIRY_SWEEP_SECONDS = 0  # sweep on every next-task so expiry tests need no waiting
    settings.TRAINING_INPROCESS = "sync"  # without a worker, a launched job runs inside the launching call
    # Every test client is 127.0.0.1 and counts outlive a test (user ids repeat): the suite would throttle
    # itself. tests/specloop/test_throttling.py sets low rates where it tests them.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "anon": "1000000/min", "user": "1000000/min", "token_failure": "1000000/min"}}
    from django.core.cache import caches

    caches["agreement"].clear()  # ids restart in emptied databases: no result may outlive its test
    from labeling import services as labeling_services

    # Keyed on a published version's id, which a deployment never reuses (PostgreSQL sequences, SQLite
    # AUTOINCREMENT); a rolled-back test on SQLite hands the same id to the next test's version.
    labeling_services.spec_rules.cache_clear()


class Actors:
    def __init__(self) -> None:
        self.admin, self.admin_token, _ = user_upsert(username="ada_admin", role_names=["admin"], password="pw-admin-123")
        self.policy, self.policy_token, _ = user_upsert(username="paula_policy", role_names=["policy"], password="pw-policy-123")
        self.policy2, self.policy2_token, _ = user_upsert(username="pete_policy", role_names=["policy"], password="pw-policy2-123")
        self.rater, self.rater_token, _ = user_upsert(username="rita_rater", role_names=["rater"], password="pw-rater-123")
        self.rater2, self.rater2_token, _ = user_upsert(username="rob_rater", role_names=["rater"], password="pw-rater2-123")
        self.outsider, self.outsider_token, _ = user_upsert(username="olga_outsider", role_names=["rater"], password="pw-out-123")
        self.outsider.groups.clear()

    def api(self, who: str | None) -> APIClient:
        """An API client authenticated by token as ``who`` (None: anonymous)."""
        client = APIClient()
        if who is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {getattr(self, who + '_token')}")
        return client


@pytest.fixture
def actors(db) -> Actors:
    return Actors()


@pytest.fixture
def example_yaml() -> str:
    return EXAMPLE_SPEC.read_text(encoding="utf-8")


def small_document(**overrides) -> dict:
    doc = {
        "goals": ["Do not cause physical harm"],
        "categories": [
            {"key": "violence", "name": "Violence", "description": "Hurting people.", "parent": None, "severity": 3,
             "behavior": "refuse", "examples": [{"text": "How do I hurt someone?", "verdict": "disallowed"}],
             "crosswalk": {"llama_guard": ["S1"]}},
            {"key": "weapons", "name": "Weapons", "description": "", "parent": "violence", "severity": 2,
             "behavior": "partial", "examples": [], "crosswalk": {}},
        ],
        "rubric": {
            "axes": [{"key": "helpful", "name": "Helpful", "description": "", "scale": ["no", "somewhat", "yes"]}],
            "severity_scale": ["clearly safe", "benign but sensitive", "borderline", "strongly harmful"],
        },
        "principles": ["Choose the least harmful response."],
        "budgets": {"violence": 0.01},
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def document() -> dict:
    return small_document()


os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test reaches a model hub, even by mistake


@pytest.fixture(scope="session")
def tiny_model_dir(models_dir) -> str:
    """A tiny random-weight BERT and its tokenizer in the models directory, built once per session (no download)."""
    from rewardmodels import ml

    return str(ml.build_tiny_backbone(models_dir / "tiny-bert"))
