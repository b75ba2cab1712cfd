"""train_safety_classifier(): the four heads from masked rows and harm pairs, thresholds calibrated on held-out."""

import contextlib
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from rewardmodels.ml.data import length_grouped_batches, pad_batch
from rewardmodels.ml.device import bf16_supported, choose_device, versions
from rewardmodels.ml.trainer import TrainHooks, _linear_schedule

from . import metrics as m
from .config import REFUSAL_CLASSES, SafetyClassifierConfig
from .data import HarmPair, SafetyRow, rows_report, sample, split_by_prompt
from .encoding import SafetyEncoder
from .infer import cpu_has_native_bf16, run_heads
from .losses import harm_pair_loss, safety_loss
from .model import SafetyClassifierModel, load_backbone_and_tokenizer, save_checkpoint

EVAL_BATCH = 64  # sequences per batch at evaluation (no gradients)


def _bf16_here(device: torch.device) -> bool:
    """bf16 autocast pays on CUDA with bf16 and on CPUs with native bf16 (avx512_bf16 / AMX): 1.7× faster per
    MiniLM training step on 2 cores here; the weights and the optimizer stay fp32."""
    return bf16_supported(device) or (device.type == "cpu" and cpu_has_native_bf16())


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@dataclass
class SafetyTrainResult:
    status: str                # "succeeded" | "cancelled"
    output_dir: Path           # the checkpoint folder (written on success only)
    metrics: dict              # held-out metrics per head and category (see _evaluate)
    steps: int                 # optimizer steps taken
    seconds: float             # wall time of the whole call
    device: str
    versions: dict = field(default_factory=dict)
    n_train: int = 0           # training rows + pairs
    n_eval: int = 0            # held-out rows + pairs
    train_seconds: float = 0.0  # wall time of the optimizer steps alone


def rows_sha256(rows: list[SafetyRow], pairs: list[HarmPair]) -> str:
    """sha256 of the training data as canonical JSON lines (rows, then pairs): what the checkpoint was trained on."""
    digest = hashlib.sha256()
    for item in [*rows, *pairs]:
        digest.update((json.dumps(asdict(item), sort_keys=True, ensure_ascii=False) + "\n").encode())
    return digest.hexdigest()


def _targets(rows: list[SafetyRow], keys: list[str]) -> dict[str, torch.Tensor]:
    """Label tensors and masks for a list of rows (a row's unknown category keys are ignored)."""
    index = {k: i for i, k in enumerate(keys)}
    refusal = {c: i for i, c in enumerate(REFUSAL_CLASSES)}
    categories = torch.zeros((len(rows), len(keys)))                                        # (B, K)
    for r, row in enumerate(rows):
        for key in row.categories or []:
            if key in index:
                categories[r, index[key]] = 1.0
    return {
        "prompt_harmful": torch.tensor([float(bool(r.prompt_harmful)) for r in rows]),          # (B,)
        "prompt_harmful_mask": torch.tensor([r.prompt_harmful is not None for r in rows]),
        "categories": categories,
        "categories_mask": torch.tensor([r.categories is not None for r in rows]),
        "response_refusal": torch.tensor([refusal.get(r.response_refusal, 0) for r in rows]),  # (B,)
        "response_refusal_mask": torch.tensor([r.response_refusal is not None for r in rows]),
        "response_harmful": torch.tensor([float(bool(r.response_harmful)) for r in rows]),
        "response_harmful_mask": torch.tensor([r.response_harmful is not None for r in rows]),
    }


