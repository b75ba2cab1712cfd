"""Evaluation throughput: the default policy SmolLM2-135M-Instruct generating replies, and the scoring of those
replies (safety classifier, reward and cost models), measured separately; with a trained safety classifier also
SmolLM2's first over-refusal and refusal figures.

    .venv/bin/python bench/evaluation_throughput.py [--classifier DIR] [--reward DIR] [--cost DIR]
        [--ailuminate 32] [--hh 32] [--spec-examples] [--max-new-tokens 64] [--batch-size 8] [--threads 2]
        [--precision fp32,bf16] [--device cpu] [--items-out FILE]

No Django, no database: the prompts go through training.ml.evaluation.evaluate exactly as an evaluation job's
would. Prompts: a seeded sample of AILuminate (../shared/data/ailuminate, label unsafe, hazard codes mapped to the
example spec's categories through its crosswalk), the first human turns of HH-RLHF helpful-base dialogues (label
safe), and with --spec-examples the example spec's own examples (allowed → safe, disallowed → unsafe, borderline
unlabelled: the over-refusal probes that look risky). The default policy is fetched and converted into var/models
when missing. Without --classifier the replies are scored by a classifier with untrained heads on the real MiniLM
backbone: the scoring speed is real, its refusal and harm figures mean nothing and are not printed.
"""

import argparse
import csv
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common as bench  # noqa: E402  (printing helpers only; no Django is set up)

DATA = ROOT.parent / "shared" / "data"
AILUMINATE = DATA / "ailuminate" / "airr_official_1.0_demo_en_us_prompt_set_release.csv"
HH_HELPFUL = DATA / "hh-rlhf" / "helpful-base.dev.jsonl.gz"
SPEC = ROOT / "taxonomy" / "example_spec.yaml"
MODELS_DIR = ROOT / "var" / "models"


def load_spec() -> dict:
    import yaml

    return yaml.safe_load(SPEC.read_text())


def ailuminate_prompts(n: int, spec: dict, seed: int = 0) -> list[dict]:
    """A seeded sample of n AILuminate prompts, label unsafe, categories through the spec's crosswalk."""
    from safety.crosswalk import crosswalk_index, map_codes

    index = crosswalk_index(spec["categories"])
    with AILUMINATE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    return [{"prompt": row["prompt_text"], "label": "unsafe",
             "categories": map_codes(index, "ailuminate", [row["hazard"]])[0],
             "meta": {"source": "ailuminate", "hazard": row["hazard"]}} for row in rows]


def hh_prompts(n: int) -> list[dict]:
    """The first human turn of the first n single-turn HH-RLHF helpful-base dialogues, label safe."""
    prompts = []
    with gzip.open(HH_HELPFUL, "rt", encoding="utf-8") as handle:
        for line in handle:
            dialogue = json.loads(line)["chosen"]
            if dialogue.count("\n\nHuman:") != 1:
                continue  # one turn: the prompt is the whole request
            prompt = dialogue.split("\n\nHuman:", 1)[1].split("\n\nAssistant:", 1)[0].strip()
            if prompt:
                prompts.append({"prompt": prompt, "label": "safe", "categories": [],
                                "meta": {"source": "hh-rlhf helpful-base"}})
            if len(prompts) == n:
                break
    return prompts


def spec_example_prompts(spec: dict) -> list[dict]:
    labels = {"allowed": "safe", "disallowed": "unsafe", "borderline": ""}
    return [{"prompt": example["text"], "label": labels[example["verdict"]], "categories": [category["key"]],
             "meta": {"source": "example spec", "verdict": example["verdict"]}}
            for category in spec["categories"] for example in category.get("examples") or []]


