"""Training configuration: one dataclass, every default explained, and a validator that reports every bad field."""

import dataclasses
import math
from dataclasses import dataclass

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
KINDS = ("reward", "cost")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    kind: str = "reward"          # "reward" (helpfulness, Bradley–Terry) or "cost" (Safe RLHF cost model)
    backbone: str = DEFAULT_BACKBONE  # HF id or local folder; the default MiniLM is fetched from PyPI (MODELS.md)
    max_length: int = 256         # tokens per (prompt, reply) sequence; the prompt is cut from the left to fit
    batch_size: int = 16          # pairs per micro-batch (2× sequences in the forward pass)
    epochs: int = 1               # passes over the training pairs
    learning_rate: float = 2e-5   # AdamW peak learning rate (usual for fine-tuning small BERTs)
    weight_decay: float = 0.0     # AdamW decoupled weight decay, not applied to biases and LayerNorm
    warmup_ratio: float = 0.05    # share of the optimizer steps spent warming the learning rate up linearly
    seed: int = 0                 # seeds the split, the shuffling, the new head's init and dropout
    eval_fraction: float = 0.1    # seeded held-out split (at least one pair each side when there are two or more)
    use_margin: bool = False      # BT loss -log σ(r_c - r_r - margin) with the export's "margin"
    center_rewards: float = 0.0   # coefficient of the reward-centering term (TRL's center_rewards_coefficient)
    sign_weight: float = 1.0      # cost model only: weight of the per-reply sign terms
    grad_accum: int = 1           # micro-batches per optimizer step
    max_steps: int = 0            # optimizer steps cap; 0 = no cap
    eval_every: int = 0           # optimizer steps between evaluations; 0 = at the end of each epoch only
    device: str = "auto"          # auto (CUDA when present) | cpu | cuda
    bf16: bool = True             # autocast bf16 where the device supports it (CUDA)
    max_pairs: int = 0            # use at most this many pairs (seeded sample before the split); 0 = all
    max_grad_norm: float = 1.0    # gradient clipping by global norm (the transformers Trainer default)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A config that cannot train; ``errors`` lists every problem as {"field", "message"}."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


# field → (lowest, highest, lowest is exclusive). Every number has both ends: a job config is typed by a
# person or a script, and a slip (epochs 1e9, batch_size 10**6) should be a 400, not a worker stuck for days.
_RANGES = {
    "max_length": (8, 8192, False),
    "batch_size": (1, 1024, False),
    "epochs": (1, 100, False),
    "learning_rate": (0.0, 1.0, True),
    "weight_decay": (0.0, 1.0, False),
    "warmup_ratio": (0.0, 1.0, False),
    "seed": (0, 2**32 - 1, False),  # what numpy and torch seeding accept
    "eval_fraction": (0.0, 0.5, False),  # more held out than trained on is a mistake
    "center_rewards": (0.0, 10.0, False),
    "sign_weight": (0.0, 100.0, False),
    "grad_accum": (1, 1024, False),
    "max_steps": (0, 1_000_000, False),
    "eval_every": (0, 1_000_000, False),
    "max_pairs": (0, 100_000_000, False),
    "max_grad_norm": (0.0, 1000.0, True),
}
MAX_TEXT = 500  # characters of a text setting (a backbone id or folder name)


def range_text(name: str, ranges: dict | None = None) -> str:
    """The allowed range of a numeric setting as a person reads it: 1..100 (whole numbers), (0, 1] or [0, 0.5]."""
    low, high, exclusive = (_RANGES if ranges is None else ranges)[name]
    if isinstance(low, int):
        return f"{low}..{high}"
    return f"{'(' if exclusive else '['}{low:g}, {high:g}]"


def _type_error(name: str, value, expected: type) -> str | None:
    # bool is an int in Python: refuse it where a number is meant, and refuse numbers where a bool is.
    if expected is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool):
        return f"must be a {'number' if expected is float else 'whole number'}, not a boolean"
    if expected is int:
        # 3.0 or 1e9 is a float, not a count: refused rather than silently truncated.
        return None if isinstance(value, int) else f"must be a whole number such as 3, not {value!r}"
    if expected is float:
        if not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if expected is str:
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty string"
        return None if len(value) <= MAX_TEXT else f"must be at most {MAX_TEXT} characters"
    return None


def settings_from_dict(cls, data: dict, *, ranges: dict, choices: dict[str, tuple]):
    """An instance of the settings dataclass ``cls`` from plain data; ConfigError names every unknown key and bad
    value. Fields are int, float, str or bool; ``ranges`` bounds numbers, ``choices`` lists a text field's values."""
    if not isinstance(data, dict):
        raise ConfigError([{"field": "config", "message": "must be an object"}])
    fields = {f.name: f for f in dataclasses.fields(cls)}
    errors, values = [], {}
    for key in data:
        if key not in fields:
            errors.append({"field": str(key), "message": f"unknown setting (known: {', '.join(fields)})"})
    for name, field in fields.items():
        if name not in data:
            continue
        value, expected = data[name], field.type  # int, float, str or bool (annotations are real types here)
        problem = _type_error(name, value, expected)
        if problem is None:
            value = expected(value)
            if name in choices and value not in choices[name]:
                problem = f"must be one of {', '.join(choices[name])}"
            elif name in ranges:
                low, high, exclusive = ranges[name]
                if ((value <= low) if exclusive else (value < low)) or value > high:
                    problem = f"must be in {range_text(name, ranges)} (got {value})"
        if problem:
            errors.append({"field": name, "message": problem})
        else:
            values[name] = value
    if errors:
        raise ConfigError(errors)
    return cls(**values)


def config_from_dict(data: dict) -> TrainConfig:
    """Build a TrainConfig from plain data (e.g. a job's JSON); ConfigError names every unknown key and bad value."""
    return settings_from_dict(TrainConfig, data, ranges=_RANGES, choices={"kind": KINDS, "device": DEVICES})
