"""Fixtures for the torch code: a tiny random BERT built in-process and synthetic preference files."""

import json
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL_MINILM = ROOT / "var" / "models" / "all-MiniLM-L6-v2"

FILLER = "the a good new time way thing world life hand person people make give take help".split()
GOOD = ["safe", "kind", "legal", "happy", "nice"]      # the chosen reply carries one of these ...
BAD = ["bomb", "poison", "weapon", "steal", "attack"]  # ... the rejected one one of these, at the same place


def pytest_collection_modifyitems(config, items):
    if (REAL_MINILM / "config.json").exists():
        return
    skip = pytest.mark.skip(reason=f"needs the real MiniLM in {REAL_MINILM} (rewardmodels.ml.fetch_default_backbone)")
    for item in items:
        if "real_model" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """A 32-wide model gains nothing from threads, and on a shared 2-core machine they spin against each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    from rewardmodels.ml import build_tiny_backbone

    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"), seed=0)


def synthetic_rows(n: int, *, seed: int = 0) -> list[dict]:
    """Pairs whose replies differ in one word: a GOOD word in the chosen one, a BAD word in the rejected one."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 10))]
        at = rng.randint(0, len(words))
        chosen = " ".join(words[:at] + [rng.choice(GOOD)] + words[at:])
        rejected = " ".join(words[:at] + [rng.choice(BAD)] + words[at:])
        prompt = "human: " + " ".join(rng.choice(FILLER) for _ in range(rng.randint(2, 40))) + " assistant:"
        rows.append({"id": f"p{i}", "prompt": prompt, "chosen": chosen, "rejected": rejected, "margin": 1.0,
                     "categories": {"chosen": [], "rejected": ["violence" if i % 2 else "fraud"]},
                     "severity": {"chosen": 0.0, "rejected": 2.5},
                     "harmful": {"chosen": False, "rejected": True}})
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    return write_rows(tmp_path / "export.jsonl", synthetic_rows(64))
