"""The Lagrangian against a fixed penalty, at equal steps, on the default policy (SmolLM2-135M-Instruct).

    .venv/bin/python bench/lagrangian_vs_fixed.py --prepare     # train and cache the two real models only
    .venv/bin/python bench/lagrangian_vs_fixed.py               # the comparison (prepares first when missing)
    .venv/bin/python bench/lagrangian_vs_fixed.py --steps 16 --modes lagrangian,fixed:1,fixed:4 --hazards vcr,iwp,dfm,ssh

No Django, no database, HF_HUB_OFFLINE=1. PREPARATION (cached under var/bench/, reused when present):
- the safety classifier (the cost: its reply-harmful head, and the judge of the evaluations), trained exactly as
  `manage.py safety_classifier_train` does on the public rows of ../shared/data, by
  bench/safety_classifier_quality.py --out var/bench/safety-classifier (which prints its held-out quality);
- the reward model: rewardmodels.ml.train on HH-RLHF helpful-base pairs (../shared/data), MiniLM backbone, 1 epoch.

PROMPTS: AILuminate prompts of a few hazards (--hazards; each prompt gets ONE spec category, the first key the
example spec's crosswalk maps its hazard to, so each λ_k prices one set of prompts), and single-turn HH-RLHF
helpful-base first turns (label safe, no category: the reward on them is what the constraint may cost). One
seeded, disjoint split: --train-per-hazard / --train-safe for the fine-tune, --eval-per-hazard / --eval-safe held
out for the evaluations.

RUNS (each from the same base, same seed, same steps, prompts, k, lengths): the Lagrangian (`lambda_mode
lagrangian`, λ from --lambda-init) and fixed penalties (`fixed:<λ>`: λ stays there). Budgets (--budgets key=rate,
default: chosen from the BASE policy's held-out harmful rate so that they bind: --bind-scale × the base rate for
every category but the last, which gets a budget above its base rate: its λ should fall). The cost is the
classifier's reply-harmful signal (--cost-signal: "indicator" = 1[p >= its stored threshold], the same thing the
evaluation counts, so Ĉ_k and the budget are both harmful rates; "probability" = p).

EVALUATION (greedy, --eval-max-new-tokens): training.ml.evaluation.evaluate on the held-out prompts, the fine-tuned
adapter merged into the base: per-category harmful rate with its Wilson interval and n against the budget,
over-refusal on the safe prompts, mean reward on the safe prompts (the reward model), before (base) and after each
run; λ and Ĉ per category at the end of each run.
"""


import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common as bench  # noqa: E402  (printing helpers only; no Django is set up)

DATA = ROOT.parent / "shared" / "data"
HH_HELPFUL = DATA / "hh-rlhf" / "helpful-base.dev.jsonl.gz"
MODELS_DIR = ROOT / "var" / "models"
CACHE = ROOT / "var" / "bench"
CLASSIFIER_DIR = CACHE / "safety-classifier"
REWARD_DIR = CACHE / "reward-helpful"


def hh_helpful_pairs(path: Path = HH_HELPFUL) -> list[dict]:
    """HH-RLHF helpful-base dialogues → export-format rows {id, prompt, chosen, rejected} (equal replies left out)."""
    from rewardmodels.ml.data import split_hh_dialogue

    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            record = json.loads(line)
            split = split_hh_dialogue(record["chosen"], record["rejected"])
            if split is None or split[1] == split[2]:
                continue
            rows.append({"id": f"hh-helpful-{index}", "prompt": split[0], "chosen": split[1], "rejected": split[2]})
    return rows


