"""rewardmodels.ml.train against TRL's RewardTrainer: same MiniLM backbone, data, batch, max length, fp32, epochs, lr.

    .venv/bin/python bench/reward_vs_trl.py                        # the full run (all train pairs)
    .venv/bin/python bench/reward_vs_trl.py --max-steps 5 --train-pairs 200   # a short run

Benchmark-only dependencies (not in pyproject): `.venv/bin/pip install trl datasets`. No Django, no database.

Data: HH-RLHF harmless-base (../shared/data/hh-rlhf), each dialogue pair split at the last shared
"\\n\\nAssistant:" turn into prompt / chosen / rejected, pairs with equal replies left out, then one seeded
train / held-out split (data.split_pairs, --eval-fraction) used by both trainers.

Both trainers get the same token ids: (prompt + reply) with the backbone's [CLS] … [SEP], which is what TRL's
explicit-prompt path builds; TRL receives them pre-tokenized (chosen_ids / rejected_ids), so its own
tokenizing is not in its time, and TRL appends no extra EOS. TRL then drops every pair longer than max_length
(printed); ours keeps every pair, the prompt cut from the left. Both models start from the same weights (the
scalar head is drawn after the same seed), run with dropout off (TRL's default), AdamW, linear warmup/decay,
gradient clipping at 1.0, fp32 on the CPU.

Throughput: training pairs through forward+backward+step per second of the training loop (ours: the step
loop; TRL: trainer.train()'s train_runtime), and the same per CPU-second of this process over that loop, which
depends less on what else the machine runs. Accuracy: both models scored by the same function (rewardmodels.ml's scorer:
prompt cut from the left to max_length) on ALL held-out pairs, and on the held-out pairs that fit max_length.
"""

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common as bench  # noqa: E402  (printing helpers only; no Django is set up)
from reward_accuracy import MODELS_DIR, hh_pairs, training_arguments, write_jsonl  # noqa: E402


def pair_objects(rows: list[dict]):
    from rewardmodels.ml.data import pair_from_row

    return [pair_from_row(row) for row in rows]


def heldout_encoding(tokenizer, pairs, max_length: int):
    """The held-out pairs as both models are scored on them (prompt cut from the left to max_length), and whether
    each pair fits uncut. Encoded once: both checkpoints carry the backbone's tokenizer."""
    from rewardmodels.ml.data import Encoder, encode_pairs

    encoded = encode_pairs(Encoder(tokenizer, max_length), pairs)
    full = encode_pairs(Encoder(tokenizer, 10**9), pairs)
    return encoded, [len(a) <= max_length and len(b) <= max_length for a, b in zip(full.first, full.second)]


def heldout_scores(model, pad_id: int, encoded) -> tuple[list[float], list[float]]:
    """The same scoring for both models: (chosen scores, rejected scores)."""
    import torch

    from rewardmodels.ml.scoring import score_sequences

    scores = score_sequences(model, encoded.first + encoded.second, pad_id=pad_id, device=torch.device("cpu"),
                             batch_size=64, bf16=False)
    return scores[:len(encoded)], scores[len(encoded):]


def accuracy(chosen: list[float], rejected: list[float], mask: list[bool] | None = None) -> float:
    picked = [c > r for c, r, keep in zip(chosen, rejected, mask or [True] * len(chosen)) if keep]
    return sum(picked) / len(picked) if picked else float("nan")


def token_figures(args, tokenizer, train_rows: list[dict]) -> dict:
    """Tokens per training pair, real and padded, over the first epoch: ours exactly (the trainer's own batches),
    TRL's padding estimated from seeded random batches of the pairs it keeps (its sampler is a random one)."""
    import random

    from rewardmodels.ml.data import Encoder, encode_pairs, length_grouped_batches

    pairs = pair_objects(train_rows)
    cut = encode_pairs(Encoder(tokenizer, args.max_length), pairs)
    full = encode_pairs(Encoder(tokenizer, 10**9), pairs)
    ours_len = cut.lengths()
    batches = length_grouped_batches(ours_len, args.batch_size, seed=args.seed * 1_000_003)
    kept = [(len(a), len(b)) for a, b in zip(full.first, full.second) if max(len(a), len(b)) <= args.max_length]
    order = list(range(len(kept)))
    random.Random(args.seed).shuffle(order)
    trl_batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    return {
        "ours_real": sum(len(a) + len(b) for a, b in zip(cut.first, cut.second)) / len(cut),
        "ours_padded": sum(2 * max(ours_len[i] for i in b) * len(b) for b in batches) / len(cut),
        "trl_real": sum(a + b for a, b in kept) / len(kept),
        "trl_padded": sum(2 * max(max(kept[i]) for i in b) * len(b) for b in trl_batches) / len(kept),
    }


