"""training.ml.finetune.train_constrained against TRL's GRPOTrainer: rollouts/s and training tokens/s.

    .venv/bin/python bench/finetune_vs_trl.py                       # 2 rounds, ours and TRL alternated
    .venv/bin/python bench/finetune_vs_trl.py --steps 3 --rounds 1  # a short run
    .venv/bin/python bench/finetune_vs_trl.py --profile ours        # cProfile of one side (top functions)

Benchmark-only dependency: TRL (`.venv/bin/pip install -e '.[bench]'` or `pip install trl datasets`). No Django,
no database, HF_HUB_OFFLINE=1: nothing is downloaded.

The same on both sides: the policy (the default SmolLM2-135M-Instruct from var/models/SmolLM2-135M-Instruct, its
weights in the dtype training.ml.evaluation.policy.policy_dtype picks: bf16 on a CPU that computes bf16 natively),
a fresh peft LoRA adapter (rank, alpha, dropout 0, q_proj/v_proj), the same prompts in the chat template (8
prompts: 4 HH-RLHF helpful-base first turns, 4 AILuminate prompts), k replies per prompt (one optimizer step =
prompts × k rollouts), max new tokens, temperature 1 / top_p 1 / no top-k, micro-batches of the same size with
gradient accumulation over the step, the KL coefficient (TRL's beta; the reference is the adapter disabled on both
sides), learning rate (constant), gradient clipping, the same reward function (the HH-helpful reward model cached
by bench/lagrangian_vs_fixed.py --prepare, scored by rewardmodels.ml's scorer; a reward model with an untrained
head on the real MiniLM when that cache is missing: same cost, meaningless values), the same torch threads.
No cost model and no budgets on our side (TRL has neither): the comparison is the loop itself. TRL's own
defaults that would make it slower and that our loop does not do are turned off: gradient checkpointing
(TRL's default is on), dropout.

Each side runs in a fresh child process (same command line, --side), alternated round by round (ours, TRL, TRL,
ours, ...), so they share the machine's state as equally as a shared machine allows. The clock starts at the end of
the first optimizer step (model loading, the adapter's creation and the first step's warm-up are outside it) and
stops at the end of the last: rollouts/s = rollouts of steps 2..N / that time; training tokens/s = completion
tokens (each side's own count of the reply tokens trained on, eos included where the reply ended) / that time.
CPU time of the child over the same window (time.process_time: all its threads) is printed as well, and the
machine's load average before each child.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _common as bench  # noqa: E402  (printing helpers only; no Django is set up)

POLICY = ROOT / "var" / "models" / "SmolLM2-135M-Instruct"
REWARD_DIR = ROOT / "var" / "bench" / "reward-helpful"
MODELS_DIR = ROOT / "var" / "models"


def bench_prompts(n: int) -> list[str]:
    """n prompts: half HH-RLHF helpful-base first turns, half a seeded AILuminate sample."""
    from evaluation_throughput import ailuminate_prompts, hh_prompts, load_spec

    half = n // 2
    rows = hh_prompts(n - half) + ailuminate_prompts(half, load_spec(), seed=0)
    return [row["prompt"] for row in rows]


def reward_scorer(folder: Path | None):
    """The cached HH-helpful reward model, or (missing) one with an untrained head on the real MiniLM."""
    from rewardmodels.ml import load_scorer

    if folder and (folder / "specloop.json").exists():
        return load_scorer(folder, device="cpu"), str(folder)
    from rewardmodels.ml import TrainConfig, fetch_default_backbone, train

    tmp = Path(tempfile.mkdtemp(prefix="bench-reward-"))
    data = tmp / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n"
                            for i in range(4)))
    cfg = TrainConfig(backbone=str(fetch_default_backbone(MODELS_DIR)), max_steps=1, batch_size=2, eval_fraction=0.0,
                      device="cpu", bf16=False)
    train(cfg, data_files=[data], output_dir=tmp / "model", provenance={"built": "speed only"})
    return load_scorer(tmp / "model", device="cpu"), "untrained head (speed only)"


class Clock:
    """(wall, cpu) at the end of every optimizer step, and each step's mean reply length."""

    def __init__(self):
        self.marks: list[tuple[float, float]] = []
        self.reply_tokens: list[float] = []
        self.rewards: list[float] = []

    def mark(self) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))
        print(f"      step {len(self.marks)} done", file=sys.stderr, flush=True)

    def figures(self, rollouts_per_step: int) -> dict:
        if len(self.marks) < 2:
            raise SystemExit("need at least 2 steps")
        wall = self.marks[-1][0] - self.marks[0][0]
        cpu = self.marks[-1][1] - self.marks[0][1]
        steps = len(self.marks) - 1
        tokens = sum(self.reply_tokens[1:]) * rollouts_per_step
        return {"timed_steps": steps, "wall_s": wall, "cpu_s": cpu, "rollouts": steps * rollouts_per_step,
                "rollouts_per_s": steps * rollouts_per_step / wall, "tokens": tokens, "tokens_per_s": tokens / wall,
                "tokens_per_cpu_s": tokens / cpu, "mean_reply_tokens": tokens / (steps * rollouts_per_step),
                "step_s": [round(b[0] - a[0], 2) for a, b in zip(self.marks, self.marks[1:])],
                "first_reward": self.rewards[0] if self.rewards else None,
                "last_reward": self.rewards[-1] if self.rewards else None}