def prepare_reward_model(*, epochs: int = 1, max_length: int = 192, threads: int = 1) -> Path:
    """Train (once) the reward model on HH helpful-base pairs; the checkpoint folder."""
    if (REWARD_DIR / "specloop.json").exists():
        return REWARD_DIR
    import torch

    torch.set_num_threads(threads)
    from rewardmodels.ml import TrainConfig, TrainHooks, fetch_default_backbone, train

    rows = hh_helpful_pairs()
    cfg = TrainConfig(backbone=str(fetch_default_backbone(MODELS_DIR)), epochs=epochs, learning_rate=5e-5,
                      batch_size=16, max_length=max_length, eval_fraction=0.1, seed=0, bf16=False, device="cpu")
    print(f"== reward model: {len(rows)} HH helpful-base pairs, {cfg.to_dict() | {'backbone': 'MiniLM'}}", flush=True)
    data_file = CACHE / "hh-helpful.jsonl"
    CACHE.mkdir(parents=True, exist_ok=True)
    data_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    last = {"t": time.monotonic()}

    def on_metrics(step: int, split: str, values: dict) -> None:
        if split == "train" and (step % 10 == 0 or time.monotonic() - last["t"] > 60):
            last["t"] = time.monotonic()
            print(f"   step {step:>4}  loss {values['loss']:.4f}  pairs/s {values['pairs_per_s']:.2f}", flush=True)

    result = train(cfg, data_files=[data_file], output_dir=REWARD_DIR,
                   provenance={"dataset": "hh-rlhf helpful-base (dev subset, ../shared/data)"},
                   hooks=TrainHooks(on_metrics=on_metrics, on_log=lambda line: print("   " + line, flush=True)))
    print(f"   reward model: {result.n_train} training pairs, {result.n_eval} held out, held-out accuracy "
          f"{result.metrics['accuracy']:.3f}, {result.seconds:.0f} s", flush=True)
    return REWARD_DIR


def prepare_classifier(threads: int) -> Path:
    """Train (once) the default safety classifier into CLASSIFIER_DIR through bench/safety_classifier_quality.py."""
    if (CLASSIFIER_DIR / "specloop.json").exists():
        return CLASSIFIER_DIR
    import subprocess

    print(f"== safety classifier: training into {CLASSIFIER_DIR} (minutes)", flush=True)
    subprocess.run([sys.executable, str(ROOT / "bench" / "safety_classifier_quality.py"), "--out", str(CLASSIFIER_DIR),
                    "--threads", str(threads)], check=True)
    return CLASSIFIER_DIR


# --- prompts ---------------------------------------------------------------------------------------------------------

def split_prompts(args, spec: dict) -> tuple[list[dict], list[dict], dict[str, str]]:
    """(training rows, held-out rows, {hazard: category key}); rows {"prompt", "label", "categories", "meta"}."""
    import csv
    import random

    from evaluation_throughput import AILUMINATE, hh_prompts
    from safety.crosswalk import crosswalk_index, map_codes

    index = crosswalk_index(spec["categories"])
    with AILUMINATE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    train, held, keys = [], [], {}
    for hazard in args.hazards.split(","):
        mapped, _ = map_codes(index, "ailuminate", [hazard])
        if not mapped:
            raise SystemExit(f"hazard {hazard!r} maps to no category of the example spec")
        keys[hazard] = mapped[0]
        mine = [r for r in rows if r["hazard"] == hazard]
        need = args.train_per_hazard + args.eval_per_hazard
        if len(mine) < need:
            raise SystemExit(f"hazard {hazard}: {len(mine)} prompts, {need} asked for")
        as_rows = [{"prompt": r["prompt_text"], "label": "unsafe", "categories": [mapped[0]],
                    "meta": {"source": "ailuminate", "hazard": hazard, "id": r["release_prompt_id"]}} for r in mine]
        train += as_rows[:args.train_per_hazard]
        held += as_rows[args.train_per_hazard:need]
    safe = hh_prompts(args.train_safe + args.eval_safe)
    random.Random(args.seed + 1).shuffle(safe)
    train += safe[:args.train_safe]
    held += safe[args.train_safe:args.train_safe + args.eval_safe]
    return train, held, keys


# --- evaluation ------------------------------------------------------------------------------------------------------

def merged_policy(base: str, adapter: Path | None):
    """(tokenizer, model) of the base with the adapter merged in (or the base alone)."""
    import torch

    from training.ml.evaluation.policy import load_policy

    tokenizer, model = load_policy(base, torch.device("cpu"), bf16=True)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        model.eval()
    return tokenizer, model


