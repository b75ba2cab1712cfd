"""Evaluation configuration: one dataclass, every default explained, and a validator that reports every bad field."""

import dataclasses
import math
from dataclasses import dataclass

from rewardmodels.ml.config import DEVICES, MAX_TEXT, ConfigError, range_text

DEFAULT_POLICY = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass
class EvaluationConfig:
    policy: str = DEFAULT_POLICY  # HF id or folder in the models directory; "" with use_responses (no generation)
    use_responses: bool = False   # score the prompt sets' own `response` column instead of generating
    safety_classifier: int | None = None  # registry id of the safety classifier (resolved by the service)
    reward_model: int | None = None       # registry id of a reward model to score replies with; None = none
    cost_model: int | None = None         # registry id of a cost model to score replies with; None = none
    max_new_tokens: int = 64      # tokens generated per reply (enough to see a refusal; longer costs linearly)
    batch_size: int = 8           # prompts per generation batch (left-padded); also the scoring batch
    do_sample: bool = False       # False = greedy (reproducible with no seed); True = seeded sampling
    temperature: float = 0.7      # sampling only: softmax temperature
    top_p: float = 0.9            # sampling only: nucleus mass kept
    seed: int = 0                 # seeds sampling and the max_prompts sample
    max_prompts: int = 0          # evaluate a seeded sample of at most this many prompts; 0 = all
    device: str = "auto"          # auto (CUDA when present) | cpu | cuda
    bf16: bool = True             # bf16 policy weights where the device computes bf16 natively (CUDA, AMX CPUs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# field → (lowest, highest, lowest is exclusive); every number has both ends, as in rewardmodels.ml.config.
_RANGES = {
    "max_new_tokens": (1, 4096, False),
    "batch_size": (1, 1024, False),
    "temperature": (0.0, 10.0, True),
    "top_p": (0.0, 1.0, True),
    "seed": (0, 2**32 - 1, False),
    "max_prompts": (0, 10_000_000, False),
}
_MODEL_IDS = ("safety_classifier", "reward_model", "cost_model")


def _problem(name: str, value):
    """What is wrong with one value, or None."""
    if name in _MODEL_IDS:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return "must be a model id (a whole number from the registry) or null"
        return None
    if name == "policy":
        if not isinstance(value, str):
            return "must be a string (a model id or folder name; \"\" with use_responses)"
        return None if len(value) <= MAX_TEXT else f"must be at most {MAX_TEXT} characters"
    if name in ("use_responses", "do_sample", "bf16"):
        return None if isinstance(value, bool) else "must be true or false"
    if name == "device":
        return None if value in DEVICES else f"must be one of {', '.join(DEVICES)}"
    low, high, exclusive = _RANGES[name]
    if isinstance(value, bool):
        return "must be a number, not a boolean"
    if isinstance(low, int):
        if not isinstance(value, int):
            return f"must be a whole number such as 3, not {value!r}"
    elif not isinstance(value, (int, float)) or not math.isfinite(value):
        return "must be a finite number"
    if ((value <= low) if exclusive else (value < low)) or value > high:
        return f"must be in {range_text(name, _RANGES)} (got {value})"
    return None


def evaluation_config_from_dict(data: dict) -> EvaluationConfig:
    """An EvaluationConfig from plain data (a job's JSON); ConfigError names every unknown key and bad value.

    Generation needs a policy; with ``use_responses`` no policy is loaded, so one named explicitly is an error
    (it would be silently ignored) and the config records policy "".
    """
    if not isinstance(data, dict):
        raise ConfigError([{"field": "config", "message": "must be an object"}])
    fields = [f.name for f in dataclasses.fields(EvaluationConfig)]
    errors, values = [], {}
    for key in data:
        if key not in fields:
            errors.append({"field": str(key), "message": f"unknown setting (known: {', '.join(fields)})"})
    for name in fields:
        if name in data:
            problem = _problem(name, data[name])
            if problem:
                errors.append({"field": name, "message": problem})
            else:
                values[name] = float(data[name]) if name in ("temperature", "top_p") else data[name]
    if not errors:
        if values.get("use_responses"):
            if values.get("policy"):
                errors.append({"field": "policy", "message": "give a policy to generate with or use_responses "
                                                             "(score the prompt sets' responses), not both"})
            values["policy"] = ""
        elif "policy" in values and not values["policy"].strip():
            errors.append({"field": "policy", "message": "must name a policy to generate with, or set "
                                                         "use_responses to score the prompt sets' responses"})
    if errors:
        raise ConfigError(errors)
    return EvaluationConfig(**values)
