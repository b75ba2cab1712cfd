"""Reward and cost models for SpecLoop: pure torch/transformers, no Django (the boundary is a function call).

    cfg = config_from_dict(job_config)            # ConfigError lists every bad field
    result = train(cfg, data_files=[export_path], output_dir=folder, provenance={...}, hooks=TrainHooks(...))
    scorer = load_scorer(folder); scorer.score(prompts, responses)

Importing this package is cheap: torch and transformers load on first use of train / load_scorer / the losses,
so a web process can validate a config without them.
"""

from .backbones import (BackboneError, backbone_kind, build_tiny_backbone, fetch_default_backbone,
                        fetch_default_models, resolve_backbone)
from .config import DEFAULT_BACKBONE, ConfigError, TrainConfig, config_from_dict

_LAZY = {
    "train": "trainer", "TrainHooks": "trainer", "TrainResult": "trainer",
    "load_scorer": "scoring", "Scorer": "scoring",
    "bradley_terry_loss": "losses", "cost_loss": "losses",
}

__all__ = ["DEFAULT_BACKBONE", "ConfigError", "TrainConfig", "config_from_dict", "BackboneError", "backbone_kind",
           "build_tiny_backbone", "fetch_default_backbone", "fetch_default_models", "resolve_backbone", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