def evaluate_policy(args, name: str, base: str, adapter: Path | None, held: list[dict], spec: dict, classifier,
                    reward, out_dir: Path) -> dict:
    """Greedy replies of base(+adapter) to the held-out prompts, scored by training.ml.evaluation.evaluate."""
    from training.ml.evaluation import evaluate, evaluation_config_from_dict
    from training.ml.evaluation.policy import generate_replies

    started = time.perf_counter()
    tokenizer, model = merged_policy(base, adapter)
    replies = generate_replies(tokenizer, model, [r["prompt"] for r in held], max_new_tokens=args.eval_max_new_tokens,
                               batch_size=8)
    del model
    generation = time.perf_counter() - started
    cfg = evaluation_config_from_dict({"use_responses": True, "policy": "", "batch_size": 8, "device": "cpu"})
    rows = [{**r, "response": reply} for r, reply in zip(held, replies)]
    result = evaluate(cfg, prompts=rows, classifier=classifier, reward_scorer=reward, spec=spec, policy_folder=None,
                      output_dir=out_dir / name)
    items = [json.loads(line) for line in result.items_path.read_text().splitlines()]
    m = result.metrics
    safe_rewards = [i["reward"] for i in items if i["label"] == "safe"]
    unsafe_rewards = [i["reward"] for i in items if i["label"] == "unsafe"]
    figures = {
        "name": name, "seconds": round(time.perf_counter() - started, 1), "generation_s": round(generation, 1),
        "over_refusal": m["over_refusal"], "over_refusal_ci": m["over_refusal_ci"],
        "n_safe": len(safe_rewards), "reward_safe": sum(safe_rewards) / len(safe_rewards) if safe_rewards else None,
        "reward_unsafe": sum(unsafe_rewards) / len(unsafe_rewards) if unsafe_rewards else None,
        "refusal_rate": m["refusal_rate"], "harmful_rate": m["harmful_rate"],
        "by_category": {k: {"n": v["n"], "harmful": round(v["harmful_rate"] * v["n"]), "harmful_rate": v["harmful_rate"],
                            "ci": v["harmful_rate_ci"], "refusal_rate": v["refusal_rate"],
                            "mean_p_harmful": _mean([i["response_harmful"] for i in items
                                                     if k in (i["categories"] or [])])}
                        for k, v in m["by_category"].items()},
        "examples": [{"prompt": i["prompt"][:80], "reply": i["reply"][:160], "p_harmful": i["response_harmful"],
                      "refusal": i["refusal"]} for i in items[:: max(1, len(items) // 6)]][:6],
    }
    print(f"   [{name}] evaluated {len(items)} replies in {figures['seconds']} s: over-refusal "
          f"{_pct(figures['over_refusal'])}, reward on safe prompts {_f(figures['reward_safe'])}, harmful per category "
          + ", ".join(f"{k} {v['harmful']}/{v['n']}" for k, v in figures["by_category"].items()), flush=True)
    return figures


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


# --- runs ------------------------------------------------------------------------------------------------------------

def fine_tune(args, mode: str, base: str, train_rows: list[dict], budgets: dict, classifier, reward, out_dir: Path):
    from rewardmodels.ml import TrainHooks
    from training.ml.finetune import (PromptRow, cost_fn_from_classifier, finetune_config_from_dict,
                                      reward_fn_from_scorer, train_constrained)

    lambda_mode, _, value = mode.partition(":")
    settings = {"policy": base, "group_size": args.k, "prompts_per_step": args.prompts, "steps": args.steps,
                "max_new_tokens": args.max_new_tokens, "learning_rate": args.lr, "kl_coef": args.kl,
                "lambda_mode": lambda_mode, "lambda_init": float(value) if value else args.lambda_init,
                "lambda_lr": args.lambda_lr, "lambda_delay": args.lambda_delay, "cost_window": args.cost_window,
                "cost_signal": args.cost_signal, "baseline": args.baseline, "seed": args.seed, "device": "cpu",
                "eval_fraction": 0.0, "evaluate": False}
    cfg = finetune_config_from_dict(settings)
    trajectory = []

    def on_metrics(step: int, split: str, values: dict) -> None:
        if split != "train":
            return
        trajectory.append({"step": step, **values})
        lam = " ".join(f"λ[{k}]={values.get('lambda/' + k, 0):.2f} Ĉ={_f(values.get('cost/' + k), 2)}"
                       for k in budgets)
        print(f"      [{mode}] step {step:>3}  reward {values.get('reward', 0):+.3f}  kl {values.get('kl', 0):.4f}  "
              f"{lam}", flush=True)

    started = time.perf_counter()
    result = train_constrained(cfg, policy_folder=base,
                               prompts=[PromptRow(prompt=r["prompt"], categories=list(r["categories"]),
                                                  label=r["label"]) for r in train_rows],
                               budgets=budgets, reward_fn=reward_fn_from_scorer(reward),
                               cost_fn=cost_fn_from_classifier(classifier, args.cost_signal),
                               output_dir=out_dir / mode.replace(":", "-"),
                               provenance={"bench": "lagrangian_vs_fixed", "mode": mode},
                               hooks=TrainHooks(on_metrics=on_metrics))
    return {"mode": mode, "seconds": round(time.perf_counter() - started, 1), "status": result.status,
            "final_lambda": result.final_lambda, "final_cost": result.final_cost, "steps": result.steps,
            "rollouts_per_second": result.rollouts_per_second, "metrics": result.metrics,
            "output_dir": str(result.output_dir), "trajectory": trajectory}


def print_tables(budgets: dict, base: dict, runs: list[dict]) -> None:
    keys = list(budgets)
    print("\n   harmful rate on held-out prompts per category (harmful/n, Wilson 95% interval) against the budget")
    print(f"   {'policy':<14}" + "".join(f" {k[:26]:>34}" for k in keys) + f" {'over-refusal':>18} {'reward safe':>11}")
    print(f"   {'budget':<14}" + "".join(f" {budgets[k]:>34.3f}" for k in keys))

    def row(name: str, ev: dict) -> str:
        cells = []
        for k in keys:
            c = ev["by_category"].get(k)
            cells.append("n/a" if not c else f"{c['harmful']}/{c['n']} {c['harmful_rate']:.3f} "
                                             f"[{c['ci'][0]:.2f},{c['ci'][1]:.2f}]{' *' if c['harmful_rate'] > budgets[k] else ''}")
        return (f"   {name:<14}" + "".join(f" {c:>34}" for c in cells)
                + f" {_pct(ev['over_refusal']):>18} {_f(ev['reward_safe']):>11}")

    print(row("base", base))
    for run in runs:
        print(row(run["mode"], run["eval"]))
    print("   (* = over budget)")
    print("\n   λ and Ĉ (windowed training estimate) per category at the end of each run")
    for run in runs:
        print(f"   {run['mode']:<14} " + "  ".join(
            f"{k}: λ {run['final_lambda'].get(k, 0):.3f} Ĉ {_f(run['final_cost'].get(k), 3)}" for k in keys)
            + f"   ({run['seconds']} s, {run['rollouts_per_second']:.2f} rollouts/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prepare", action="store_true", help="train and cache the models, then stop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--base-only", action="store_true", help="evaluate the base policy only (pick hazards)")
    parser.add_argument("--policy", default=str(MODELS_DIR / "SmolLM2-135M-Instruct"))
    parser.add_argument("--hazards", default="vcr,iwp,dfm,ssh", help="AILuminate hazard codes (one category each)")
    parser.add_argument("--train-per-hazard", type=int, default=24)
    parser.add_argument("--eval-per-hazard", type=int, default=24)
    parser.add_argument("--train-safe", type=int, default=24)
    parser.add_argument("--eval-safe", type=int, default=24)
    parser.add_argument("--modes", default="lagrangian,fixed:1,fixed:4",
                        help="comma list: lagrangian, dual_ascent, fixed:<λ>")
    parser.add_argument("--budgets", default="", help="key=rate,... (default: from the base policy, see --bind-scale)")
    parser.add_argument("--bind-scale", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--eval-max-new-tokens", type=int, default=40)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--kl", type=float, default=0.05)
    parser.add_argument("--lambda-init", type=float, default=1.0)
    parser.add_argument("--lambda-lr", type=float, default=0.2)
    parser.add_argument("--lambda-delay", type=int, default=2)
    parser.add_argument("--cost-window", type=int, default=32)
    parser.add_argument("--cost-signal", default="indicator", choices=["indicator", "probability"])
    parser.add_argument("--baseline", default="group", choices=["group", "loo"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=CACHE / "lagrangian_vs_fixed")
    args = parser.parse_args()
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "bench"))
    if args.prepare:
        prepare_reward_model(threads=args.threads)
        prepare_classifier(args.threads)
        return
    import torch

    torch.set_num_threads(args.threads)
    from evaluation_throughput import load_spec
    from rewardmodels.ml import load_scorer
    from training.ml.safety import load_classifier

    started = time.perf_counter()
    reward_dir = prepare_reward_model(threads=args.threads)
    classifier_dir = prepare_classifier(args.threads)
    torch.set_num_threads(args.threads)
    spec = load_spec()
    train_rows, held, keys = split_prompts(args, spec)
    bench.header("Lagrangian vs fixed λ, constrained fine-tune of the default policy",
                 command="python " + " ".join(sys.argv), hazards=keys, train=len(train_rows), held_out=len(held),
                 steps=args.steps, prompts=args.prompts, k=args.k, max_new_tokens=args.max_new_tokens,
                 lr=args.lr, kl=args.kl, cost_signal=args.cost_signal, modes=args.modes, threads=args.threads)
    classifier = load_classifier(classifier_dir, "cpu")
    reward = load_scorer(reward_dir, device="cpu")
    print(f"   classifier {classifier_dir} (reply-harmful threshold {classifier.thresholds['response_harmful']:.3f}); "
          f"reward model {reward_dir}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    spec_for_eval = {"categories": spec["categories"], "budgets": {}}
    base_eval = evaluate_policy(args, "base", args.policy, None, held, spec_for_eval, classifier, reward, args.out)
    if args.budgets:
        budgets = {k: float(v) for k, v in (item.split("=", 1) for item in args.budgets.split(","))}
    else:
        ordered = list(keys.values())
        budgets = {}
        for i, key in enumerate(ordered):
            rate = base_eval["by_category"][key]["harmful_rate"]
            if i < len(ordered) - 1:
                budgets[key] = round(max(0.01, args.bind_scale * rate), 3)
            else:
                budgets[key] = round(min(1.0, rate + 0.15), 3)  # slack: this λ should fall
    print(f"   budgets {budgets} (base harmful rates "
          + ", ".join(f"{k} {_f(base_eval['by_category'][k]['harmful_rate'])}" for k in budgets) + ")", flush=True)
    if args.base_only:
        bench.summary({"benchmark": "lagrangian_vs_fixed", "base": base_eval, "budgets": budgets})
        return
    runs = []
    for mode in args.modes.split(","):
        print(f"-- {mode} (load {bench.load_average()})", flush=True)
        run = fine_tune(args, mode, args.policy, train_rows, budgets, classifier, reward, args.out)
        run["eval"] = evaluate_policy(args, mode, args.policy, Path(run["output_dir"]), held, spec_for_eval,
                                      classifier, reward, args.out)
        runs.append(run)
        (args.out / "runs.json").write_text(json.dumps({"budgets": budgets, "base": base_eval, "runs": runs},
                                                       indent=1, default=str))
    print_tables(budgets, base_eval, runs)
    bench.figure("wall time (all runs)", time.perf_counter() - started, "s")
    bench.summary({"benchmark": "lagrangian_vs_fixed", "budgets": budgets, "hazards": keys,
                   "base": {k: v for k, v in base_eval.items() if k != "examples"},
                   "runs": [{"mode": r["mode"], "final_lambda": r["final_lambda"], "final_cost": r["final_cost"],
                             "seconds": r["seconds"], "eval": {k: v for k, v in r["eval"].items() if k != "examples"}}
                            for r in runs]})


if __name__ == "__main__":
    main()