def run_ours(args, prompts: list[str], scorer) -> dict:
    from rewardmodels.ml import TrainHooks
    from training.ml.finetune import (PromptRow, finetune_config_from_dict, reward_fn_from_scorer,
                                      train_constrained)

    cfg = finetune_config_from_dict({
        "policy": str(args.policy), "group_size": args.k, "prompts_per_step": args.prompts, "steps": args.steps,
        "max_new_tokens": args.max_new_tokens, "temperature": 1.0, "top_p": 1.0, "kl_coef": args.kl,
        "learning_rate": args.lr, "lora_rank": args.lora_rank, "lora_alpha": 2 * args.lora_rank, "lora_dropout": 0.0,
        "lora_targets": ["q_proj", "v_proj"], "batch_size": args.batch_size, "max_grad_norm": 1.0, "seed": 0,
        "device": "cpu", "bf16": args.bf16, "eval_fraction": 0.0, "evaluate": False, "lambda_mode": "fixed"})
    clock = Clock()

    def on_metrics(step: int, split: str, values: dict) -> None:
        if split == "train":
            clock.mark()
            clock.reply_tokens.append(float(values.get("reply_tokens", 0.0)))
            clock.rewards.append(float(values.get("reward", 0.0)))

    def cost_fn(prompts_, replies_):
        return [0.0] * len(replies_)

    with tempfile.TemporaryDirectory() as tmp:
        result = train_constrained(cfg, policy_folder=str(args.policy),
                                   prompts=[PromptRow(prompt=p, categories=[]) for p in prompts], budgets={},
                                   reward_fn=reward_fn_from_scorer(scorer), cost_fn=cost_fn,
                                   output_dir=Path(tmp) / "out", provenance={"bench": "finetune_vs_trl"},
                                   hooks=TrainHooks(on_metrics=on_metrics))
    out = clock.figures(args.prompts * args.k)
    out["own_figures"] = {"rollouts_per_second": result.rollouts_per_second,
                          "tokens_per_second": result.tokens_per_second, "seconds": result.seconds,
                          "device": result.device}
    return out