def run_ours(args, backbone: Path, train_rows: list[dict], workdir: Path) -> dict:
    from rewardmodels.ml import TrainConfig, TrainHooks, load_scorer, train

    cfg = TrainConfig(backbone=str(backbone), epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                      max_length=args.max_length, eval_fraction=0.0, seed=args.seed, max_steps=args.max_steps,
                      warmup_ratio=args.warmup_ratio, bf16=False, device="cpu")
    data_file = write_jsonl(train_rows, workdir / "train.jsonl")
    wall0 = time.perf_counter()
    cpu = {"start": 0.0, "end": 0.0}  # process CPU time at the loop's start and after its last step

    def on_progress(fraction, eta):
        if fraction == 0.0:
            cpu["start"] = time.process_time()

    def on_metrics(step, split, values):
        if split == "train":
            cpu["end"] = time.process_time()
            if step % 20 == 0:
                print(f"   ours step {step:>4}  loss {values['loss']:.4f}  pairs/s {values['pairs_per_s']:.2f}", flush=True)

    result = train(cfg, data_files=[data_file], output_dir=workdir / "ours", provenance={"bench": "reward_vs_trl"},
                   hooks=TrainHooks(on_metrics=on_metrics, on_progress=on_progress))
    wall_total = time.perf_counter() - wall0
    scorer = load_scorer(workdir / "ours", device="cpu")
    return {"pairs": result.pairs_seen, "steps": result.steps, "train_s": result.train_seconds, "wall_s": wall_total,
            "cpu_s": cpu["end"] - cpu["start"], "model": scorer.model, "n_train": result.n_train}


def run_trl(args, backbone: Path, train_rows: list[dict], workdir: Path) -> dict:
    import datasets
    import torch
    import trl
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardmodels.ml.data import Encoder, encode_pairs

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    # Full sequences, uncut: TRL does its own max_length filtering.
    full = encode_pairs(Encoder(tokenizer, 10**9), pair_objects(train_rows))
    dataset = datasets.Dataset.from_dict({"chosen_ids": full.first, "rejected_ids": full.second})
    torch.manual_seed(args.seed)  # the same fresh head as ours (train() seeds before loading the backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = trl.RewardConfig(
        output_dir=str(workdir / "trl"), per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1, learning_rate=args.lr, lr_scheduler_type="linear",
        warmup_steps=args.warmup_ratio, weight_decay=0.0, max_grad_norm=1.0, max_length=args.max_length,
        bf16=False, fp16=False, use_cpu=True, seed=args.seed, data_seed=args.seed, disable_dropout=True,
        save_strategy="no", eval_strategy="no", report_to=[], logging_steps=20, dataloader_num_workers=0,
        disable_tqdm=True)
    wall0 = time.perf_counter()
    trainer = trl.RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    kept = len(trainer.train_dataset)
    cpu_train0 = time.process_time()
    output = trainer.train()
    cpu_train = time.process_time() - cpu_train0
    wall_total = time.perf_counter() - wall0
    steps = output.global_step
    pairs = min(steps * args.batch_size, kept * args.epochs) if args.max_steps else kept * args.epochs
    return {"pairs": pairs, "steps": steps, "train_s": output.metrics["train_runtime"], "wall_s": wall_total,
            "cpu_s": cpu_train, "model": trainer.model.eval(),
            "kept": kept, "dropped": len(dataset) - kept, "version": trl.__version__}


