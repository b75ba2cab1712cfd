"""Preference pairs: read export lines, orient them for the cost model, split, tokenize with a left-cut prompt, batch by length."""

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from .hh import split_hh_dialogue  # noqa: F401  (the one HH-RLHF split; benches import it from here)


@dataclass
class Pair:
    """One preference pair as the trainer sees it: ``first`` is the reply that should score higher."""

    prompt: str
    first: str                         # reward: the chosen reply; cost: the more harmful one
    second: str                        # reward: the rejected reply; cost: the less harmful one
    margin: float = 0.0                # the export's |aggregated preference| (0 when absent)
    categories: tuple[str, ...] = ()   # categories tagged on either reply
    harmful_first: bool | None = None  # None: not known
    harmful_second: bool | None = None
    severity_first: float | None = None
    severity_second: float | None = None


@dataclass
class LoadStats:
    rows: int = 0                      # non-blank lines read
    identical: int = 0                 # rows whose two replies are the same text (nothing to learn; left out)


def _flag(value) -> bool | None:
    return None if value is None else bool(value)


def _number(value) -> float | None:
    return None if value is None else float(value)


def pair_from_row(row: dict) -> Pair:
    """An export row (SPEC section 4), or an imported one with only prompt/chosen/rejected (+ harmful)."""
    categories = row.get("categories") or {}
    severity = row.get("severity") or {}
    harmful = row.get("harmful") or {}
    tagged = set(categories.get("chosen") or []) | set(categories.get("rejected") or [])
    return Pair(prompt=row.get("prompt") or "", first=row["chosen"], second=row["rejected"],
                margin=float(row.get("margin") or 0.0), categories=tuple(sorted(tagged)),
                harmful_first=_flag(harmful.get("chosen")), harmful_second=_flag(harmful.get("rejected")),
                severity_first=_number(severity.get("chosen")), severity_second=_number(severity.get("rejected")))


def load_pairs(files: list[Path]) -> tuple[list[Pair], LoadStats]:
    """Every pair of every JSON-lines file, in file order; a bad line raises ValueError naming file and line."""
    pairs, stats = [], LoadStats()
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                stats.rows += 1
                try:
                    row = json.loads(line)
                    if not isinstance(row.get("chosen"), str) or not isinstance(row.get("rejected"), str):
                        raise ValueError("needs string fields 'chosen' and 'rejected'")
                    if row.get("prompt") is not None and not isinstance(row["prompt"], str):
                        raise ValueError("'prompt' must be a string")
                    pair = pair_from_row(row)
                except (ValueError, TypeError, AttributeError) as error:
                    raise ValueError(f"{path}:{number}: {error}") from None
                if pair.first == pair.second:
                    stats.identical += 1
                    continue
                pairs.append(pair)
    return pairs, stats


def more_harmful_first(pair: Pair) -> bool:
    """Cost model order: is the chosen reply the more harmful one? Severity, then harmful flags, else the rejected one."""
    if pair.severity_first is not None and pair.severity_second is not None and pair.severity_first != pair.severity_second:
        return pair.severity_first > pair.severity_second
    if pair.harmful_first is not None and pair.harmful_second is not None and pair.harmful_first != pair.harmful_second:
        return pair.harmful_first
    return False  # HH harmless-base preferences are about harmlessness: the rejected reply is the worse one


def orient_for_cost(pair: Pair) -> Pair:
    """The same pair with the more harmful reply first (the cost model should score it higher)."""
    if more_harmful_first(pair):
        return pair
    return Pair(prompt=pair.prompt, first=pair.second, second=pair.first, margin=pair.margin, categories=pair.categories,
                harmful_first=pair.harmful_second, harmful_second=pair.harmful_first,
                severity_first=pair.severity_second, severity_second=pair.severity_first)


