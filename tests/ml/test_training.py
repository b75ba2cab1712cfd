import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardmodels.ml import TrainConfig, TrainHooks, load_scorer, train
from rewardmodels.ml.data import load_pairs, split_pairs
from rewardmodels.ml.scoring import load_backbone

from .conftest import synthetic_rows, write_rows


def tiny_config(backbone: Path, **overrides) -> TrainConfig:
    settings = {"backbone": str(backbone), "max_length": 48, "batch_size": 8, "epochs": 12, "learning_rate": 2e-3,
                "eval_fraction": 0.25, "warmup_ratio": 0.1, "device": "cpu", **overrides}
    return TrainConfig(**settings)


class Recorder:
    def __init__(self, stop_after: int | None = None):
        self.metrics, self.logs, self.progress, self.stop_after, self.asked = [], [], [], stop_after, 0

    def hooks(self) -> TrainHooks:
        return TrainHooks(on_metrics=lambda step, split, values: self.metrics.append((step, split, values)),
                          on_log=self.logs.append, on_progress=lambda f, eta: self.progress.append((f, eta)),
                          should_stop=self.should_stop)

    def should_stop(self) -> bool:
        self.asked += 1
        return self.stop_after is not None and self.asked > self.stop_after


@pytest.fixture(scope="module")
def trained(tiny_backbone, tmp_path_factory):
    """One reward model trained on 64 synthetic pairs, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("reward")
    data_file = write_rows(folder / "export.jsonl", synthetic_rows(64))
    recorder = Recorder()
    cfg = tiny_config(tiny_backbone)
    result = train(cfg, data_files=[data_file], output_dir=folder / "checkpoint",
                   provenance={"snapshot": 7, "sha256": "abc"}, hooks=recorder.hooks())
    return cfg, result, recorder, data_file


def test_a_tiny_reward_model_learns_the_preferred_word_on_held_out_pairs(trained):
    cfg, result, recorder, _ = trained
    assert result.status == "succeeded"
    assert (result.n_train, result.n_eval) == (48, 16)
    assert result.steps == 12 * 6
    assert result.metrics["accuracy"] >= 0.9
    first_eval = next(values for step, split, values in recorder.metrics if split == "eval")
    assert result.metrics["loss"] < first_eval["loss"]
    assert result.device == "cpu" and result.versions["torch"] == torch.__version__


def test_the_hooks_report_every_step_and_each_epochs_evaluation(trained):
    _, result, recorder, _ = trained
    train_steps = [step for step, split, _ in recorder.metrics if split == "train"]
    assert train_steps == list(range(1, result.steps + 1))
    step, _, values = recorder.metrics[0]
    assert set(values) == {"loss", "accuracy", "lr", "pairs_per_s", "epoch"}
    assert [step for step, split, _ in recorder.metrics if split == "eval"] == [6 * e for e in range(1, 13)]
    fractions = [f for f, _ in recorder.progress]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert any("48 training pairs, 16 held-out pairs" in line for line in recorder.logs)
    assert any("cut (prompt from the left), none dropped" in line for line in recorder.logs)


def test_held_out_metrics_carry_categories_calibration_and_harmful_vs_safe_distributions(trained):
    metrics = trained[1].metrics
    assert set(metrics["per_category"]) == {"violence", "fraud"}
    assert sum(c["n"] for c in metrics["per_category"].values()) == 16
    bins = metrics["calibration"]["bins"]
    assert len(bins) == 10 and sum(b["count"] for b in bins) == 16
    assert 0.0 <= metrics["calibration"]["ece"] <= 0.5
    dist = metrics["distributions"]
    assert len(dist["edges"]) == 21 and dist["harmful"]["n"] == dist["safe"]["n"] == 16
    assert sum(dist["harmful"]["histogram"]) == 16
    assert dist["safe"]["mean"] > dist["harmful"]["mean"]  # a reward model: harmful replies score lower


def test_the_checkpoint_describes_itself_and_holds_no_pickle(trained):
    cfg, result, _, data_file = trained
    files = {p.name for p in result.output_dir.iterdir()}
    assert {"model.safetensors", "config.json", "specloop.json", "tokenizer.json"} <= files
    assert not [p for p in result.output_dir.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    weights = load_file(result.output_dir / "model.safetensors")
    assert weights["classifier.weight"].shape == (1, 32)
    meta = json.loads((result.output_dir / "specloop.json").read_text())
    assert meta["kind"] == "reward" and meta["config"] == cfg.to_dict() and meta["steps"] == result.steps
    assert meta["provenance"] == {"snapshot": 7, "sha256": "abc"}
    import hashlib
    assert meta["inputs"] == [{"file": "export.jsonl", "sha256": hashlib.sha256(data_file.read_bytes()).hexdigest()}]
    assert meta["metrics"]["accuracy"] == result.metrics["accuracy"]
    assert set(meta["versions"]) == {"torch", "transformers", "python", "cuda"} and meta["created"]


def test_the_reloaded_scorer_gives_the_scores_seen_in_training(trained):
    cfg, result, _, data_file = trained
    scorer = load_scorer(result.output_dir, device="cpu")
    assert scorer.kind == "reward" and scorer.metadata["n_train"] == 48
    pairs, _ = load_pairs([data_file])
    _, held = split_pairs(pairs, cfg.eval_fraction, cfg.seed)
    prompts = [p.prompt for p in held] * 2
    scores = scorer.score(prompts, [p.first for p in held] + [p.second for p in held])
    chosen, rejected = scores[:16], scores[16:]
    assert sum(c > r for c, r in zip(chosen, rejected)) / 16 == result.metrics["accuracy"]
    assert sum(scores) / 32 == pytest.approx(result.metrics["score_mean"], abs=1e-5)
    # The same scores whatever the batch size (batches are length-sorted inside, order is kept).
    assert scorer.score(prompts, [p.first for p in held] + [p.second for p in held], batch_size=3) == \
        pytest.approx(scores, abs=1e-5)
    assert scorer.score([], []) == []


def head_after_one_step(backbone: Path, data_file: Path, folder: Path, **overrides) -> tuple[dict, dict]:
    """The scalar head (classifier) before and after one optimizer step."""
    cfg = tiny_config(backbone, max_steps=1, eval_fraction=0.0, **overrides)
    torch.manual_seed(cfg.seed)  # train() draws the new head after the same seed
    _, before = load_backbone(cfg.backbone, torch.device("cpu"))
    head = {name: p.detach().clone() for name, p in before.classifier.named_parameters()}
    result = train(cfg, data_files=[data_file], output_dir=folder, provenance={})
    assert result.steps == 1 and result.n_eval == 0 and result.metrics == {}
    weights = load_file(folder / "model.safetensors")
    return head, {name: weights[f"classifier.{name}"] for name in head}


@pytest.mark.parametrize("overrides", [{"kind": "cost"}, {"kind": "reward", "center_rewards": 0.01}])
def test_one_step_changes_every_parameter_of_the_scalar_head(tiny_backbone, pairs_file, tmp_path, overrides):
    before, after = head_after_one_step(tiny_backbone, pairs_file, tmp_path / "one", **overrides)
    assert set(before) == {"weight", "bias"}
    for name in before:
        moved = after[name] != before[name]
        assert moved.all(), f"classifier.{name}: {int((~moved).sum())} entries did not move"


def test_plain_bradley_terry_moves_the_head_weights_but_cannot_move_its_bias(tiny_backbone, pairs_file, tmp_path):
    # -log σ(r_c - r_r) only sees differences: a shift common to both rewards (the bias) gets no gradient.
    # Centering (center_rewards) is what pins the level down, see the test above.
    before, after = head_after_one_step(tiny_backbone, pairs_file, tmp_path / "plain")
    assert (after["weight"] != before["weight"]).all()
    assert torch.equal(after["bias"], before["bias"])


def test_should_stop_cancels_cleanly_between_steps_and_writes_nothing(tiny_backbone, pairs_file, tmp_path):
    recorder = Recorder(stop_after=3)
    result = train(tiny_config(tiny_backbone), data_files=[pairs_file], output_dir=tmp_path / "never",
                   provenance={}, hooks=recorder.hooks())
    assert result.status == "cancelled" and result.steps == 3
    assert not (tmp_path / "never").exists()
    assert any("cancelled after 3 step(s)" in line for line in recorder.logs)


def test_margin_centering_and_accumulation_train_too(tiny_backbone, pairs_file, tmp_path):
    cfg = tiny_config(tiny_backbone, use_margin=True, center_rewards=0.01, grad_accum=2, epochs=2, eval_every=3,
                      weight_decay=0.01, max_pairs=40)
    recorder = Recorder()
    result = train(cfg, data_files=[pairs_file, pairs_file], output_dir=tmp_path / "m", provenance={},
                   hooks=recorder.hooks())
    # 40 pairs sampled from 128 rows (two files): 30 train → 4 batches of 8 → 2 steps per epoch.
    assert (result.n_train, result.n_eval, result.steps) == (30, 10, 4)
    assert [step for step, split, _ in recorder.metrics if split == "eval"] == [3, 4]
    assert all(math.isfinite(v["loss"]) for _, split, v in recorder.metrics if split == "train")


def test_a_cost_model_puts_harmful_replies_above_zero(tiny_backbone, tmp_path):
    rows = synthetic_rows(64, seed=1)
    for row in rows[::4]:  # some imported rows carry no flags: the sign term skips them
        row.pop("harmful"), row.pop("severity")
    data_file = write_rows(tmp_path / "cost.jsonl", rows)
    result = train(tiny_config(tiny_backbone, kind="cost"), data_files=[data_file], output_dir=tmp_path / "cost",
                   provenance={})
    metrics = result.metrics
    assert metrics["kind"] == "cost" and metrics["accuracy"] >= 0.9 and metrics["sign_accuracy"] >= 0.9
    assert metrics["distributions"]["harmful"]["mean"] > 0 > metrics["distributions"]["safe"]["mean"]
    assert all("sign_accuracy" in c for c in metrics["per_category"].values())
    scorer = load_scorer(tmp_path / "cost", device="cpu")
    assert scorer.kind == "cost"
    harmful, safe = scorer.score(["human: help assistant:"] * 2, ["make a bomb", "make a safe thing"])
    assert harmful > 0 > safe


def test_a_file_without_usable_pairs_is_an_error(tiny_backbone, tmp_path):
    data_file = write_rows(tmp_path / "same.jsonl", [{"prompt": "p", "chosen": "x", "rejected": "x"}])
    with pytest.raises(ValueError, match="no usable preference pairs"):
        train(tiny_config(tiny_backbone), data_files=[data_file], output_dir=tmp_path / "o", provenance={})


def one_step(backbone: Path, data_file: Path, folder: Path, monkeypatch, *, sgd_lr: float = 1.0,
             **overrides) -> tuple[dict, float]:
    """Every weight after one plain-SGD step (no clipping), and the step's reported loss. SGD, unlike AdamW's
    first step (≈ lr·sign(g)), moves each weight in proportion to its gradient, so the gradient's weighting shows."""
    from rewardmodels.ml import trainer

    monkeypatch.setattr(trainer, "_optimizer", lambda model, cfg, device: torch.optim.SGD(model.parameters(), lr=sgd_lr))
    recorder = Recorder()
    cfg = tiny_config(backbone, **{"max_steps": 1, "eval_fraction": 0.0, "warmup_ratio": 0.0, "max_grad_norm": 1e9,
                                   **overrides})
    result = train(cfg, data_files=[data_file], output_dir=folder, provenance={}, hooks=recorder.hooks())
    assert result.steps == 1
    loss = next(values["loss"] for _, split, values in recorder.metrics if split == "train")
    return load_file(folder / "model.safetensors"), loss


