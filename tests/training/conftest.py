import pytest


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def tiny_policy_dir(models_dir) -> str:
    """A tiny random Llama with a chat template in the models directory, named by its folder (no download)."""
    from training.ml.evaluation import build_tiny_policy

    build_tiny_policy(models_dir / "tiny-policy")
    return "tiny-policy"
