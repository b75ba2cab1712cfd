"""A clone without ../shared beside it passes: tests that read the public files skip and say which."""

import pytest

from tests import conftest


def test_a_missing_public_file_skips_the_test_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "no-shared-here")
    with pytest.raises(pytest.skip.Exception, match=r"\.\./shared/data/hh-rlhf/harmless-base\.dev\.jsonl\.gz"):
        conftest.shared_data("hh-rlhf/harmless-base.dev.jsonl.gz")


def test_a_present_public_file_is_found(monkeypatch, tmp_path):
    (tmp_path / "data" / "hh-rlhf").mkdir(parents=True)
    (tmp_path / "data" / "hh-rlhf" / "a.jsonl").write_text("{}\n")
    monkeypatch.setattr(conftest, "SHARED", tmp_path)
    assert conftest.shared_data("hh-rlhf/a.jsonl").read_text() == "{}\n"
