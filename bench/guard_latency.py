"""Runtime guard latency: SafetyClassifier.classify() for one item and for batches of 32, 256-token inputs, 2 threads.

    .venv/bin/python bench/guard_latency.py [--checkpoint var/models/safety-default] [--precisions fp32,bf16,int8]
                                            [--single 200] [--batches 20] [--threads 2]

No Django, no database: this is the model call the guard endpoint makes (tokenization, length sort, forward pass,
probabilities), measured in-process. Without --checkpoint the classifier is the real MiniLM backbone with untrained
heads over the example spec's 33 categories (latency does not depend on the heads' weights). Every input is a
(prompt, reply) pair from Do-Not-Answer long enough to be cut to exactly max_length (256) tokens, so no run gains
from short inputs. Each precision is checked against plain fp32 on the same inputs (largest absolute difference of
any probability). Also the batched rate on 320 Do-Not-Answer (question, reply) pairs at their own lengths (most
under 256 tokens), closer to a guard's real traffic. Targets (issue 9): p50 ≤ 25 ms for one item, ≥ 150 items/s in
batches of 32.

The machine is shared: the load average is printed with every figure; set OMP_WAIT_POLICY=PASSIVE when other
processes compete for the cores (a spinning OpenMP pool loses most of its time then).
"""

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common as bench  # noqa: E402  (printing helpers only; no Django is set up)
from safety_classifier_quality import DATA, MODELS_DIR, spec_categories_and_crosswalk  # noqa: E402

SINGLE_TARGET_MS = 25.0
BATCH_TARGET = 150.0


