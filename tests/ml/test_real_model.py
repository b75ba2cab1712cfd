"""The real default backbone (MiniLM from PyPI). Skipped unless var/models/all-MiniLM-L6-v2 exists."""

import pytest

from rewardmodels.ml import DEFAULT_BACKBONE, TrainConfig, load_scorer, resolve_backbone, train

from .conftest import REAL_MINILM, synthetic_rows, write_rows


@pytest.mark.real_model
def test_the_default_minilm_trains_a_few_steps_and_scores(tmp_path):
    backbone = resolve_backbone(DEFAULT_BACKBONE, REAL_MINILM.parent)
    assert backbone == str(REAL_MINILM)
    data_file = write_rows(tmp_path / "x.jsonl", synthetic_rows(24))
    cfg = TrainConfig(backbone=backbone, max_length=64, batch_size=4, max_steps=2, eval_fraction=0.25, device="cpu")
    result = train(cfg, data_files=[data_file], output_dir=tmp_path / "ckpt", provenance={})
    assert result.status == "succeeded" and result.steps == 2 and result.metrics["n_pairs"] == 6
    scorer = load_scorer(tmp_path / "ckpt", device="cpu")
    scores = scorer.score(["\n\nHuman: hi\n\nAssistant:"] * 2, [" Hello!", " Go away."])
    assert len(scores) == 2 and scores[0] != scores[1]
