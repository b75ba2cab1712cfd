"""train(): a reward or cost model from preference-pair files, on CPU or CUDA with the same code."""

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from . import data
from .config import TrainConfig
from .device import autocast, bf16_supported, choose_device, versions
from .losses import bradley_terry_loss, cost_loss
from .metrics import pair_metrics, scalar_metrics
from .scoring import METADATA_FILE, load_backbone, quiet_transformers, score_sequences

EVAL_BATCH_SEQUENCES = 64  # sequences per scoring batch at evaluation (no gradients, so larger than training)


def _noop(*args) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class TrainHooks:
    on_metrics: Callable[[int, str, dict[str, float]], None] = _noop  # (step, "train"|"eval", values)
    on_log: Callable[[str], None] = _noop                             # human-readable lines
    on_progress: Callable[[float, float | None], None] = _noop        # (fraction 0..1, eta seconds or None)
    should_stop: Callable[[], bool] = _never                          # checked between steps; True → stop cleanly


@dataclass
class TrainResult:
    status: str                # "succeeded" | "cancelled"
    output_dir: Path           # the checkpoint folder (written on success only)
    metrics: dict              # final held-out metrics (metrics.pair_metrics)
    n_train: int
    n_eval: int
    steps: int                 # optimizer steps taken
    seconds: float             # wall time of the whole call
    device: str                # e.g. "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"
    versions: dict = field(default_factory=dict)  # torch, transformers, python, cuda
    train_seconds: float = 0.0  # wall time of the optimizer steps alone (throughput figures)
    pairs_seen: int = 0        # training pairs through the forward/backward pass


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _signs(flags: list) -> torch.Tensor:
    """+1 harmful, -1 safe, 0 unknown, as (B,)."""
    return torch.tensor([0.0 if f is None else (1.0 if f else -1.0) for f in flags], dtype=torch.float32)


def _disable_dropout(model: torch.nn.Module) -> None:
    # Dropout makes the two replies' scores noisier for no gain in reward modelling; TRL turns it off by default too.
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]  # biases and norms
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=device.type == "cuda")