def long_items(n: int, tokenizer, max_length: int) -> tuple[list[str], list[str]]:
    """n (prompt, reply) pairs whose encoding fills max_length tokens: Do-Not-Answer questions and replies, replies
    extended with the next ones until they are long enough."""
    with open(DATA / "do-not-answer" / "do_not_answer_data.csv", encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    replies = [row[f"{m}_response"] for row in table for m in ("GPT4", "ChatGPT", "Claude")]
    prompts, responses = [], []
    for i in range(n):
        text, j = replies[i], i + 1
        while len(tokenizer(text, add_special_tokens=False)["input_ids"]) < max_length:
            text += " " + replies[j % len(replies)]
            j += 1
        prompts.append(table[i % len(table)]["question"])
        responses.append(text)
    return prompts, responses


def natural_items(n: int) -> tuple[list[str], list[str]]:
    """n Do-Not-Answer (question, reply) pairs as they are (most are shorter than 256 tokens): a guard's real mix."""
    with open(DATA / "do-not-answer" / "do_not_answer_data.csv", encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    rows = [(row["question"], row[f"{m}_response"]) for row in table for m in ("ChatGPT", "llama2-7b-chat")][:n]
    return [p for p, _ in rows], [r for _, r in rows]


def untrained_checkpoint(folder: Path) -> Path:
    """The real MiniLM with fresh heads over the example spec's categories, written as a checkpoint."""
    from rewardmodels.ml import fetch_default_backbone
    from training.ml.safety.config import SafetyClassifierConfig
    from training.ml.safety.model import SafetyClassifierModel, load_backbone_and_tokenizer, save_checkpoint

    categories, _ = spec_categories_and_crosswalk()
    backbone_dir = fetch_default_backbone(MODELS_DIR)
    tokenizer, backbone = load_backbone_and_tokenizer(str(backbone_dir))
    model = SafetyClassifierModel(backbone, len(categories)).eval()
    cfg = SafetyClassifierConfig(backbone=str(backbone_dir))
    keys = [c["key"] for c in categories]
    return save_checkpoint(model, tokenizer, folder, {
        "categories": categories, "config": cfg.to_dict(), "metrics": {}, "provenance": {"bench": "guard_latency"},
        "thresholds": {"prompt_harmful": 0.5, "response_harmful": 0.5, "categories": {k: 0.5 for k in keys}}})


def measure(classifier, prompts: list[str], responses: list[str], *, single: int, batches: int,
            natural: tuple[list[str], list[str]]) -> dict:
    for i in range(5):  # warm-up: first calls allocate and pick kernels
        classifier.classify(prompts[i:i + 1], responses[i:i + 1])
    classifier.classify(prompts[:32], responses[:32])
    times = []
    for i in range(single):
        j = i % len(prompts)
        tick = time.perf_counter()
        classifier.classify(prompts[j:j + 1], responses[j:j + 1])
        times.append((time.perf_counter() - tick) * 1000)
    load_single = bench.load_average()
    tick = time.perf_counter()
    for b in range(batches):
        start = (b * 32) % (len(prompts) - 31)
        classifier.classify(prompts[start:start + 32], responses[start:start + 32], batch_size=32)
    seconds = time.perf_counter() - tick
    tick = time.perf_counter()
    classifier.classify(natural[0], natural[1], batch_size=32)
    natural_rate = len(natural[0]) / (time.perf_counter() - tick)
    return {"p50_ms": bench.percentile(times, 50), "p99_ms": bench.percentile(times, 99),
            "mean_ms": sum(times) / len(times), "items_per_s": batches * 32 / seconds,
            "natural_items_per_s": natural_rate,
            "load_single": load_single, "load_batched": bench.load_average()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--precisions", default="fp32,bf16,int8")
    parser.add_argument("--single", type=int, default=200, help="single-item calls per precision")
    parser.add_argument("--batches", type=int, default=20, help="batches of 32 per precision")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from training.ml.safety import load_classifier
    from training.ml.safety.infer import cpu_has_native_bf16

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.checkpoint or untrained_checkpoint(Path(tmp) / "classifier")
        reference = load_classifier(folder, "cpu", precision="fp32")
        max_length = reference.encoder.max_length
        prompts, responses = long_items(96, reference.tokenizer, max_length)
        natural = natural_items(320)
        natural_tokens = sum(len(x) for x in reference.encode(*natural)) / len(natural[0])
        lengths = {len(s) for s in reference.encode(prompts, responses)}
        bench.header("guard latency: SafetyClassifier.classify on CPU", command="python " + " ".join(sys.argv),
                     threads=torch.get_num_threads(), max_length=max_length, input_tokens=sorted(lengths),
                     native_bf16=cpu_has_native_bf16(), omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "-"),
                     checkpoint=args.checkpoint or "MiniLM + untrained heads",
                     natural_mean_tokens=round(natural_tokens, 1))
        plain = reference.probabilities(prompts, responses)
        results = {}
        for precision in args.precisions.split(","):
            classifier = reference if precision == "fp32" else load_classifier(folder, "cpu", precision=precision)
            probs = classifier.probabilities(prompts, responses)
            drift = max(float(np.abs(probs[h] - plain[h]).max()) for h in plain)
            results[precision] = {**measure(classifier, prompts, responses, single=args.single,
                                            batches=args.batches, natural=natural), "max_abs_diff_vs_fp32": drift}
            r = results[precision]
            print(f"   {precision:<5} single p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  (load "
                  f"{r['load_single']})   batch 32: {r['items_per_s']:6.1f} items/s (load {r['load_batched']}), "
                  f"natural lengths {r['natural_items_per_s']:6.1f} items/s   max |Δp| vs fp32 {drift:.4f}", flush=True)
        auto = load_classifier(folder, "cpu").precision
    best_single = min(results, key=lambda p: results[p]["p50_ms"])
    best_batch = max(results, key=lambda p: results[p]["items_per_s"])
    bench.figure(f"single item p50 ({best_single})", results[best_single]["p50_ms"], "ms", f"≤ {SINGLE_TARGET_MS:g} ms")
    bench.figure(f"single item p99 ({best_single})", results[best_single]["p99_ms"], "ms")
    bench.figure(f"batch of 32 ({best_batch})", results[best_batch]["items_per_s"], "items/s", f"≥ {BATCH_TARGET:g}")
    bench.figure(f"natural-length batches ({best_batch})", results[best_batch]["natural_items_per_s"], "items/s")
    bench.figure("load_classifier default precision", auto)
    bench.summary({"benchmark": "guard_latency", "threads": torch.get_num_threads(), "input_tokens": max_length,
                   "default_precision": auto, "results": {p: {k: (round(v, 4) if isinstance(v, float) else v)
                                                              for k, v in r.items()} for p, r in results.items()}})


if __name__ == "__main__":
    main()
