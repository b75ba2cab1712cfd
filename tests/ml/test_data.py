from collections import Counter

import pytest

from rewardmodels.ml.data import (
    Encoder, Pair, encode_pairs, length_grouped_batches, load_pairs, more_harmful_first, orient_for_cost, sample_pairs,
    split_hh_dialogue, split_pairs,
)

from .conftest import synthetic_rows, write_rows


@pytest.fixture(scope="module")
def tokenizer(tiny_backbone):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_backbone)


def test_the_encoder_reads_the_backbones_special_tokens(tokenizer):
    encoder = Encoder(tokenizer, 16)
    assert tokenizer.convert_ids_to_tokens(encoder.prefix) == ["[CLS]"]
    assert tokenizer.convert_ids_to_tokens(encoder.suffix) == ["[SEP]"]
    assert encoder.budget == 14


def test_a_long_prompt_is_cut_from_the_left_and_the_reply_is_kept_whole(tokenizer):
    encoder = Encoder(tokenizer, 12)
    prompt = "one two three four five six seven eight nine ten good new time"
    reply = "safe kind legal"
    ids, cut = encoder.join(encoder._ids([prompt])[0], encoder._ids([reply])[0])
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert cut and len(ids) == 12
    assert tokens[-4:] == ["safe", "kind", "legal", "[SEP]"]
    assert tokens[0] == "[CLS]"
    # What is left of the prompt is its end.
    assert tokenizer.decode(ids[1:-4]) == tokenizer.decode(encoder._ids([prompt])[0][-7:])


def test_a_reply_longer_than_the_budget_keeps_its_start(tokenizer):
    encoder = Encoder(tokenizer, 6)
    reply_ids = encoder._ids(["the a good new time way thing world"])[0]
    ids, cut = encoder.join(encoder._ids(["human: hello"])[0], reply_ids)
    assert cut and ids == encoder.prefix + reply_ids[:4] + encoder.suffix


def test_a_short_pair_is_not_cut(tokenizer):
    encoder = Encoder(tokenizer, 64)
    ids, cut = encoder.join([5, 6], [7])
    assert not cut and ids == encoder.prefix + [5, 6, 7] + encoder.suffix
    # The edge: the reply fills the budget exactly, the prompt goes entirely.
    ids, cut = Encoder(tokenizer, 5).join([5, 6], [7, 8, 9])
    assert cut and ids[1:-1] == [7, 8, 9]


def test_encoding_keeps_every_pair_and_the_end_of_every_reply(tokenizer, tmp_path):
    pairs, _ = load_pairs([write_rows(tmp_path / "x.jsonl", synthetic_rows(40))])
    encoded = encode_pairs(Encoder(tokenizer, 20), pairs)  # replies fit (≤ 11 words), prompts do not
    assert len(encoded) == len(pairs) == 40
    assert encoded.n_cut > 0
    for pair, first in zip(pairs, encoded.first):
        assert len(first) <= 20
        reply_ids = tokenizer(pair.first, add_special_tokens=False)["input_ids"]
        assert first[-1 - len(reply_ids):-1] == reply_ids


def test_length_grouped_batches_cover_every_pair_exactly_once_and_group_similar_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, seed=3, mega_batches=8)
    counts = Counter(i for batch in batches for i in batch)
    assert sorted(counts) == list(range(1000)) and set(counts.values()) == {1}
    # 1000 = 7 mega-batches of 128 + one of 104: one batch of 8, the other 62 full.
    assert sorted(Counter(len(b) for b in batches).items()) == [(8, 1), (16, 62)]
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # the longest batch first
    # Padding per pair: a small share of what batches of 16 in plain order leave.
    def padding(groups):
        return sum(max(lengths[i] for i in b) - lengths[i] for b in groups for i in b) / 1000
    plain = [list(range(s, min(s + 16, 1000))) for s in range(0, 1000, 16)]
    assert padding(batches) < padding(plain) / 4
    assert length_grouped_batches(lengths, 16, seed=3, mega_batches=8) == batches
    assert length_grouped_batches(lengths, 16, seed=4, mega_batches=8) != batches


def test_the_split_is_seeded_and_disjoint():
    items = list(range(100))
    train, held = split_pairs(items, 0.1, seed=7)
    assert len(held) == 10 and sorted(train + held) == items
    assert split_pairs(items, 0.1, seed=7) == (train, held)
    assert split_pairs(items, 0.1, seed=8)[1] != held
    assert split_pairs([1, 2], 0.1, seed=0)[1] and split_pairs([1, 2], 0.1, seed=0)[0]  # both sides non-empty
    assert split_pairs(items, 0.0, seed=0) == (items, [])


def test_sampling_is_seeded_and_keeps_order():
    assert sample_pairs(list(range(10)), 0, seed=1) == list(range(10))
    sample = sample_pairs(list(range(100)), 10, seed=1)
    assert len(sample) == 10 and sample == sorted(sample) and sample == sample_pairs(list(range(100)), 10, seed=1)


def test_rows_with_only_prompt_chosen_rejected_load_and_identical_replies_are_left_out(tmp_path):
    path = write_rows(tmp_path / "imported.jsonl", [
        {"prompt": "p", "chosen": "a", "rejected": "b"},
        {"prompt": "p", "chosen": "same", "rejected": "same"},
        {"chosen": "c", "rejected": "d", "harmful": {"rejected": True}},
    ])
    (tmp_path / "imported.jsonl").write_text(path.read_text() + "\n\n")
    pairs, stats = load_pairs([path])
    assert stats.rows == 3 and stats.identical == 1 and len(pairs) == 2
    assert pairs[0] == Pair(prompt="p", first="a", second="b")
    assert pairs[1].prompt == "" and pairs[1].harmful_first is None and pairs[1].harmful_second is True


def test_a_bad_line_names_its_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": 3}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_pairs([path])


def test_the_cost_order_uses_severity_then_harmful_flags_then_puts_the_rejected_reply_first():
    by_severity = Pair("p", "a", "b", severity_first=3.0, severity_second=1.0, harmful_first=False, harmful_second=True)
    assert more_harmful_first(by_severity)
    by_flags = Pair("p", "a", "b", severity_first=1.0, severity_second=1.0, harmful_first=True, harmful_second=False)
    assert more_harmful_first(by_flags)
    neither = Pair("p", "a", "b", harmful_first=True, harmful_second=True)
    assert not more_harmful_first(neither)
    swapped = orient_for_cost(Pair("p", "chosen", "rejected", severity_first=0.5, severity_second=2.0,
                                   harmful_first=False, harmful_second=True, categories=("x",)))
    assert (swapped.first, swapped.second, swapped.harmful_first, swapped.harmful_second, swapped.severity_first) == \
        ("rejected", "chosen", True, False, 2.0)
    assert swapped.categories == ("x",)


def test_an_hh_dialogue_splits_at_the_last_shared_assistant_turn():
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I bake?\n\nAssistant: Mix flour."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I bake?\n\nAssistant: Mind your business."
    prompt, a, b = split_hh_dialogue(chosen, rejected)
    assert prompt == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I bake?\n\nAssistant:"
    assert (a, b) == (" Mix flour.", " Mind your business.")
    assert split_hh_dialogue("\n\nHuman: x", "\n\nHuman: y") is None
