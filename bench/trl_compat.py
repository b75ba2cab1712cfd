"""An export feeds TRL's RewardTrainer as it is: datasets.load_dataset("json") + 2 training steps.

    .venv/bin/python bench/trl_compat.py [--pairs 40000] [--file EXPORT.jsonl] [--steps 2]

Benchmark-only dependencies (not in pyproject): `.venv/bin/pip install datasets trl`.

Without --file it makes a small judged campaign in its own database (one task adjudicated near the
end, so the file has a key that only late rows carry), exports it with
labeling.services.export_snapshot_create, then loads the file with datasets and trains a tiny
random-weight BERT reward model built in-process (config + a word-piece vocabulary written here;
nothing is downloaded, HF_HUB_OFFLINE is set) for --steps steps. It prints what TRL made of the
columns: prompt/chosen/rejected are used as an explicit-prompt preference dataset, and the export's
`margin` column is picked up by RewardTrainer as a margin in the loss. When load_dataset cannot read
the file as it is (a key that only late rows carry), that is printed as a FAIL and the file is
loaded again with the export's schema given as features=, to show the rest of the path.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import _common as bench

NAME = "bench trl"


def make_export(n_tasks: int, database: str) -> tuple[Path, object]:
    bench.configure(database)
    import numpy as np
    from _data import load_items_and_tasks, load_judgments

    from labeling import services
    from labeling.models import Task

    removed = bench.campaigns_delete_named(NAME)
    if removed:
        print(f"   removed {removed} campaign(s) left by an earlier run")
    admin, _ = bench.admin_user()
    version = bench.published_spec(admin)
    doc = version.document
    rater_ids = [u.pk for u, _ in bench.raters(20)]
    campaign = services.campaign_create(user=admin, name=f"{NAME} {n_tasks}", spec_version=version, overlap=3)
    rng = np.random.default_rng(2)
    _, first_task = load_items_and_tasks(campaign_id=campaign.pk, n=n_tasks, rng=rng, n_judgments=3)
    load_judgments(campaign_id=campaign.pk, first_task=first_task, n_tasks=n_tasks, rater_ids=rater_ids,
                   category_keys=[c["key"] for c in doc["categories"]], axis_keys=[a["key"] for a in doc["rubric"]["axes"]],
                   n_severity=len(doc["rubric"]["severity_scale"]), rng=rng)
    # A late task settled by adjudication: its row carries "adjudicated": true, which no earlier row has.
    late = Task.objects.get(pk=first_task + n_tasks - 2)
    services.adjudication_save(task=late, user=admin, data={
        "preference": -2, "categories_x": [], "categories_y": [doc["categories"][0]["key"]],
        "severity_x": 0, "severity_y": 3, "note": "bench"})
    snapshot = services.export_snapshot_create(campaign=campaign, user=admin, filters={})
    from django.conf import settings

    return Path(settings.MEDIA_ROOT) / snapshot.path, campaign


def export_features(datasets, path: Path):
    """The export's schema, every optional key included (the workaround when load_dataset cannot infer it)."""
    import json

    first = json.loads(path.open().readline())
    string, number = datasets.Value("string"), datasets.Value("float64")
    List = getattr(datasets, "List", datasets.Sequence)
    pair = lambda value: {"chosen": value, "rejected": value}
    return datasets.Features({
        "id": string, "prompt": string, "chosen": string, "rejected": string, "margin": number,
        "n_judgments": datasets.Value("int64"), "agreement": number, "categories": pair(List(string)),
        "severity": pair(number), "axes": {key: pair(number) for key in first["axes"]},
        "harmful": pair(datasets.Value("bool")), "spec_version": string, "campaign": string,
        "adjudicated": datasets.Value("bool"),
    })