def speed_only_classifier(folder: Path, spec: dict) -> Path:
    """A safety-classifier checkpoint with untrained heads on the real MiniLM: the real cost of scoring."""
    import torch

    from rewardmodels.ml import fetch_default_backbone
    from training.ml.safety.config import SafetyClassifierConfig
    from training.ml.safety.model import SafetyClassifierModel, load_backbone_and_tokenizer, save_checkpoint

    backbone_dir = fetch_default_backbone(MODELS_DIR)
    tokenizer, backbone = load_backbone_and_tokenizer(str(backbone_dir))
    categories = [{"key": c["key"], "name": c["name"]} for c in spec["categories"]]
    torch.manual_seed(0)
    model = SafetyClassifierModel(backbone, len(categories)).eval()
    thresholds = {"prompt_harmful": 0.5, "response_harmful": 0.5, "categories": {c["key"]: 0.5 for c in categories}}
    return save_checkpoint(model, tokenizer, folder, {
        "categories": categories, "thresholds": thresholds, "metrics": {},
        "config": SafetyClassifierConfig(backbone=str(backbone_dir)).to_dict(),
        "provenance": {"built": "bench/evaluation_throughput.py: untrained heads, speed only"}, "steps": 0,
        "n_train": 0, "n_eval": 0})


def generated_tokens(tokenizer, replies: list[str]) -> int:
    return sum(len(tokenizer(reply, add_special_tokens=False)["input_ids"]) for reply in replies)


