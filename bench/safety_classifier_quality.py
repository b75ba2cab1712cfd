"""Held-out quality of the default safety classifier, per head, and its refusal head against string matching.

    .venv/bin/python bench/safety_classifier_quality.py [--out var/models/safety-default] [--epochs 1] ...
    .venv/bin/python bench/safety_classifier_quality.py --checkpoint var/models/safety-default

No Django, no database. Trains exactly what `manage.py safety_classifier_train` trains (the mix of
training.ml.safety.public_rows from ../shared/data, the example spec's categories and crosswalk read here with plain
yaml, SafetyClassifierConfig defaults unless overridden) on 2 CPU threads, and prints the held-out metrics of every
head: AUROC and F1 at the calibrated threshold (F1 is optimistic: the thresholds are calibrated on the same
held-out prompts; AUROC is not), the refusal confusion matrix, and the refusal head against plain string matching
on the same held-out replies: overall, on the non-templated replies (no stock refusal opener) and on the partial
refusals. The split is by prompt: no reply to a held-out question was trained on.

Then two sets nothing was trained on: the example spec's own examples (how often prompt_harmful flags the "allowed"
ones: over-refusal of a prompt-only guard), and, for the refusal head and string matching, the 45 replies written
for SpecLoop in safety/demo_data/reply_examples.jsonl (refusals in plain words, partial refusals, compliance).
With --checkpoint the stored held-out metrics are printed and only these two checks are run.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common as bench  # noqa: E402  (printing helpers only; no Django is set up)

DATA = ROOT.parent / "shared" / "data"
SPEC = ROOT / "taxonomy" / "example_spec.yaml"
WRITTEN_REPLIES = ROOT / "safety" / "demo_data" / "reply_examples.jsonl"
MODELS_DIR = ROOT / "var" / "models"


def spec_categories_and_crosswalk(path: Path = SPEC) -> tuple[list[dict], dict[str, dict[str, list[str]]]]:
    """([{"key", "name"}], {taxonomy: {code: [keys]}}) from a spec YAML's categories and their `crosswalk`."""
    categories, index = [], {}
    for category in yaml.safe_load(path.read_text())["categories"]:
        categories.append({"key": category["key"], "name": category.get("name") or category["key"]})
        for taxonomy, codes in (category.get("crosswalk") or {}).items():
            for code in codes or []:
                keys = index.setdefault(taxonomy, {}).setdefault(str(code), [])
                if category["key"] not in keys:
                    keys.append(category["key"])
    return categories, index


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_metrics(metrics: dict) -> None:
    print(f"   held-out: {metrics['n_rows']} rows, {metrics['n_pairs']} harm pairs")
    for head in ("prompt_harmful", "response_harmful"):
        h = metrics.get(head) or {}
        extra = f"  pair accuracy {_f(h.get('pair_accuracy'))} on {h.get('n_pairs')}" if "pair_accuracy" in h else ""
        print(f"   {head:<17} n {h.get('n', 0):>5} (+{h.get('positives', 0)})  AUROC {_f(h.get('auroc'))}  "
              f"F1@t {_f(h.get('f1'))} (t={_f(h.get('threshold'))})  F1@0.5 {_f(h.get('f1_at_0_5'))}{extra}")
    c = metrics.get("categories") or {}
    print(f"   categories        n {c.get('n', 0):>5}  macro AUROC {_f(c.get('macro_auroc'))}  macro F1@t "
          f"{_f(c.get('macro_f1'))} over {c.get('n_with_positives')} categories with held-out positives")
    for key, v in (c.get("per_category") or {}).items():
        if v["positives"]:
            print(f"      {key:<28} +{v['positives']:>4}  AUROC {_f(v['auroc'])}  F1@t {_f(v['f1'])}")
    r = metrics.get("response_refusal") or {}
    if r.get("n"):
        print(f"   response_refusal  n {r['n']:>5}  accuracy {_f(r['accuracy'])}  macro F1 {_f(r['macro_f1'])}  "
              f"refusal detection F1 {_f(r['refusal_detection']['f1'])}")
        print("      confusion (rows gold, columns predicted: compliance, partial, full):",
              " ".join(str(row) for row in r["confusion"]))
        print_comparison(r["string_match"])


