import pytest

from safety import services


@pytest.fixture(autouse=True)
def _fresh_classifiers():
    """Loaded classifiers are keyed on (model id, folder); ids repeat across rolled-back tests."""
    services.classifiers_clear()
    yield
    services.classifiers_clear()


@pytest.fixture(scope="session")
def safety_media(tmp_path_factory):
    """A media root kept for the session, so the tiny classifier is built once."""
    return tmp_path_factory.mktemp("safety-media")


@pytest.fixture
def media(settings, safety_media):
    settings.MEDIA_ROOT = safety_media
    return safety_media


SMALL_CATEGORIES = [{"key": "violence", "name": "Violence"}, {"key": "weapons", "name": "Weapons"}]


@pytest.fixture(scope="session")
def tiny_classifier_dir(safety_media):
    """A tiny random safety classifier for the small spec's categories, under the session media root."""
    from training.ml.safety import build_tiny_classifier

    return build_tiny_classifier(safety_media / "models" / "tiny-safety", SMALL_CATEGORIES)
