"""One safety classifier for SpecLoop: pure torch/transformers, no Django (the boundary is a function call).

    rows, pairs, report = public_rows(data_dir, crosswalk=index)      # or rows_from_prompts(prompt_set_rows)
    cfg = safety_config_from_dict(job_config)                          # ConfigError lists every bad field
    result = train_safety_classifier(cfg, rows=rows, pairs=pairs, categories=[{"key", "name"}, ...],
                                     output_dir=folder, provenance={...}, hooks=TrainHooks(...))
    classifier = load_classifier(folder); classifier.classify(prompts, responses)

Importing this package is cheap: torch and transformers load on first use of the lazy names below, so a web
process can validate a config or build rows without them.
"""

from .config import HEADS, REFUSAL_CLASSES, SafetyClassifierConfig, safety_config_from_dict
from .data import HarmPair, SafetyRow, public_rows, rows_from_prompts
from .refusal_match import string_match_refusal

_LAZY = {
    "train_safety_classifier": "train", "SafetyTrainResult": "train",
    "load_classifier": "infer", "SafetyClassifier": "infer",
    "build_tiny_classifier": "model", "SafetyClassifierModel": "model",
    "masked_binary_loss": "losses", "masked_multilabel_loss": "losses", "masked_refusal_loss": "losses",
    "harm_pair_loss": "losses", "safety_loss": "losses",
}

__all__ = ["HEADS", "REFUSAL_CLASSES", "SafetyClassifierConfig", "safety_config_from_dict", "HarmPair", "SafetyRow",
           "public_rows", "rows_from_prompts", "string_match_refusal", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