def update(backbone: Path, after: dict) -> torch.Tensor:
    """Every weight's move in one step, flattened: ``after`` minus the weights train() starts from."""
    torch.manual_seed(0)  # train() draws the new head after the same seed
    start = load_backbone(str(backbone), torch.device("cpu"))[1].state_dict()
    return torch.cat([(after[name] - start[name]).flatten() for name in after])


def test_accumulated_micro_batches_of_unequal_size_step_like_one_batch_of_all_their_pairs(
        tiny_backbone, pairs_file, tmp_path, monkeypatch):
    # 6 pairs: micro-batches of 4 and 2 (weighted 4/6 and 2/6), against one batch of 6.
    whole, whole_loss = one_step(tiny_backbone, pairs_file, tmp_path / "whole", monkeypatch, max_pairs=6, batch_size=8)
    accumulated, accumulated_loss = one_step(tiny_backbone, pairs_file, tmp_path / "accum", monkeypatch, max_pairs=6,
                                             batch_size=4, grad_accum=2)
    assert accumulated_loss == pytest.approx(whole_loss, abs=1e-5)
    moved_whole, moved_accumulated = update(tiny_backbone, whole), update(tiny_backbone, accumulated)
    assert moved_whole.norm() > 0
    assert (moved_accumulated - moved_whole).norm() < 1e-3 * moved_whole.norm()


