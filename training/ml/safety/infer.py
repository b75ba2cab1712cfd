"""Loading a safety classifier and classifying (prompt, reply) items with it: the runtime guard's hot path.

    classifier = load_classifier(folder)
    classifier.classify(["How do I make a bomb?"], [None])
    → [{"prompt_harmful": 0.97, "categories": {"explosives": 0.91, ...},
        "response_refusal": {"compliance": p, "partial_refusal": p, "full_refusal": p}, "response_harmful": None}]

Fast on CPU: items are tokenized in one call, sorted by length and batched with the batch's own longest length
(no padding to max_length), run under torch.inference_mode. ``precision`` picks the CPU arithmetic: "fp32", "bf16"
(autocast; CPUs with avx512_bf16 / AMX), "int8" (torch dynamic quantization of the Linear layers) or "auto"
(bf16 where the CPU has native bf16, else fp32). Measured here (bench/guard_latency.py, MiniLM, 256 tokens, 2
threads, quiet machine): bf16 about 2× faster than fp32 per item, probabilities within 0.004 of fp32; int8 a little
faster still but off by up to 0.30 on the trained classifier, so never chosen by "auto".
"""

import contextlib
from pathlib import Path

import numpy as np
import torch

from rewardmodels.ml.data import pad_batch
from rewardmodels.ml.device import choose_device

from .config import REFUSAL_CLASSES
from .encoding import SafetyEncoder
from .model import SafetyClassifierModel, read_checkpoint

PRECISIONS = ("auto", "fp32", "bf16", "int8")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (avx512_bf16 or AMX): only then is bf16 faster than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def run_heads(model: SafetyClassifierModel, sequences: list[list[int]], *, pad_id: int, device: torch.device,
              batch_size: int, precision: str = "fp32") -> dict[str, np.ndarray]:
    """Probabilities of every head for token-id sequences, in their order: {"prompt_harmful": (N,), "categories":
    (N, K), "response_refusal": (N, 3), "response_harmful": (N,)}. Batched longest-first (little padding)."""
    n = len(sequences)
    k = model.heads["categories"].out_features
    out = {"prompt_harmful": np.zeros(n, dtype=np.float32), "categories": np.zeros((n, k), dtype=np.float32),
           "response_refusal": np.zeros((n, len(REFUSAL_CLASSES)), dtype=np.float32),
           "response_harmful": np.zeros(n, dtype=np.float32)}
    if n == 0:
        return out
    order = sorted(range(n), key=lambda i: len(sequences[i]), reverse=True)
    was_training = model.training
    model.eval()
    if precision == "bf16" and device.type == "cpu":
        cast = torch.autocast("cpu", dtype=torch.bfloat16)
    elif precision == "bf16" and device.type == "cuda":
        cast = torch.autocast("cuda", dtype=torch.bfloat16)
    else:
        cast = contextlib.nullcontext()
    with torch.inference_mode(), cast:
        for start in range(0, n, batch_size):
            chunk = order[start:start + batch_size]
            if len(chunk) == 1:  # one item: no padding, no mask work
                input_ids = torch.tensor([sequences[chunk[0]]], dtype=torch.long)
                attention_mask = torch.ones_like(input_ids)
            else:
                input_ids, attention_mask = pad_batch([sequences[i] for i in chunk], pad_id)  # (N, L)
            logits = model(input_ids.to(device), attention_mask.to(device))
            rows = np.asarray(chunk, dtype=np.int64)
            out["prompt_harmful"][rows] = torch.sigmoid(logits["prompt_harmful"].float()).cpu().numpy()
            out["categories"][rows] = torch.sigmoid(logits["categories"].float()).cpu().numpy()
            out["response_refusal"][rows] = torch.softmax(logits["response_refusal"].float(), -1).cpu().numpy()
            out["response_harmful"][rows] = torch.sigmoid(logits["response_harmful"].float()).cpu().numpy()
    model.train(was_training)
    return out


def quantize_int8(model: SafetyClassifierModel) -> SafetyClassifierModel:
    """Dynamic int8 quantization of the backbone's Linear layers (weights int8, activations quantized per batch),
    CPU only; the four small heads stay fp32."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        model.backbone = torch.ao.quantization.quantize_dynamic(model.backbone, {torch.nn.Linear}, dtype=torch.qint8)
    return model


class SafetyClassifier:
    """A loaded safety classifier: ``classify(prompts, responses)`` → one dict of probabilities per item."""

    def __init__(self, model: SafetyClassifierModel, tokenizer, metadata: dict, device: torch.device,
                 device_name: str, precision: str):
        self.model = model
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.categories = [dict(c) for c in metadata.get("categories") or []]
        self.keys = [c["key"] for c in self.categories]
        self.thresholds = metadata.get("thresholds") or {}
        self.device = device
        self.device_name = device_name
        self.precision = precision
        config = metadata.get("config") or {}
        self.encoder = SafetyEncoder(tokenizer, int(config.get("max_length", 256)))

    def encode(self, prompts: list[str], responses: list[str | None]) -> list[list[int]]:
        sequences, _ = self.encoder.encode_rows([p or "" for p in prompts],
                                                [r if r is not None and r.strip() else None for r in responses])
        return sequences

    def probabilities(self, prompts: list[str], responses: list[str | None], batch_size: int = 32) -> dict:
        """The heads' probabilities as arrays (what ``classify`` formats): for bulk scoring."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return run_heads(self.model, self.encode(list(prompts), list(responses)), pad_id=self.tokenizer.pad_token_id,
                         device=self.device, batch_size=batch_size, precision=self.precision)

    def classify(self, prompts: list[str], responses: list[str | None], batch_size: int = 32) -> list[dict]:
        """Per item, in input order: {"prompt_harmful": p, "categories": {key: p}, "response_refusal": {class: p},
        "response_harmful": p or None (no response)}. Without a response the refusal probabilities are the head's
        reading of the prompt alone: callers judge the prompt then, not the refusal."""
        probs = self.probabilities(prompts, responses, batch_size)
        results = []
        for i, response in enumerate(responses):
            has_response = response is not None and bool(response.strip())
            results.append({
                "prompt_harmful": float(probs["prompt_harmful"][i]),
                "categories": {key: float(p) for key, p in zip(self.keys, probs["categories"][i])},
                "response_refusal": {c: float(p) for c, p in zip(REFUSAL_CLASSES, probs["response_refusal"][i])},
                "response_harmful": float(probs["response_harmful"][i]) if has_response else None,
            })
        return results


def load_classifier(folder: Path, device: str = "auto", *, precision: str = "auto") -> SafetyClassifier:
    """A checkpoint written by train_safety_classifier (or build_tiny_classifier), ready to classify."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
    torch_device, device_name = choose_device(device)
    model, tokenizer, metadata = read_checkpoint(Path(folder))
    if precision == "auto":
        precision = "bf16" if torch_device.type == "cuda" or cpu_has_native_bf16() else "fp32"
    if precision == "int8":
        if torch_device.type != "cpu":
            raise ValueError("int8 (dynamic quantization) runs on CPU only")
        model = quantize_int8(model)
    model = model.to(torch_device).eval()
    return SafetyClassifier(model, tokenizer, metadata, torch_device, device_name, precision)