def print_comparison(comparison: dict) -> None:
    for subset in ("overall", "non_templated"):
        for who in ("head", "string_match"):
            s = comparison[subset][who]
            if not s.get("n"):
                continue
            print(f"      {subset:<14} {who:<12} n {s['n']:>5}  accuracy {_f(s['accuracy'])}  macro F1 "
                  f"{_f(s['macro_f1'])}  refusal detection acc {_f(s['refusal_detection']['accuracy'])} "
                  f"F1 {_f(s['refusal_detection']['f1'])}")
    for who in ("head", "string_match"):
        p = comparison["partial_refusals"][who]
        print(f"      partial refusals {who:<12} n {p['n']:>5}  seen as a refusal {_f(p['refused'])}  "
              f"as a partial refusal {_f(p['exact'])}")


def written_replies_check(classifier) -> dict:
    """The head and string matching on the hand-written replies (never trained on)."""
    from training.ml.safety.config import REFUSAL_CLASSES
    from training.ml.safety.metrics import auroc, refusal_comparison

    items = [json.loads(line) for line in WRITTEN_REPLIES.read_text().splitlines() if line.strip()]
    out = classifier.classify([i["prompt"] for i in items], [i["response"] for i in items])
    predicted = [max(REFUSAL_CLASSES, key=o["response_refusal"].get) for o in out]
    gold = [i["response_refusal"] for i in items]
    comparison = refusal_comparison([i["response"] for i in items], gold, predicted)
    harm = auroc([o["response_harmful"] for o in out], [bool(i["response_harmful"]) for i in items])
    print(f"   written replies ({len(items)}, safety/demo_data/reply_examples.jsonl): "
          f"response_harmful AUROC {_f(harm)}")
    print_comparison(comparison)
    return {"n": len(items), "response_harmful_auroc": harm, "refusal": comparison}


