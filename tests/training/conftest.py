import pytest

from .helpers import tiny_backbone


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random-weight BERT and tokenizer, built in-process once per test session."""
    return tiny_backbone(tmp_path_factory.mktemp("tiny-backbone"))


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
