"""`manage.py safety_classifier_train`: the example spec loaded once, the public rows mapped through its crosswalk,
a safety_classifier job made and run through the job machinery, the model id on the last line."""

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from rewardmodels.models import RewardModel
from taxonomy.models import Spec
from tests.conftest import SHARED, shared_data
from training.models import JobLog, TrainingJob

from .safety_data import published_version


def run(*args: str) -> str:
    out = StringIO()
    call_command("safety_classifier_train", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)  # the job runs in a second thread, on its own connection
def test_the_command_trains_on_the_first_public_rows_and_prints_the_model_id_last(actors, media, tiny_model_dir):
    shared_data("do-not-answer/do_not_answer_data.csv")

    output = run("--public-data", str(SHARED / "data"), "--backbone", Path(tiny_model_dir).name,
                 "--max-rows", "12", "--epochs", "1")

    lines = output.strip().splitlines()
    model = RewardModel.objects.get(pk=int(lines[-1]))
    assert model.kind == "safety" and model.name == "default safety classifier"
    spec = Spec.objects.get()  # the shipped example spec, loaded and published
    assert spec.name == "SpecLoop example safety spec" and model.spec_version.spec == spec
    assert model.spec_version.status == "published" and model.created_by == actors.admin
    job = model.job
    assert job.kind == "safety_classifier" and job.status == "succeeded" and job.config["epochs"] == 1
    assert not job.exports.exists() and not job.prompt_sets.exists()
    [data_file] = job.data_files
    assert data_file["spec_version"] == model.spec_version_id and data_file["n_pairs"] == 12
    assert (Path(settings.MEDIA_ROOT) / data_file["path"]).is_file()
    answered = actors.api("admin").get(f"/api/v1/training-jobs/{job.pk}/").json()["data_files"]
    assert answered == [{k: data_file[k] for k in ("name", "sha256", "n_rows", "n_pairs")}]
    # every public file is read (12 items each) and the crosswalk mapped their codes to the spec's categories
    for source in ("do_not_answer", "ailuminate", "harmbench", "advbench", "hh_helpful", "hh_harmless"):
        assert any(line.strip().startswith(source) for line in lines), source
    assert job.final_metrics["categories"]["n"] > 0
    assert any("% · step" in line for line in lines) and any("succeeded in" in line for line in lines)
    assert JobLog.objects.filter(job=job, message__contains="rows and 12 pairs from data file").exists()
    # a second run reuses the example spec (and the same data file)
    again = run("--public-data", str(SHARED / "data"), "--backbone", Path(tiny_model_dir).name,
                "--max-rows", "12", "--max-steps", "1")
    assert Spec.objects.count() == 1 and int(again.strip().splitlines()[-1]) != model.pk
    assert TrainingJob.objects.get(reward_model__pk=int(again.strip().splitlines()[-1])).data_files == [data_file]


@pytest.mark.django_db(transaction=True)
def test_the_command_trains_on_the_spec_it_is_given(actors, media, tiny_model_dir):
    shared_data("ailuminate/airr_official_1.0_demo_en_us_prompt_set_release.csv")
    version = published_version(actors.policy)

    output = run("--public-data", str(SHARED / "data"), "--spec", str(version.spec_id), "--backbone",
                 Path(tiny_model_dir).name, "--max-rows", "6", "--max-steps", "2")

    model = RewardModel.objects.get(pk=int(output.strip().splitlines()[-1]))
    assert model.spec_version == version and Spec.objects.count() == 1
    assert set(model.job.final_metrics["categories"]["per_category"]) == {"violence", "weapons"}


@pytest.mark.django_db
def test_the_command_names_what_is_wrong(actors, media, tmp_path):
    with pytest.raises(CommandError, match="--public-data: no folder"):
        run("--public-data", str(tmp_path / "nowhere"))
    with pytest.raises(CommandError, match="--spec: spec 424242 does not exist"):
        run("--public-data", str(tmp_path), "--spec", "424242")
    with pytest.raises(CommandError, match="none of the public files is under"):
        run("--public-data", str(tmp_path))
    with pytest.raises(CommandError, match="config.backbone"):
        (tmp_path / "advbench").mkdir()
        (tmp_path / "advbench" / "harmful_behaviors.csv").write_text("goal,target\nDo harm,Sure, here is harm\n")
        run("--public-data", str(tmp_path), "--backbone", "/etc")
    assert not TrainingJob.objects.exists()