def main() -> None:
    parser = training_arguments(__doc__)  # --max-steps caps both trainers
    parser.add_argument("--warmup-ratio", type=float, default=0.05)
    parser.add_argument("--train-pairs", type=int, default=0, help="use this many training pairs (0: all)")
    parser.add_argument("--only", choices=["ours", "trl"], help="run one trainer only")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from rewardmodels.ml import fetch_default_backbone
    from rewardmodels.ml.data import sample_pairs, split_pairs
    from rewardmodels.ml.device import cap_cpu_threads

    cap_cpu_threads()
    backbone = fetch_default_backbone(MODELS_DIR)
    rows, counts = hh_pairs()
    train_rows, eval_rows = split_pairs(rows, args.eval_fraction, args.seed)
    train_rows = sample_pairs(train_rows, args.train_pairs, args.seed)
    bench.header("reward model training: rewardmodels.ml vs TRL RewardTrainer (MiniLM, CPU, fp32)",
                 command="python " + " ".join(sys.argv), epochs=args.epochs, lr=args.lr, batch=args.batch_size,
                 max_length=args.max_length, max_steps=args.max_steps, threads=torch.get_num_threads())
    print(f"   {counts['rows']} HH rows → {len(rows)} pairs ({counts['identical']} with equal replies left out); "
          f"seeded split: {len(train_rows)} training pairs, {len(eval_rows)} held-out pairs")
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    eval_encoded, fits = heldout_encoding(tokenizer, pair_objects(eval_rows), args.max_length)
    tokens = token_figures(args, tokenizer, train_rows)
    for name in ("ours", "trl"):
        real, padded = tokens[f"{name}_real"], tokens[f"{name}_padded"]
        print(f"   {name}: {real:.1f} real tokens per training pair, {padded:.1f} in the padded batch "
              f"({100 * (1 - real / padded):.0f}% padding{', estimated' if name == 'trl' else ''})")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in (("ours", run_ours), ("trl", run_trl)):
            if args.only and args.only != name:
                continue
            print(f"-- {name} (load {bench.load_average()})", flush=True)
            out = run(args, backbone, train_rows, Path(tmp))
            chosen, rejected = heldout_scores(out.pop("model"), tokenizer.pad_token_id, eval_encoded)
            out["acc_all"] = accuracy(chosen, rejected)
            out["acc_fit"] = accuracy(chosen, rejected, fits)
            out["n_fit"] = sum(fits)
            results[name] = out
            bench.figure(f"{name}: training pairs", out["pairs"])
            if name == "trl":
                bench.figure("trl: training pairs dropped (too long)", out["dropped"])
            bench.figure(f"{name}: optimizer steps", out["steps"])
            bench.figure(f"{name}: training loop", out["train_s"], "s")
            bench.figure(f"{name}: pairs/s", out["pairs"] / out["train_s"], "pairs/s")
            bench.figure(f"{name}: pairs per CPU-second (loop)", out["pairs"] / out["cpu_s"], "pairs/cpu-s")
            bench.figure(f"{name}: real tokens/s", tokens[f"{name}_real"] * out["pairs"] / out["train_s"], "tokens/s")
            bench.figure(f"{name}: held-out accuracy, all pairs", out["acc_all"])
            bench.figure(f"{name}: held-out accuracy, pairs that fit", out["acc_fit"], f"({out['n_fit']} pairs)")
    if len(results) == 2:
        ours, trl = results["ours"], results["trl"]
        ratio = (ours["pairs"] / ours["train_s"]) / (trl["pairs"] / trl["train_s"])
        cpu_ratio = (ours["pairs"] / ours["cpu_s"]) / (trl["pairs"] / trl["cpu_s"])
        bench.figure("pairs/s ratio ours / trl", ratio, "×", "≥ 1.5")
        bench.figure("pairs per CPU-s ratio ours / trl", cpu_ratio, "×")
        bench.figure("real tokens/s ratio ours / trl",
                     ratio * tokens["ours_real"] / tokens["trl_real"], "×")
        bench.figure("accuracy difference (points)", 100 * (ours["acc_all"] - trl["acc_all"]), "", "±1")
    bench.summary({"benchmark": "reward_vs_trl", "n_train": len(train_rows), "n_eval": len(eval_rows),
                   "args": vars(args), "tokens_per_pair": {k: round(v, 1) for k, v in tokens.items()},
                   "results": {k: {m: (round(v, 4) if isinstance(v, float) else v) for m, v in r.items()}
                               for k, r in results.items()}})


if __name__ == "__main__":
    main()