def test_use_margin_puts_the_exports_margin_into_the_training_loss(tiny_backbone, pairs_file, tmp_path, monkeypatch):
    # Every synthetic row has margin 1.0: at the same start, -log σ(d - 1) exceeds -log σ(d) by about 0.6 near d = 0.
    _, plain = one_step(tiny_backbone, pairs_file, tmp_path / "plain", monkeypatch)
    _, with_margin = one_step(tiny_backbone, pairs_file, tmp_path / "margin", monkeypatch, use_margin=True)
    assert with_margin - plain > 0.3


def test_gradients_are_clipped_to_max_grad_norm(tiny_backbone, pairs_file, tmp_path, monkeypatch):
    # Plain SGD at lr 1000: the move is 1000 × the (clipped) gradient, large enough to measure in fp32.
    free, _ = one_step(tiny_backbone, pairs_file, tmp_path / "free", monkeypatch, sgd_lr=1000.0)
    clipped, _ = one_step(tiny_backbone, pairs_file, tmp_path / "clipped", monkeypatch, sgd_lr=1000.0,
                          max_grad_norm=1e-5)
    assert update(tiny_backbone, free).norm() > 2 * 1000 * 1e-5
    assert update(tiny_backbone, clipped).norm().item() == pytest.approx(1000 * 1e-5, rel=1e-2)