def _optimizer(model: SafetyClassifierModel, cfg: SafetyClassifierConfig, device: torch.device):
    groups = []
    for part, lr in ((model.backbone, cfg.learning_rate), (model.heads, cfg.head_learning_rate)):
        params = [p for p in part.parameters() if p.requires_grad]
        groups.append({"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay, "lr": lr})
        groups.append({"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr": lr})
    return torch.optim.AdamW([g for g in groups if g["params"]], fused=device.type == "cuda")


def _evaluate(model, tokenizer, encoder: SafetyEncoder, rows: list[SafetyRow], pairs: list[HarmPair],
              categories: list[dict], *, device: torch.device, precision: str) -> tuple[dict, dict]:
    """(metrics, thresholds) on held-out rows and pairs. Thresholds are calibrated here (max F1) and the F1 reported
    is at them, so it is optimistic; AUROC does not depend on them."""
    keys = [c["key"] for c in categories]
    pad_id = tokenizer.pad_token_id
    sequences, _ = encoder.encode_rows([r.prompt for r in rows], [r.response for r in rows])
    probs = run_heads(model, sequences, pad_id=pad_id, device=device, batch_size=EVAL_BATCH, precision=precision)
    thresholds: dict = {"prompt_harmful": m.DEFAULT_THRESHOLD, "response_harmful": m.DEFAULT_THRESHOLD,
                        "categories": {k: m.DEFAULT_THRESHOLD for k in keys}}
    metrics: dict = {"n_rows": len(rows), "n_pairs": len(pairs)}

    for head in ("prompt_harmful", "response_harmful"):
        labelled = [i for i, r in enumerate(rows) if getattr(r, head) is not None]
        scores = probs[head][labelled]
        labels = [bool(getattr(rows[i], head)) for i in labelled]
        thresholds[head] = m.calibrate_threshold(scores, labels)
        metrics[head] = m.binary_metrics(scores, labels, thresholds[head])

    labelled = [i for i, r in enumerate(rows) if r.categories is not None]
    per_category = {}
    for k, category in enumerate(categories):
        labels = [category["key"] in (rows[i].categories or []) for i in labelled]
        scores = probs["categories"][labelled, k] if labelled else np.zeros(0)
        thresholds["categories"][category["key"]] = m.calibrate_threshold(scores, labels)
        per_category[category["key"]] = {"name": category.get("name") or category["key"],
                                         **m.binary_metrics(scores, labels, thresholds["categories"][category["key"]])}
    aurocs = [v["auroc"] for v in per_category.values() if v["auroc"] is not None]
    f1s = [v["f1"] for v in per_category.values() if v["positives"]]
    metrics["categories"] = {"n": len(labelled), "macro_auroc": float(np.mean(aurocs)) if aurocs else None,
                             "macro_f1": float(np.mean(f1s)) if f1s else None,
                             "n_with_positives": len(f1s), "per_category": per_category}

    with_refusal = [i for i, r in enumerate(rows) if r.response_refusal is not None]
    gold = [rows[i].response_refusal for i in with_refusal]
    predicted = [REFUSAL_CLASSES[int(np.argmax(probs["response_refusal"][i]))] for i in with_refusal]
    metrics["response_refusal"] = m.refusal_metrics(gold, predicted)
    metrics["response_refusal"]["string_match"] = m.refusal_comparison(
        [rows[i].response for i in with_refusal], gold, predicted)

    if pairs:
        pair_seqs, _ = encoder.encode_rows([p.prompt for p in pairs] * 2,
                                           [p.more_harmful for p in pairs] + [p.safer for p in pairs])
        harm = run_heads(model, pair_seqs, pad_id=pad_id, device=device, batch_size=EVAL_BATCH,
                         precision=precision)["response_harmful"]
        metrics["response_harmful"]["pair_accuracy"] = float(np.mean(harm[:len(pairs)] > harm[len(pairs):]))
        metrics["response_harmful"]["n_pairs"] = len(pairs)
    return metrics, thresholds


def train_safety_classifier(cfg: SafetyClassifierConfig, *, rows: list[SafetyRow], pairs: list[HarmPair],
                            categories: list[dict], output_dir: Path, provenance: dict,
                            hooks: TrainHooks | None = None) -> SafetyTrainResult:
    """Train the four-head classifier on ``rows`` (masked labels) and ``pairs`` (pairwise harm term), calibrate the
    thresholds on the held-out prompts, and write a self-describing checkpoint (on success; a cancel writes nothing).
    ``categories`` = the spec's [{"key", "name"}] in head order."""
    hooks = hooks or TrainHooks()
    started = time.monotonic()
    output_dir = Path(output_dir)
    categories = [{"key": c["key"], "name": c.get("name") or c["key"]} for c in categories]
    keys = [c["key"] for c in categories]
    device, device_name = choose_device(cfg.device)
    use_bf16 = cfg.bf16 and _bf16_here(device)
    torch.manual_seed(cfg.seed)
    hooks.on_log(f"device {device_name}, {'bf16 autocast' if use_bf16 else 'fp32'}, "
                 f"{torch.get_num_threads()} CPU threads")

    rows = sample(list(rows), cfg.max_rows, cfg.seed)
    pairs = sample(list(pairs), cfg.max_pairs, cfg.seed)
    if not rows and not pairs:
        raise ValueError("no training rows or harm pairs")
    unknown = sorted({k for r in rows for k in (r.categories or []) if k not in set(keys)})
    if unknown:
        hooks.on_log(f"category keys not in the spec, ignored: {', '.join(unknown[:20])}")
    train_rows, eval_rows, train_pairs, eval_pairs = split_by_prompt(rows, pairs, cfg.eval_fraction, cfg.seed)
    report = rows_report(train_rows, train_pairs)
    hooks.on_log(f"{len(train_rows)} training rows + {len(train_pairs)} harm pairs, {len(eval_rows)} held-out rows + "
                 f"{len(eval_pairs)} pairs (split by prompt, seed {cfg.seed}); labels per head {report['by_head']}")

    tokenizer, backbone = load_backbone_and_tokenizer(cfg.backbone)
    model = SafetyClassifierModel(backbone, len(keys)).to(device)
    encoder = SafetyEncoder(tokenizer, cfg.max_length)
    pad_id = tokenizer.pad_token_id
    row_seqs, n_cut = encoder.encode_rows([r.prompt for r in train_rows], [r.response for r in train_rows])
    pair_more, _ = encoder.encode_rows([p.prompt for p in train_pairs], [p.more_harmful for p in train_pairs])
    pair_safer, _ = encoder.encode_rows([p.prompt for p in train_pairs], [p.safer for p in train_pairs])
    hooks.on_log(f"max_length {cfg.max_length}: {n_cut} of {len(row_seqs)} training rows cut, none dropped")
    targets = _targets(train_rows, keys)
    weights = {"prompt_harmful": cfg.prompt_harmful_weight, "categories": cfg.categories_weight,
               "response_refusal": cfg.response_refusal_weight, "response_harmful": cfg.response_harmful_weight,
               "category_pos_weight": cfg.category_pos_weight}

    # A step is a batch of rows or a batch of pairs (batch_size sequences either way: a pair is two).
    pair_batch = max(1, cfg.batch_size // 2)
    row_lengths = [len(s) for s in row_seqs]
    pair_lengths = [max(len(a), len(b)) for a, b in zip(pair_more, pair_safer)]
    per_epoch = -(-len(row_seqs) // cfg.batch_size) + -(-len(pair_more) // pair_batch)
    total_steps = per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    optimizer = _optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(max(1, total_steps), cfg.warmup_ratio))
    hooks.on_log(f"safety classifier on {cfg.backbone}: {total_steps} optimizer steps ({cfg.epochs} epoch(s) × "
                 f"{per_epoch}), batch {cfg.batch_size} rows or {pair_batch} pairs")

    step, train_seconds, status = 0, 0.0, "succeeded"
    hooks.on_progress(0.0, None)
    model.train()
    for epoch in range(cfg.epochs):
        epoch_seed = cfg.seed * 1_000_003 + epoch
        batches = [("rows", b) for b in length_grouped_batches(row_lengths, cfg.batch_size, seed=epoch_seed)] + \
                  [("pairs", b) for b in length_grouped_batches(pair_lengths, pair_batch, seed=epoch_seed + 1)]
        random.Random(epoch_seed).shuffle(batches)
        for kind, indices in batches:
            if step >= total_steps:
                break
            if hooks.should_stop():
                status = "cancelled"
                break
            tick = time.perf_counter()
            if kind == "rows":
                input_ids, attention_mask = pad_batch([row_seqs[i] for i in indices], pad_id)        # (B, L)
                with _autocast(device, use_bf16):
                    logits = model(input_ids.to(device), attention_mask.to(device))
                logits = {k: v.float() for k, v in logits.items()}
                batch_targets = {k: v[indices].to(device) for k, v in targets.items()}
                loss, terms = safety_loss(logits, batch_targets, weights=weights)
            else:
                input_ids, attention_mask = pad_batch([pair_more[i] for i in indices] +
                                                      [pair_safer[i] for i in indices], pad_id)     # (2P, L)
                with _autocast(device, use_bf16):
                    harm = model(input_ids.to(device), attention_mask.to(device))["response_harmful"].float()
                more, safer = harm.chunk(2)                                                         # (P,), (P,)
                pair_loss = harm_pair_loss(more, safer)
                loss, terms = cfg.pair_weight * pair_loss, {"harm_pairs": float(pair_loss.detach())}
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_seconds += time.perf_counter() - tick
            hooks.on_metrics(step, "train", {"loss": float(loss.detach()), "lr": lr, **{f"loss_{k}": v for k, v in
                                                                                        terms.items()}})
            hooks.on_progress(step / total_steps, train_seconds / step * (total_steps - step))
            if step % 50 == 0:
                hooks.on_log(f"step {step}/{total_steps}: loss {float(loss.detach()):.4f} "
                             f"({train_seconds / step:.2f} s/step)")
        if status == "cancelled" or step >= total_steps:
            break

    if status == "cancelled":
        hooks.on_log(f"cancelled after {step} step(s); no checkpoint written")
        return SafetyTrainResult(status=status, output_dir=output_dir, metrics={}, steps=step,
                                 seconds=time.monotonic() - started, device=device_name, versions=versions(),
                                 n_train=len(train_rows) + len(train_pairs), n_eval=len(eval_rows) + len(eval_pairs),
                                 train_seconds=train_seconds)

    model.eval()
    if eval_rows or eval_pairs:
        metrics, thresholds = _evaluate(model, tokenizer, encoder, eval_rows, eval_pairs, categories, device=device,
                                        precision="bf16" if use_bf16 else "fp32")
    else:
        metrics, thresholds = {"n_rows": 0, "n_pairs": 0}, {
            "prompt_harmful": m.DEFAULT_THRESHOLD, "response_harmful": m.DEFAULT_THRESHOLD,
            "categories": {k: m.DEFAULT_THRESHOLD for k in keys}}
    flat = m.scalar_metrics(metrics)
    hooks.on_metrics(step, "eval", flat)
    hooks.on_log(f"step {step}: held-out " + ", ".join(f"{k} {v:.4f}" for k, v in flat.items()))
    save_checkpoint(model, tokenizer, output_dir, {
        "categories": categories, "thresholds": thresholds, "metrics": metrics, "config": cfg.to_dict(),
        "steps": step, "n_train": len(train_rows) + len(train_pairs), "n_eval": len(eval_rows) + len(eval_pairs),
        "data": {"rows_sha256": rows_sha256(rows, pairs), "train": report,
                 "eval": rows_report(eval_rows, eval_pairs)},
        "provenance": provenance, "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    hooks.on_log(f"checkpoint written to {output_dir}")
    hooks.on_progress(1.0, 0.0)
    return SafetyTrainResult(status=status, output_dir=output_dir, metrics=metrics, steps=step,
                             seconds=time.monotonic() - started, device=device_name, versions=versions(),
                             n_train=len(train_rows) + len(train_pairs), n_eval=len(eval_rows) + len(eval_pairs),
                             train_seconds=train_seconds)