def split_pairs(pairs: list, eval_fraction: float, seed: int) -> tuple[list, list]:
    """Seeded train / held-out split; both sides get at least one pair when there are two or more."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_eval = int(round(len(pairs) * eval_fraction)) if eval_fraction > 0 else 0
    if eval_fraction > 0 and len(pairs) >= 2:
        n_eval = min(max(n_eval, 1), len(pairs) - 1)
    held = set(order[:n_eval])
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


class Encoder:
    """Tokenizes (prompt, reply) as one sequence, the backbone's special tokens around it, at most max_length tokens.

    The prompt is cut from the LEFT so the final reply is always seen; a reply longer than the budget alone keeps
    its start. Nothing is ever dropped.
    """

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        # Whole texts are tokenized on purpose (cut below), so the "longer than the maximum" warning is noise.
        getattr(tokenizer, "deprecation_warnings", {})["sequence-length-is-longer-than-the-specified-maximum"] = True
        # The backbone's single-sequence template, read off one encoding ([CLS] x [SEP] for BERT, <s> x for Llama, ...).
        probe_bare = tokenizer("hello", add_special_tokens=False)["input_ids"]
        probe_full = tokenizer("hello", add_special_tokens=True)["input_ids"]
        start = next((i for i in range(len(probe_full)) if probe_full[i:i + len(probe_bare)] == probe_bare), 0)
        self.prefix = list(probe_full[:start])
        self.suffix = list(probe_full[start + len(probe_bare):])
        self.budget = max_length - len(self.prefix) - len(self.suffix)
        if self.budget < 1:
            raise ValueError(f"max_length {max_length} leaves no room beside the backbone's special tokens")

    def _ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                              return_token_type_ids=False)["input_ids"]

    def join(self, prompt_ids: list[int], reply_ids: list[int]) -> tuple[list[int], bool]:
        """(ids with special tokens, whether anything was cut)."""
        if len(reply_ids) >= self.budget:
            body = reply_ids[:self.budget]
            cut = len(reply_ids) > self.budget or bool(prompt_ids)
        else:
            room = self.budget - len(reply_ids)
            kept = prompt_ids[len(prompt_ids) - room:] if len(prompt_ids) > room else prompt_ids
            body = kept + reply_ids
            cut = len(kept) < len(prompt_ids)
        return self.prefix + body + self.suffix, cut

    def encode(self, prompts: list[str], replies: list[str]) -> tuple[list[list[int]], int]:
        """Token ids for each (prompt, reply), and how many of them were cut."""
        unique = list(dict.fromkeys(prompts))  # pairs share their prompt: tokenize each once
        by_prompt = dict(zip(unique, self._ids(unique)))
        sequences, n_cut = [], 0
        for prompt, reply_ids in zip(prompts, self._ids(replies)):
            ids, cut = self.join(by_prompt[prompt], reply_ids)
            sequences.append(ids)
            n_cut += cut
        return sequences, n_cut


@dataclass
class EncodedPairs:
    first: list[list[int]]    # token ids of the reply that should score higher
    second: list[list[int]]
    n_cut: int                # sequences whose prompt (or reply) was cut to fit max_length

    def __len__(self) -> int:
        return len(self.first)

    def lengths(self) -> list[int]:
        """A pair's padded length in the batch: the longer of its two sequences."""
        return [max(len(a), len(b)) for a, b in zip(self.first, self.second)]


def encode_pairs(encoder: Encoder, pairs: list[Pair]) -> EncodedPairs:
    first, cut_first = encoder.encode([p.prompt for p in pairs], [p.first for p in pairs])
    second, cut_second = encoder.encode([p.prompt for p in pairs], [p.second for p in pairs])
    return EncodedPairs(first=first, second=second, n_cut=cut_first + cut_second)


def length_grouped_batches(lengths: list[int], batch_size: int, *, seed: int, mega_batches: int = 50) -> list[list[int]]:
    """Seeded shuffle, then within mega-batches of ``mega_batches × batch_size`` pairs sort by length and cut into
    batches (little padding); batch order is shuffled, the longest batch first (an out-of-memory shows at once).
    Every index appears exactly once."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    size = batch_size * mega_batches
    batches = []
    for start in range(0, len(order), size):
        mega = sorted(order[start:start + size], key=lambda i: lengths[i], reverse=True)
        batches.extend(mega[i:i + batch_size] for i in range(0, len(mega), batch_size))
    rng.shuffle(batches)
    if batches:
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence of this batch: input_ids and attention_mask, both (N, L)."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)   # (N, L)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)     # (N, L)
    for row, ids in enumerate(sequences):
        input_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, :len(ids)] = 1
    return input_ids, attention_mask


def collate_pairs(encoded: EncodedPairs, indices: list[int], pad_id: int, margins: list[float]) -> dict:
    """One forward pass for a batch of B pairs: rows 0..B-1 are the first replies, B..2B-1 the second ones."""
    sequences = [encoded.first[i] for i in indices] + [encoded.second[i] for i in indices]
    input_ids, attention_mask = pad_batch(sequences, pad_id)                    # (2B, L)
    margin = torch.tensor([margins[i] for i in indices], dtype=torch.float32)   # (B,)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "margin": margin}


def sample_pairs(pairs: list, max_pairs: int, seed: int) -> list:
    """A seeded sample of at most max_pairs pairs, kept in their original order (0 = all)."""
    if max_pairs <= 0 or len(pairs) <= max_pairs:
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), max_pairs))
    return [pairs[i] for i in keep]


def steps_per_epoch(n_pairs: int, batch_size: int, grad_accum: int) -> int:
    return math.ceil(math.ceil(n_pairs / batch_size) / grad_accum)
