"""Loading a backbone or a checkpoint, and scoring (prompt, response) pairs with it."""

import contextlib
import json
from pathlib import Path

import torch

from .data import Encoder, pad_batch
from .device import autocast, choose_device

METADATA_FILE = "specloop.json"


@contextlib.contextmanager
def quiet_transformers():
    """No load reports or progress bars from transformers: a fresh head is expected, and jobs log their own lines."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_backbone(name: str, device: torch.device):
    """(tokenizer, model with a fresh scalar head) from an HF id or a local folder; safetensors only, never a pickle.

    A local folder is loaded with ``local_files_only``: only a hub id the user named may reach a model hub.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = Path(name).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
    if tokenizer.pad_token_id is None:
        # Decoder-only backbones often have no pad token: pad with EOS (masked out anyway).
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=1, use_safetensors=True,
                                                                   local_files_only=local)
    model.config.pad_token_id = tokenizer.pad_token_id  # decoder heads read the last non-pad token
    return tokenizer, model.to(device)


def score_sequences(model, sequences: list[list[int]], *, pad_id: int, device: torch.device, batch_size: int,
                    bf16: bool) -> list[float]:
    """Scalar scores of token-id sequences, in their order; batched longest-first so padding stays small."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
    scores = [0.0] * len(sequences)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(device, bf16):
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            input_ids, attention_mask = pad_batch([sequences[i] for i in chunk], pad_id)     # (N, L)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
            for i, value in zip(chunk, logits.float().squeeze(-1).tolist()):             # logits: (N, 1)
                scores[i] = value
    model.train(was_training)
    return scores


class Scorer:
    """A trained reward or cost model: ``score(prompts, responses)`` → one float each (cost > 0 means harmful)."""

    def __init__(self, model, tokenizer, metadata: dict, device: torch.device, device_name: str):
        self.model = model
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.kind = metadata.get("kind", "reward")
        self.device = device
        self.device_name = device_name
        config = metadata.get("config") or {}
        self.bf16 = bool(config.get("bf16", False))
        self.encoder = Encoder(tokenizer, int(config.get("max_length", 256)))

    def score(self, prompts: list[str], responses: list[str], batch_size: int = 32) -> list[float]:
        """Scores in the order given; the prompt is cut from the left exactly as in training."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            return []
        sequences, _ = self.encoder.encode(list(prompts), list(responses))
        return score_sequences(self.model, sequences, pad_id=self.tokenizer.pad_token_id, device=self.device,
                               batch_size=batch_size, bf16=self.bf16)


def load_scorer(checkpoint_dir: Path, device: str = "auto") -> Scorer:
    """A checkpoint written by train(): weights from model.safetensors (no pickle is ever read), plus its metadata."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    checkpoint_dir = Path(checkpoint_dir)
    metadata_path = checkpoint_dir / METADATA_FILE
    if not metadata_path.exists():
        raise FileNotFoundError(f"{checkpoint_dir} has no {METADATA_FILE}: not a SpecLoop checkpoint")
    metadata = json.loads(metadata_path.read_text())
    torch_device, device_name = choose_device(device)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir, local_files_only=True)
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(
            checkpoint_dir, use_safetensors=True, local_files_only=True).to(torch_device)
    model.eval()
    return Scorer(model, tokenizer, metadata, torch_device, device_name)