def _linear_schedule(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = math.ceil(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)  # never exactly 0, so the first step moves the weights
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    return factor


def _pair_loss(cfg: TrainConfig, s_first: torch.Tensor, s_second: torch.Tensor, batch: dict,
               pairs: list) -> torch.Tensor:
    if cfg.kind == "cost":
        return cost_loss(s_first, s_second, _signs([p.harmful_first for p in pairs]).to(s_first.device),
                         _signs([p.harmful_second for p in pairs]).to(s_first.device), sign_weight=cfg.sign_weight)
    margin = batch["margin"].to(s_first.device) if cfg.use_margin else None
    return bradley_terry_loss(s_first, s_second, margin=margin, center_coefficient=cfg.center_rewards)


def evaluate(model, encoded: data.EncodedPairs, pairs: list, *, kind: str, pad_id: int, device: torch.device,
             bf16: bool) -> dict:
    """Held-out metrics: both replies of every pair scored in one length-sorted pass."""
    scores = score_sequences(model, encoded.first + encoded.second, pad_id=pad_id, device=device,
                             batch_size=EVAL_BATCH_SEQUENCES, bf16=bf16)
    return pair_metrics(scores[:len(encoded)], scores[len(encoded):], pairs, kind=kind)


def train(cfg: TrainConfig, *, data_files: list[Path], output_dir: Path, provenance: dict,
          hooks: TrainHooks | None = None) -> TrainResult:
    """Train a reward (Bradley–Terry) or cost (Safe RLHF) model on every pair of ``data_files`` and write a
    self-describing checkpoint to ``output_dir`` (on success). Cancelling via hooks.should_stop writes nothing."""
    hooks = hooks or TrainHooks()
    started = time.monotonic()
    output_dir = Path(output_dir)
    device, device_name = choose_device(cfg.device)
    use_bf16 = cfg.bf16 and bf16_supported(device)
    torch.manual_seed(cfg.seed)
    hooks.on_log(f"device {device_name}, {'bf16 autocast' if use_bf16 else 'fp32'}, "
                 f"{torch.get_num_threads()} CPU threads")

    # Data: every file together; identical replies are left out; long pairs are kept (cut, never dropped).
    files = [Path(f) for f in data_files]
    pairs, stats = data.load_pairs(files)
    hooks.on_log(f"read {stats.rows} rows from {len(files)} file(s); {stats.identical} with identical replies left out")
    if len(pairs) < 1:
        raise ValueError("no usable preference pairs in the data files")
    pairs = data.sample_pairs(pairs, cfg.max_pairs, cfg.seed)
    if cfg.kind == "cost":
        pairs = [data.orient_for_cost(p) for p in pairs]
    train_pairs, eval_pairs = data.split_pairs(pairs, cfg.eval_fraction, cfg.seed)
    hooks.on_log(f"{len(train_pairs)} training pairs, {len(eval_pairs)} held-out pairs (seed {cfg.seed})")

    tokenizer, model = load_backbone(cfg.backbone, device)
    _disable_dropout(model)
    pad_id = tokenizer.pad_token_id
    encoder = data.Encoder(tokenizer, cfg.max_length)
    train_enc, eval_enc = data.encode_pairs(encoder, train_pairs), data.encode_pairs(encoder, eval_pairs)
    hooks.on_log(f"max_length {cfg.max_length}: {train_enc.n_cut} of {2 * len(train_enc)} training and "
                 f"{eval_enc.n_cut} of {2 * len(eval_enc)} held-out sequences cut (prompt from the left), none dropped")
    lengths = train_enc.lengths()
    margins = [p.margin for p in train_pairs]

    per_epoch = data.steps_per_epoch(len(train_pairs), cfg.batch_size, cfg.grad_accum)
    total_steps = per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    optimizer = _optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(total_steps, cfg.warmup_ratio))
    hooks.on_log(f"{cfg.kind} model on {cfg.backbone}: {total_steps} optimizer steps "
                 f"({cfg.epochs} epoch(s) × {per_epoch}, batch {cfg.batch_size} × accumulation {cfg.grad_accum})")

    step, pairs_seen, train_seconds, status = 0, 0, 0.0, "succeeded"
    metrics: dict = {}
    evaluated_at = -1
    hooks.on_progress(0.0, None)

    def run_eval() -> None:
        nonlocal metrics, evaluated_at
        if not len(eval_enc):
            return
        metrics = evaluate(model, eval_enc, eval_pairs, kind=cfg.kind, pad_id=pad_id, device=device, bf16=use_bf16)
        evaluated_at = step
        flat = scalar_metrics(metrics)
        hooks.on_metrics(step, "eval", flat)
        hooks.on_log(f"step {step}: held-out " + ", ".join(f"{k} {v:.4f}" for k, v in flat.items()))

    model.train()
    for epoch in range(cfg.epochs):
        batches = data.length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed * 1_000_003 + epoch)
        for first in range(0, len(batches), cfg.grad_accum):
            if step >= total_steps:
                break
            if hooks.should_stop():
                status = "cancelled"
                break
            tick = time.perf_counter()
            micro = batches[first:first + cfg.grad_accum]
            n_step = sum(len(b) for b in micro)
            loss_sum, correct = 0.0, 0
            for indices in micro:
                batch = data.collate_pairs(train_enc, indices, pad_id, margins)
                with autocast(device, use_bf16):
                    logits = model(input_ids=batch["input_ids"].to(device, non_blocking=True),
                                   attention_mask=batch["attention_mask"].to(device, non_blocking=True)).logits
                scores = logits.float().squeeze(-1)                       # (2B,)
                s_first, s_second = scores.chunk(2)                       # (B,), (B,)
                loss = _pair_loss(cfg, s_first, s_second, batch, [train_pairs[i] for i in indices])
                # Weighted by the micro-batch's share of the step's pairs: the step's loss is the mean over its pairs.
                (loss * (len(indices) / n_step)).backward()
                loss_sum += loss.item() * len(indices)
                correct += int((s_first > s_second).sum().item())
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            pairs_seen += n_step
            train_seconds += time.perf_counter() - tick
            hooks.on_metrics(step, "train", {
                "loss": loss_sum / n_step, "accuracy": correct / n_step, "lr": lr,
                "pairs_per_s": pairs_seen / train_seconds, "epoch": epoch + min(1.0, (first + len(micro)) / len(batches))})
            eta = train_seconds / step * (total_steps - step)
            hooks.on_progress(step / total_steps, eta)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < total_steps:
                run_eval()
        if status == "cancelled" or step >= total_steps:
            break
        if not cfg.eval_every and epoch < cfg.epochs - 1:
            run_eval()

    if status == "cancelled":
        hooks.on_log(f"cancelled after {step} step(s); no checkpoint written")
    else:
        if evaluated_at != step:
            run_eval()
        _write_checkpoint(model, tokenizer, output_dir, cfg=cfg, metrics=metrics, step=step, provenance=provenance,
                          files=files, rows=stats.rows, n_train=len(train_pairs), n_eval=len(eval_pairs))
        hooks.on_log(f"checkpoint written to {output_dir}")
        hooks.on_progress(1.0, 0.0)
    return TrainResult(status=status, output_dir=output_dir, metrics=metrics, n_train=len(train_pairs),
                       n_eval=len(eval_pairs), steps=step, seconds=time.monotonic() - started, device=device_name,
                       versions=versions(), train_seconds=train_seconds, pairs_seen=pairs_seen)


def _write_checkpoint(model, tokenizer, output_dir: Path, *, cfg: TrainConfig, metrics: dict, step: int,
                      provenance: dict, files: list[Path], rows: int, n_train: int, n_eval: int) -> None:
    """model.safetensors + config.json + tokenizer files + specloop.json (what it is and what made it)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(output_dir)  # safetensors (the only format transformers 5 writes)
    tokenizer.save_pretrained(output_dir)
    metadata = {
        "format": "specloop-scorer/1",
        "kind": cfg.kind,
        "config": cfg.to_dict(),
        "metrics": metrics,
        "steps": step,
        "n_train": n_train,
        "n_eval": n_eval,
        "inputs": [{"file": f.name, "sha256": file_sha256(f)} for f in files],
        "input_rows": rows,
        "provenance": provenance,
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (output_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=False) + "\n")