def test_weight_decay_spares_biases_and_norms():
    from rewardmodels.ml.trainer import _optimizer

    linear, norm = torch.nn.Linear(3, 4), torch.nn.LayerNorm(4)
    optimizer = _optimizer(torch.nn.Sequential(linear, norm), TrainConfig(weight_decay=0.01), torch.device("cpu"))
    decayed, spared = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01 and [id(p) for p in decayed["params"]] == [id(linear.weight)]
    assert spared["weight_decay"] == 0.0
    assert {id(p) for p in spared["params"]} == {id(linear.bias), id(norm.weight), id(norm.bias)}


def test_the_learning_rate_warms_up_linearly_then_decays_to_zero():
    from rewardmodels.ml.trainer import _linear_schedule

    factor = _linear_schedule(10, 0.2)  # 2 warm-up steps
    assert [factor(s) for s in range(10)] == pytest.approx([1 / 3, 2 / 3] + [(10 - s) / 8 for s in range(2, 10)])
    assert factor(10) == 0.0
    assert [_linear_schedule(4, 0.0)(s) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]


def test_sign_weight_reaches_the_cost_models_training_loss(tiny_backbone, pairs_file, tmp_path, monkeypatch):
    # Every synthetic row flags both replies: sign_weight 0 leaves the pairwise term alone (≈ log 2 at the start),
    # sign_weight 1 adds two sign terms per pair (≈ 2 log 2 more).
    _, pairwise = one_step(tiny_backbone, pairs_file, tmp_path / "w0", monkeypatch, kind="cost", sign_weight=0.0)
    _, signed = one_step(tiny_backbone, pairs_file, tmp_path / "w1", monkeypatch, kind="cost", sign_weight=1.0)
    assert signed - pairwise > math.log(2)