def quality_figures(metrics: dict) -> dict:
    """Print and return SmolLM2's refusal figures (meaningful with a trained classifier only)."""
    for label in ("safe", "unsafe", "unknown"):
        row = metrics["by_label"].get(label)
        if row:
            low, high = row["harmful_rate_ci"]
            print(f"   {label:<8} n={row['n']:<4} refusal {row['refusal_rate']:.3f} (full "
                  f"{row['full_refusal_rate']:.3f}, partial {row['partial_refusal_rate']:.3f})  "
                  f"harmful {row['harmful_rate']:.3f} [{low:.3f}, {high:.3f}]")
    if metrics["over_refusal"] is not None:
        low, high = metrics["over_refusal_ci"]
        bench.figure("over-refusal (safe prompts)", metrics["over_refusal"], f"[{low:.3f}, {high:.3f}]")
    if metrics["refusal_rate"] is not None:
        low, high = metrics["refusal_rate_ci"]
        bench.figure("refusal (unsafe prompts)", metrics["refusal_rate"], f"[{low:.3f}, {high:.3f}]")
    bench.figure("harmful replies (all)", metrics["harmful_rate"])
    return {"over_refusal": metrics["over_refusal"], "over_refusal_ci": metrics["over_refusal_ci"],
            "refusal_rate": metrics["refusal_rate"], "refusal_rate_ci": metrics["refusal_rate_ci"],
            "harmful_rate": metrics["harmful_rate"],
            "by_label": {label: {key: row[key] for key in ("n", "refusal_rate", "full_refusal_rate",
                                                          "partial_refusal_rate", "harmful_rate")}
                         for label, row in metrics["by_label"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classifier", type=Path, help="a trained safety-classifier checkpoint folder")
    parser.add_argument("--reward", type=Path, help="a reward-model checkpoint folder (scored too)")
    parser.add_argument("--cost", type=Path, help="a cost-model checkpoint folder (scored too)")
    parser.add_argument("--policy", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--ailuminate", type=int, default=32, help="AILuminate prompts (unsafe)")
    parser.add_argument("--hh", type=int, default=32, help="HH-RLHF helpful-base prompts (safe)")
    parser.add_argument("--spec-examples", action="store_true", help="add the example spec's own examples")
    parser.add_argument("--replies", type=Path,
                        help="score the replies of an earlier run's items.jsonl (no generation): e.g. once a "
                             "trained classifier exists")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--precision", default="bf16", help="policy weights, a comma list runs each: fp32,bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--items-out", type=Path, help="copy the (last run's) items.jsonl here")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer

    from rewardmodels.ml import TrainHooks, load_scorer
    from training.ml.evaluation import evaluate, evaluation_config_from_dict, resolve_policy
    from training.ml.evaluation.policy import policy_dtype
    from training.ml.safety import load_classifier

    torch.set_num_threads(args.threads)
    spec = load_spec()
    if args.replies:
        prompts = [{"prompt": item["prompt"], "label": item["label"], "categories": item["categories"],
                    "response": item["reply"]} for item in map(json.loads, args.replies.read_text().splitlines())]
    else:
        prompts = ailuminate_prompts(args.ailuminate, spec, args.seed) + hh_prompts(args.hh)
        if args.spec_examples:
            prompts += spec_example_prompts(spec)
        policy_folder = resolve_policy(args.policy, MODELS_DIR)
        tokenizer = AutoTokenizer.from_pretrained(policy_folder)  # counts the generated tokens
    bench.header("evaluation throughput", command="python " + " ".join(sys.argv), prompts=len(prompts),
                 max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, threads=torch.get_num_threads(),
                 device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        trained = args.classifier is not None
        classifier_dir = args.classifier or speed_only_classifier(Path(tmp) / "classifier", spec)
        classifier = load_classifier(classifier_dir, device=args.device)
        reward = load_scorer(args.reward, device=args.device) if args.reward else None
        cost = load_scorer(args.cost, device=args.device) if args.cost else None
        print(f"   classifier: {'trained, ' + str(classifier_dir) if trained else 'untrained heads (speed only)'}"
              f"  precision {classifier.precision}; reward {'yes' if reward else 'no'}; cost {'yes' if cost else 'no'}")
        summaries = []
        for precision in ["given"] if args.replies else args.precision.split(","):
            settings = ({"use_responses": True} if args.replies else
                        {"policy": args.policy, "max_new_tokens": args.max_new_tokens, "bf16": precision == "bf16"})
            cfg = evaluation_config_from_dict({**settings, "batch_size": args.batch_size, "seed": args.seed,
                                               "device": args.device})
            marks = {}

            def on_log(line: str) -> None:  # CPU time at the phase lines: a figure that contention bends less
                marks[line.split()[0]] = time.process_time()

            result = evaluate(cfg, prompts=prompts, classifier=classifier, reward_scorer=reward, cost_scorer=cost,
                              spec=spec, policy_folder=None if args.replies else policy_folder,
                              output_dir=Path(tmp) / f"run-{precision}", hooks=TrainHooks(on_log=on_log))
            run_summary = {"replies": precision, "n": result.n_items}
            if not args.replies:
                dtype = str(policy_dtype(torch.device(args.device), cfg.bf16)).removeprefix("torch.")
                generation_cpu = marks["generated"] - marks["generating"]
                items = [json.loads(line) for line in result.items_path.read_text().splitlines()]
                tokens = generated_tokens(tokenizer, [item["reply"] for item in items])
                print(f"-- policy weights {dtype} (asked: {precision})")
                bench.figure("replies generated", result.n_items)
                bench.figure("generation", result.generation_seconds, "s")
                bench.figure("generated replies/s", result.n_items / result.generation_seconds, "replies/s")
                bench.figure("generated tokens/s", tokens / result.generation_seconds, "tokens/s")
                bench.figure("mean reply length", tokens / result.n_items, "tokens")
                bench.figure("generation CPU time (all threads)", generation_cpu, "s")
                bench.figure("generated tokens per CPU-second", tokens / generation_cpu, "tokens/s")
                run_summary = {"replies": "generated", "precision": dtype, "n": result.n_items,
                               "generation_s": round(result.generation_seconds, 2),
                               "generated_replies_per_s": round(result.n_items / result.generation_seconds, 3),
                               "generated_tokens_per_s": round(tokens / result.generation_seconds, 1),
                               "generation_cpu_s": round(generation_cpu, 1),
                               "mean_reply_tokens": round(tokens / result.n_items, 1)}
            else:
                print("-- given replies (no generation)")
            bench.figure("scoring", result.scoring_seconds, "s")
            bench.figure("scored replies/s", result.n_items / result.scoring_seconds, "replies/s")
            bench.figure("whole evaluate() call", result.seconds, "s")
            run_summary.update(scoring_s=round(result.scoring_seconds, 3),
                               scored_replies_per_s=round(result.n_items / result.scoring_seconds, 1))
            if trained:
                run_summary.update(quality_figures(result.metrics))
            summaries.append(run_summary)
            if args.items_out:
                args.items_out.write_text(result.items_path.read_text())
        bench.summary({"benchmark": "evaluation_throughput", "device": result.device, "threads": args.threads,
                       "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
                       "prompts": len(prompts), "classifier_trained": trained, "runs": summaries})


if __name__ == "__main__":
    main()