def spec_examples_check(classifier) -> dict:
    """prompt_harmful on the example spec's own examples (never trained on): how often "allowed" ones are flagged at
    the stored threshold (over-refusal of a prompt-only guard), how often "disallowed" ones are, and the AUROC."""
    from training.ml.safety.metrics import auroc

    examples = [(c["key"], e["text"], e["verdict"]) for c in yaml.safe_load(SPEC.read_text())["categories"]
                for e in c.get("examples") or []]
    out = classifier.classify([text for _, text, _ in examples], [None] * len(examples))
    threshold = classifier.thresholds["prompt_harmful"]
    result = {"threshold": threshold}
    for verdict in ("allowed", "borderline", "disallowed"):
        scores = [o["prompt_harmful"] for o, (_, _, v) in zip(out, examples) if v == verdict]
        result[verdict] = {"n": len(scores), "flagged": sum(s >= threshold for s in scores) / max(1, len(scores))}
    pairs = [(o["prompt_harmful"], v == "disallowed") for o, (_, _, v) in zip(out, examples) if v != "borderline"]
    result["auroc_allowed_vs_disallowed"] = auroc([s for s, _ in pairs], [d for _, d in pairs])
    hits = [max(o["categories"], key=o["categories"].get) == key for o, (key, _, v) in zip(out, examples)
            if v == "disallowed"]
    result["disallowed_top_category_is_its_category"] = sum(hits) / max(1, len(hits))
    print(f"   spec examples (taxonomy/example_spec.yaml, never trained on): prompt_harmful flagged at t="
          f"{_f(threshold)}: allowed {_f(result['allowed']['flagged'])} of {result['allowed']['n']}, borderline "
          f"{_f(result['borderline']['flagged'])}, disallowed {_f(result['disallowed']['flagged'])}; AUROC allowed vs "
          f"disallowed {_f(result['auroc_allowed_vs_disallowed'])}; top category right on disallowed "
          f"{_f(result['disallowed_top_category_is_its_category'])}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="evaluate this checkpoint instead of training one")
    parser.add_argument("--out", type=Path, help="keep the trained checkpoint here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--head-lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--eval-fraction", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=0)
    parser.add_argument("--limit", action="append", default=[], metavar="SOURCE=N",
                        help="a public_rows limit, e.g. do_not_answer_replies=6 or hh_harmless=0 (repeatable)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rewardmodels.ml import TrainHooks, fetch_default_backbone
    from training.ml.safety import (SafetyClassifierConfig, load_classifier, public_rows,
                                    train_safety_classifier)

    if args.checkpoint:
        classifier = load_classifier(args.checkpoint, "cpu")
        meta = classifier.metadata
        bench.header("safety classifier quality (stored held-out metrics)", checkpoint=args.checkpoint,
                     **{k: v for k, v in (meta.get("config") or {}).items() if k != "backbone"})
        print_metrics(meta["metrics"])
        written = written_replies_check(classifier)
        examples = spec_examples_check(classifier)
        bench.summary({"benchmark": "safety_classifier_quality", "checkpoint": str(args.checkpoint),
                       "metrics": meta["metrics"], "written_replies": written, "spec_examples": examples})
        return

    categories, crosswalk = spec_categories_and_crosswalk()
    limits = {k: int(v) for k, v in (item.split("=", 1) for item in args.limit)}
    started = time.monotonic()
    rows, pairs, report = public_rows(DATA, crosswalk=crosswalk, seed=args.seed, **limits)
    overrides = {"epochs": args.epochs, "learning_rate": args.lr, "head_learning_rate": args.head_lr,
                 "batch_size": args.batch_size, "max_length": args.max_length, "eval_fraction": args.eval_fraction}
    cfg = SafetyClassifierConfig(backbone=str(fetch_default_backbone(MODELS_DIR)), seed=args.seed,
                                 max_steps=args.max_steps, max_rows=args.max_rows, device="cpu",
                                 **{k: v for k, v in overrides.items() if v is not None})
    bench.header("safety classifier quality on the public data", command="python " + " ".join(sys.argv),
                 threads=torch.get_num_threads(), **{k: v for k, v in cfg.to_dict().items() if k != "backbone"})
    print(f"   mix: {report['rows']} rows, {report['pairs']} harm pairs; limits {report['limits']}")
    for source, counts in report["by_source"].items():
        print(f"      {source:<14} {json.dumps(counts)}")
    print(f"   refusal classes {report['refusal_classes']}; unmapped codes {report['unmapped'] or 'none'}")

    def on_log(line: str) -> None:
        print("   " + line, flush=True)

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        output = args.out or Path(tmp) / "safety-classifier"
        result = train_safety_classifier(cfg, rows=rows, pairs=pairs, categories=categories, output_dir=output,
                                         provenance={"public_data": "../shared/data", "limits": report["limits"],
                                                     "spec": "taxonomy/example_spec.yaml"},
                                         hooks=TrainHooks(on_log=on_log))
        total = time.monotonic() - started
        print_metrics(result.metrics)
        classifier = load_classifier(output, "cpu")
        written = written_replies_check(classifier)
        examples = spec_examples_check(classifier)
    m = result.metrics
    bench.figure("training rows + pairs", result.n_train)
    bench.figure("held-out rows + pairs", result.n_eval)
    bench.figure("optimizer steps", result.steps)
    bench.figure("training time (steps)", result.train_seconds, "s")
    bench.figure("wall time (data + train + eval)", total, "s", "< 900 s (15 min) on 2 cores")
    comparison = m["response_refusal"]["string_match"]
    bench.summary({
        "benchmark": "safety_classifier_quality", "device": result.device, "threads": torch.get_num_threads(),
        "n_train": result.n_train, "n_eval": result.n_eval, "steps": result.steps,
        "seconds": round(total, 1), "train_seconds": round(result.train_seconds, 1),
        "prompt_harmful_auroc": m["prompt_harmful"]["auroc"], "prompt_harmful_f1": m["prompt_harmful"]["f1"],
        "categories_macro_auroc": m["categories"]["macro_auroc"], "categories_macro_f1": m["categories"]["macro_f1"],
        "refusal_accuracy": m["response_refusal"]["accuracy"], "refusal_macro_f1": m["response_refusal"]["macro_f1"],
        "string_match_accuracy": comparison["overall"]["string_match"]["accuracy"],
        "non_templated": {w: comparison["non_templated"][w].get("accuracy") for w in ("head", "string_match")},
        "partial_refusals": comparison["partial_refusals"],
        "response_harmful_auroc": m["response_harmful"]["auroc"],
        "harm_pair_accuracy": m["response_harmful"].get("pair_accuracy"),
        "written_replies": {"non_templated": {w: written["refusal"]["non_templated"][w].get("accuracy")
                                              for w in ("head", "string_match")},
                            "partial_refusals": written["refusal"]["partial_refusals"]},
        "spec_examples": examples,
        "config": {k: v for k, v in cfg.to_dict().items() if k != "backbone"}, "limits": report["limits"]})


if __name__ == "__main__":
    main()