def tiny_reward_model(workdir: Path):
    """A 2-layer BERT with random weights and a word-piece tokenizer over the generator's vocabulary."""
    from _data import WORDS
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = sorted(set(WORDS) | set("abcdefghijklmnopqrstuvwxyz0123456789.,?!'\"[]():;-")
                    | {f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"})
    vocab = workdir / "vocab.txt"
    vocab.write_text("\n".join(specials + pieces) + "\n")
    try:  # transformers >= 5 takes the vocabulary as `vocab` (a path or a dict); 4.x as `vocab_file`
        tokenizer = BertTokenizerFast(vocab=str(vocab), do_lower_case=True)
    except TypeError:
        tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    if tokenizer.vocab_size != len(specials) + len(pieces):
        raise SystemExit(f"the tokenizer did not take the vocabulary ({tokenizer.vocab_size} entries)")
    tokenizer.eos_token = "[SEP]"  # TRL appends an EOS to non-conversational texts; BERT has none by default
    config = BertConfig(vocab_size=len(specials) + len(pieces), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512, num_labels=1,
                        pad_token_id=tokenizer.pad_token_id)
    return BertForSequenceClassification(config), tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=40_000,
                        help="tasks of the campaign to export (without --file); big enough for several ~10 MB blocks")
    parser.add_argument("--file", type=Path, help="an existing export (.jsonl) instead of making one")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--train-rows", type=int, default=2048, help="rows handed to RewardTrainer")
    parser.add_argument("--database", default="specloop_bench_trl")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="specloop-trl-"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_CACHE"] = str(workdir / "datasets-cache")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    bench.header("TRL RewardTrainer on an export", pairs=args.pairs if not args.file else "-", steps=args.steps)
    campaign = None
    try:
        start = time.perf_counter()
        path, campaign = (args.file, None) if args.file else make_export(args.pairs, args.database)
        made_s = time.perf_counter() - start

        import datasets
        import torch
        import transformers
        import trl
        from trl import RewardConfig, RewardTrainer

        print(f"   datasets {datasets.__version__}, trl {trl.__version__}, transformers {transformers.__version__}, "
              f"torch {torch.__version__}")
        start = time.perf_counter()
        load_error = None
        try:
            dataset = datasets.load_dataset("json", data_files=str(path), split="train")
        except Exception as exc:  # noqa: BLE001 - the failure is the finding; it is printed below
            cause = exc.__cause__ or exc
            load_error = f"{type(exc).__name__}: {str(cause).splitlines()[-1] if str(cause) else cause!r}"
            print(f"   FAIL load_dataset('json') as is: {load_error}")
            print("        (an optional key, e.g. 'adjudicated', first appears after the first ~10 MB block);"
                  " retrying with the export's schema given as features=")
            dataset = datasets.load_dataset("json", data_files=str(path), split="train",
                                            features=export_features(datasets, path))
        load_s = time.perf_counter() - start
        with open(path, "rb") as lines_file:
            lines = sum(1 for _ in lines_file)
        adjudicated = sum(1 for flag in dataset["adjudicated"] if flag) if "adjudicated" in dataset.column_names else 0
        bench.figure("export file", f"{path.name} ({path.stat().st_size / 1024:.0f} KiB)")
        bench.figure("rows loaded / lines in file", f"{len(dataset):,} / {lines:,}")
        bench.figure("load_dataset('json')", load_s, "s")
        print(f"   columns: {', '.join(dataset.column_names)}")
        print(f"   features: prompt={dataset.features['prompt']}, margin={dataset.features['margin']}, "
              f"categories={dataset.features['categories']}")
        bench.figure("rows with adjudicated=true", adjudicated)

        torch.manual_seed(0)
        model, tokenizer = tiny_reward_model(workdir)
        config = RewardConfig(
            output_dir=str(workdir / "out"), max_steps=args.steps, per_device_train_batch_size=args.batch,
            learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
            max_length=512, disable_tqdm=True, seed=0,
        )
        start = time.perf_counter()
        train = dataset.select(range(min(len(dataset), args.train_rows)))  # tokenising all rows is not the point
        trainer = RewardTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer)
        build_s = time.perf_counter() - start
        prepared = trainer.train_dataset.column_names
        print(f"   prepared columns: {', '.join(prepared)}")
        print(f"   TRL uses from the export: prompt + chosen / prompt + rejected (explicit prompt, joined as is)"
              f"{', margin (as a loss margin)' if 'margin' in prepared else ''}")
        bench.figure("RewardTrainer(...) incl. tokenising", build_s, "s")
        example = trainer.train_dataset[0]
        print(f"   first chosen text as tokenised: {tokenizer.decode(example['chosen_ids'])[:160]!r}")
        start = time.perf_counter()
        output = trainer.train()
        train_s = time.perf_counter() - start
        losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
        bench.figure("train steps", output.global_step)
        bench.figure("train time", train_s, "s")
        bench.figure("losses", " ".join(f"{v:.4f}" for v in losses))
        # At initialisation the rewards are ~equal, so the loss is about mean(softplus(margin)) when TRL uses
        # the margin column, and log 2 = 0.693 when it does not.
        import math

        margins = train["margin"]
        softplus = [math.log1p(math.exp(m)) for m in margins]
        expected = sum(softplus) / len(softplus)
        used = abs(losses[0] - math.log(2)) > 0.3
        print(f"   first-step loss {losses[0]:.4f}; softplus(margin) over the train rows: mean {expected:.4f} "
              f"(range {min(softplus):.2f}..{max(softplus):.2f}); without a margin it would be log 2 = 0.6931"
              f" -> the margin {'is' if used else 'is not'} in the loss")
        unknown = sum(1 for t in example["chosen_ids"] if t == tokenizer.unk_token_id) / len(example["chosen_ids"])
        bench.figure("share of [UNK] tokens (first row)", f"{unknown:.1%}")
        ok = output.global_step == args.steps and all(not math.isnan(v) for v in losses) and len(dataset) == lines
        if load_error:
            print(f"   load_dataset('json') on the file as it is: FAILED ({load_error})")
        print(f"   RewardTrainer ran on the export without conversion: {'yes' if ok and not load_error else 'NO'}"
              f"{' (only with features= given to load_dataset)' if ok and load_error else ''}")
        bench.summary({
            "bench": "trl_compat", "rows": len(dataset), "lines": lines, "columns": dataset.column_names,
            "prepared_columns": prepared, "margin_used": "margin" in prepared, "adjudicated_rows": adjudicated,
            "steps": output.global_step, "losses": [round(v, 4) for v in losses], "ok": ok and not load_error,
            "load_dataset_as_is": load_error or "ok",
            "first_loss_if_margin_used": round(expected, 4),
            "seconds": {"make_export": round(made_s, 2), "load_dataset": round(load_s, 2),
                        "trainer_init": round(build_s, 2), "train": round(train_s, 2)},
            "versions": {"datasets": datasets.__version__, "trl": trl.__version__,
                         "transformers": transformers.__version__},
        })
    finally:
        if campaign is not None:
            bench.campaign_delete(campaign.pk)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
