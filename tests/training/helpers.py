"""Small training inputs: a learnable synthetic pair set imported as a snapshot, and a tiny backbone."""

import json
import random

from labeling.pair_imports import export_snapshot_import

GOOD = ["clear", "kind", "careful", "honest", "useful", "precise"]
BAD = ["rude", "wrong", "harmful", "sloppy", "vague", "cruel"]


def pair_lines(n: int = 48, *, seed: int = 0) -> str:
    """TRL lines whose chosen reply carries 'good' words and the rejected one 'bad' words (learnable)."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        prompt = f"question {i} about " + " ".join(rng.choice(["cats", "maps", "tax", "code", "bread"]) for _ in range(3))
        chosen = "answer " + " ".join(rng.choice(GOOD) for _ in range(4))
        rejected = "answer " + " ".join(rng.choice(BAD) for _ in range(4))
        lines.append(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected,
                                 "harmful": {"chosen": False, "rejected": i % 2 == 0}}))
    return "\n".join(lines) + "\n"


def learnable_snapshot(user, n: int = 48, *, seed: int = 0, name: str = "synthetic pairs"):
    return export_snapshot_import(user=user, text=pair_lines(n, seed=seed), fmt="trl", name=name)


def tiny_config(backbone: str, **overrides) -> dict:
    return {"backbone": backbone, "max_length": 32, "batch_size": 8, "epochs": 2, "learning_rate": 5e-3,
            "eval_fraction": 0.25, "seed": 0, **overrides}