def run_trl(args, prompts: list[str], scorer) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from training.ml.evaluation.policy import load_policy

    tokenizer, model = load_policy(str(args.policy), torch.device("cpu"), bf16=args.bf16)
    clock = Clock()

    class Callback(TrainerCallback):
        def on_step_end(self, targs, state, control, **kwargs):
            clock.mark()

        def on_log(self, targs, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                clock.reply_tokens.append(float(logs["completions/mean_length"]))
                clock.rewards.append(float(logs.get("reward", 0.0)))

    def reward(prompts, completions, **kwargs):
        return scorer.score([p[-1]["content"] for p in prompts], [c[0]["content"] for c in completions])

    rollouts = args.prompts * args.k
    with tempfile.TemporaryDirectory() as tmp:
        config = GRPOConfig(
            output_dir=tmp, per_device_train_batch_size=args.batch_size,
            gradient_accumulation_steps=max(1, rollouts // args.batch_size), num_generations=args.k,
            max_completion_length=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0, beta=args.kl,
            learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, max_steps=args.steps,
            max_grad_norm=1.0, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, seed=0,
            bf16=args.trl_autocast, gradient_checkpointing=False, disable_dropout=True, dataloader_num_workers=0,
            log_completions=False)
        lora = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.0,
                          target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in prompts])
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=lora, callbacks=[Callback()])
        trainer.train()
    out = clock.figures(rollouts)
    out["own_figures"] = {"lora_dtype": str(next(p for n, p in trainer.model.named_parameters()
                                                 if "lora_A" in n).dtype),
                          "base_dtype": str(next(p for n, p in trainer.model.named_parameters()
                                                 if "lora" not in n).dtype)}
    return out


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    prompts = bench_prompts(args.prompts)
    scorer, which = reward_scorer(REWARD_DIR)
    runner = run_ours if args.side == "ours" else run_trl
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        out = runner(args, prompts, scorer)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative")
        stats.print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
    else:
        out = runner(args, prompts, scorer)
    out.update(side=args.side, reward_model=which, threads=torch.get_num_threads(),
               peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", type=Path, default=POLICY)
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run (the first is not timed)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--k", type=int, default=4, help="replies per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per forward/backward micro-batch")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--kl", type=float, default=0.05, help="KL coefficient (TRL's beta)")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="fp32 policy weights on both sides")
    parser.add_argument("--trl-autocast", action=argparse.BooleanOptionalAction, default=True,
                        help="TRL's bf16 flag (its default; bf16 autocast around TRL's forward passes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="ours/TRL pairs, alternating which goes first")
    parser.add_argument("--only", choices=["ours", "trl"], help="run one side only")
    parser.add_argument("--side", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=["ours", "trl"], help="cProfile one run of this side")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.side:
        args.profile = bool(args.profile)
        return child(args)

    passthrough, skip = [], False
    for arg in sys.argv[1:]:  # the child gets the same settings, not the parent's choice of sides
        if skip:
            skip = False
        elif arg in ("--profile", "--only", "--rounds"):
            skip = True
        elif not arg.startswith(("--profile=", "--only=", "--rounds=")):
            passthrough.append(arg)
    bench.header("constrained fine-tune loop vs TRL GRPOTrainer", command="python " + " ".join(sys.argv),
                 policy=args.policy.name, prompts=args.prompts, k=args.k, steps=args.steps,
                 max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, lora_rank=args.lora_rank,
                 bf16=args.bf16, trl_autocast=args.trl_autocast, threads=args.threads)
    if args.profile:
        order = [args.profile]
    elif args.only:
        order = [args.only] * args.rounds
    else:
        order = []
        for r in range(args.rounds):
            order += ["ours", "trl"] if r % 2 == 0 else ["trl", "ours"]
    results = []
    for side in order:
        command = [sys.executable, __file__, *passthrough, "--side", side]
        if args.profile:
            command.append("--profile=1")
        load = bench.load_average()
        started = time.perf_counter()
        print(f"-- {side} (load {load})", flush=True)
        proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            print(proc.stdout[-3000:], proc.stderr[-6000:])
            raise SystemExit(f"{side} failed (exit {proc.returncode})")
        if args.profile:
            print(proc.stderr[-30000:])
        out = json.loads(line.removeprefix("RESULT "))
        out.update(load_before=load, child_wall_s=time.perf_counter() - started)
        results.append(out)
        print(f"   rollouts/s {out['rollouts_per_s']:.3f}  completion tokens/s {out['tokens_per_s']:.1f}  "
              f"tokens/CPU-s {out['tokens_per_cpu_s']:.1f}  mean reply {out['mean_reply_tokens']:.1f} tokens  "
              f"wall {out['wall_s']:.1f} s  cpu {out['cpu_s']:.1f} s  steps {out['step_s']}  "
              f"peak RSS {out['peak_rss_mib']:.0f} MiB  ({out['own_figures']})", flush=True)

    print(f"\n   {'side':<5} {'rollouts/s':>10} {'tokens/s':>9} {'tokens/CPU-s':>12} {'reply tok':>9} "
          f"{'wall s':>7} {'CPU s':>6} {'load':>14}")
    for out in results:
        print(f"   {out['side']:<5} {out['rollouts_per_s']:>10.3f} {out['tokens_per_s']:>9.1f} "
              f"{out['tokens_per_cpu_s']:>12.1f} {out['mean_reply_tokens']:>9.1f} {out['wall_s']:>7.1f} "
              f"{out['cpu_s']:>6.1f} {out['load_before']:>14}")
    summary = {"benchmark": "finetune_vs_trl", "runs": results}
    sides = {s: [o for o in results if o["side"] == s] for s in ("ours", "trl")}
    if sides["ours"] and sides["trl"]:
        def mean(side: str, key: str) -> float:
            return sum(o[key] for o in sides[side]) / len(sides[side])

        for key in ("rollouts_per_s", "tokens_per_s", "tokens_per_cpu_s"):
            ratio = mean("ours", key) / mean("trl", key)
            summary[f"ratio_{key}"] = ratio
            bench.figure(f"ours / TRL {key}", ratio, "x", ">= 1.5x" if key == "rollouts_per_s" else "")
    bench.summary(summary)


if __name__ == "__main__":
    main()
