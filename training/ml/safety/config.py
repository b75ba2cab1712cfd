"""Safety classifier configuration: one dataclass, every default explained, a validator that reports every bad field.

The defaults are the recipe of the default classifier (``manage.py safety_classifier_train``): MiniLM, the mix of
``data.public_rows`` with its default limits, sized to train in about 15 minutes on 2 CPU cores.
"""

import dataclasses
from dataclasses import dataclass

from rewardmodels.ml.config import DEFAULT_BACKBONE, DEVICES, ConfigError, settings_from_dict

REFUSAL_CLASSES = ("compliance", "partial_refusal", "full_refusal")
HEADS = ("prompt_harmful", "categories", "response_refusal", "response_harmful")


@dataclass
class SafetyClassifierConfig:
    backbone: str = DEFAULT_BACKBONE  # HF id or local folder; the default MiniLM is fetched from PyPI (MODELS.md)
    max_length: int = 256         # tokens per [CLS] prompt [SEP] reply [SEP], in training and at inference
    batch_size: int = 16          # rows (or harm pairs) per optimizer step
    epochs: int = 1               # passes over the training rows; one pass of the public mix fits 15 min on 2 cores
    learning_rate: float = 5e-5   # AdamW peak learning rate of the backbone (small BERT, short schedule)
    head_learning_rate: float = 1e-3  # the four new linear heads start from random: a larger rate of their own
    weight_decay: float = 0.01    # AdamW decoupled weight decay, not applied to biases and LayerNorm
    warmup_ratio: float = 0.06    # share of the optimizer steps spent warming the learning rate up linearly
    seed: int = 0                 # seeds the split, the shuffling, the heads' init and dropout
    eval_fraction: float = 0.15   # held-out share of the PROMPTS (all rows of a prompt stay on one side)
    device: str = "auto"          # auto (CUDA when present) | cpu | cuda
    bf16: bool = True             # bf16 autocast in training where it pays: CUDA, and CPUs with native bf16
    max_rows: int = 0             # use at most this many rows (seeded sample before the split); 0 = all
    max_pairs: int = 0            # use at most this many harm pairs (seeded sample); 0 = all
    max_steps: int = 0            # optimizer steps cap; 0 = no cap
    max_grad_norm: float = 1.0    # gradient clipping by global norm
    prompt_harmful_weight: float = 1.0    # weight of the prompt_harmful BCE term
    categories_weight: float = 1.0        # weight of the per-category BCE term (mean over categories)
    category_pos_weight: float = 5.0      # BCE weight of a positive category label: most categories are rare
    response_refusal_weight: float = 1.0  # weight of the 3-class refusal cross-entropy
    response_harmful_weight: float = 1.0  # weight of the response_harmful BCE (per-reply harmful flags)
    pair_weight: float = 0.5              # weight of the pairwise harm term on harm pairs (as the cost model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# field → (lowest, highest, lowest is exclusive), as in rewardmodels.ml.config: every number has both ends.
_RANGES = {
    "max_length": (8, 8192, False),
    "batch_size": (1, 1024, False),
    "epochs": (1, 100, False),
    "learning_rate": (0.0, 1.0, True),
    "head_learning_rate": (0.0, 1.0, True),
    "weight_decay": (0.0, 1.0, False),
    "warmup_ratio": (0.0, 1.0, False),
    "seed": (0, 2**32 - 1, False),
    "eval_fraction": (0.0, 0.5, False),
    "max_rows": (0, 100_000_000, False),
    "max_pairs": (0, 100_000_000, False),
    "max_steps": (0, 1_000_000, False),
    "max_grad_norm": (0.0, 1000.0, True),
    "prompt_harmful_weight": (0.0, 100.0, False),
    "categories_weight": (0.0, 100.0, False),
    "category_pos_weight": (0.0, 1000.0, True),
    "response_refusal_weight": (0.0, 100.0, False),
    "response_harmful_weight": (0.0, 100.0, False),
    "pair_weight": (0.0, 100.0, False),
}


def safety_config_from_dict(data: dict) -> SafetyClassifierConfig:
    """A SafetyClassifierConfig from plain data (a job's JSON); ConfigError names every unknown key and bad value."""
    return settings_from_dict(SafetyClassifierConfig, data, ranges=_RANGES, choices={"device": DEVICES})
