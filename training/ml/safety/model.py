"""The safety classifier: one backbone, mean-pooled, four linear heads, ONE forward pass per (prompt, reply).

    logits = model(input_ids, attention_mask)
    logits["prompt_harmful"]    (B,)     σ → P(the request is harmful)
    logits["categories"]        (B, K)   σ → P(the request falls in spec category k), multi-label
    logits["response_refusal"]  (B, 3)   softmax over REFUSAL_CLASSES
    logits["response_harmful"]  (B,)     σ → P(the reply is harmful); as a cost model's score, > 0 means harmful

Checkpoint folder: model.safetensors (backbone.* and heads.*), config.json (the backbone's), tokenizer files,
specloop.json (kind "safety_classifier", categories, thresholds, metrics, config, provenance).
"""

import json
from pathlib import Path

import torch
from torch import nn

from rewardmodels.ml.scoring import METADATA_FILE, quiet_transformers

from .config import REFUSAL_CLASSES

WEIGHTS_FILE = "model.safetensors"
FORMAT = "specloop-safety-classifier/1"


class SafetyClassifierModel(nn.Module):
    def __init__(self, backbone: nn.Module, n_categories: int, *, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None  # BERT's [CLS] pooler is not used (mean pooling): drop its matmul and weights
        hidden = backbone.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({
            "prompt_harmful": nn.Linear(hidden, 1),
            "categories": nn.Linear(hidden, n_categories),
            "response_refusal": nn.Linear(hidden, len(REFUSAL_CLASSES)),
            "response_harmful": nn.Linear(hidden, 1),
        })

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the last hidden states over the real tokens: (B, L) → (B, H)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)                                         # (B, L, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)                                   # (B, H)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(self.pool(input_ids, attention_mask))                                  # (B, H)
        return {
            "prompt_harmful": self.heads["prompt_harmful"](pooled).squeeze(-1),      # (B,)
            "categories": self.heads["categories"](pooled),                          # (B, K)
            "response_refusal": self.heads["response_refusal"](pooled),              # (B, 3)
            "response_harmful": self.heads["response_harmful"](pooled).squeeze(-1),  # (B,)
        }


def load_backbone_and_tokenizer(name: str):
    """(tokenizer, bare backbone) from an HF id or a local folder; safetensors only, local folders never reach a hub."""
    from transformers import AutoModel, AutoTokenizer

    local = Path(name).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    with quiet_transformers():
        backbone = AutoModel.from_pretrained(name, use_safetensors=True, local_files_only=local)
    return tokenizer, backbone


def save_checkpoint(model: SafetyClassifierModel, tokenizer, folder: Path, metadata: dict) -> Path:
    """Weights (safetensors), the backbone config, the tokenizer and specloop.json into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT})
    model.backbone.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / METADATA_FILE).write_text(json.dumps({"format": FORMAT, "kind": "safety_classifier", **metadata},
                                                   indent=2) + "\n")
    return folder


def read_checkpoint(folder: Path) -> tuple[SafetyClassifierModel, object, dict]:
    """(model on CPU in eval mode, tokenizer, metadata) from a checkpoint folder; no pickle is ever read."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = Path(folder)
    metadata_path = folder / METADATA_FILE
    if not metadata_path.exists():
        raise FileNotFoundError(f"{folder} has no {METADATA_FILE}: not a SpecLoop checkpoint")
    metadata = json.loads(metadata_path.read_text())
    if metadata.get("kind") != "safety_classifier":
        raise ValueError(f"{folder} holds a {metadata.get('kind')!r} model, not a safety classifier")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    with quiet_transformers():
        backbone = AutoModel.from_config(config)
    model = SafetyClassifierModel(backbone, len(metadata.get("categories") or []))
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    return model.eval(), tokenizer, metadata


def build_tiny_classifier(folder: Path, categories: list[dict], *, seed: int = 0) -> Path:
    """A safety classifier checkpoint with a tiny random BERT (rewardmodels.ml.build_tiny_backbone) and random heads,
    thresholds 0.5, built in-process: for tests of the guard and the evaluation job. Returns ``folder``."""
    import tempfile

    from rewardmodels.ml import build_tiny_backbone

    from .config import SafetyClassifierConfig

    categories = [{"key": c["key"], "name": c.get("name") or c["key"]} for c in categories]
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_backbone(Path(tmp), seed=seed)
        tokenizer, backbone = load_backbone_and_tokenizer(tmp)
    torch.manual_seed(seed)
    model = SafetyClassifierModel(backbone, len(categories)).eval()
    cfg = SafetyClassifierConfig(backbone="tiny-random-bert", max_length=128, seed=seed)
    thresholds = {"prompt_harmful": 0.5, "response_harmful": 0.5, "categories": {c["key"]: 0.5 for c in categories}}
    return save_checkpoint(model, tokenizer, folder, {
        "categories": categories, "thresholds": thresholds, "metrics": {}, "config": cfg.to_dict(),
        "provenance": {"built": "build_tiny_classifier", "seed": seed}, "steps": 0, "n_train": 0, "n_eval": 0})
