"""Item import: atomic, line numbers on errors, duplicates detected, HH-RLHF and CSV formats."""

import gzip
import io
import json

import pytest

from labeling import services
from labeling.imports import detect_format, split_hh_dialogue
from labeling.models import Item, Task
from specloop.errors import ValidationFailed
from tests.conftest import shared_data
from tests.labeling.helpers import jsonl, make_campaign


@pytest.fixture
def campaign(actors):
    return make_campaign(actors, n_items=0)


def test_jsonl_items_become_tasks_in_the_listed_order(campaign):
    result = services.items_import(campaign=campaign, text=jsonl(3, replies=2), fmt="jsonl")
    assert result.as_dict() == {"created_items": 3, "created_tasks": 3, "duplicates": 0}
    task = Task.objects.filter(campaign=campaign).select_related("item").first()
    assert (task.x_index, task.y_index) == (0, 1)
    assert task.item.responses[task.x_index]["text"] == "reply 0.0"


def test_all_pairs_and_adjacent_pairing(actors):
    all_pairs = make_campaign(actors, n_items=1, replies=4, raters=())
    assert Task.objects.filter(campaign=all_pairs).count() == 6
    adjacent = make_campaign(actors, n_items=1, replies=4, raters=(), pairing="adjacent")
    assert sorted(Task.objects.filter(campaign=adjacent).values_list("x_index", "y_index")) == [(0, 1), (1, 2), (2, 3)]


def test_response_a_b_lines_are_accepted(campaign):
    text = json.dumps({"prompt": "p", "response_a": "first", "response_b": "second"})
    services.items_import(campaign=campaign, text=text, fmt="jsonl")
    item = Item.objects.get(campaign=campaign)
    assert [r["text"] for r in item.responses] == ["first", "second"]


BAD_LINES = [
    ('{"prompt": "p", "responses": [{"text": "a"}]}', "at least two"),
    ('{"prompt": "", "responses": ["a", "b"]}', "prompt is empty"),
    ('{"prompt": "p", "responses": ["same", "same"]}', "identical"),
    ('{"prompt": "p", "response_a": "x"}', "needs responses"),
    ('{"prompt": "p", "responses": ["a", "b"], "colour": 1}', "unknown key"),
    ("{not json", "not valid JSON"),
]


@pytest.mark.parametrize("bad, words", BAD_LINES)
def test_a_bad_line_rejects_the_whole_file_with_its_number(campaign, bad, words):
    text = jsonl(3) + "\n\n" + bad + "\n" + jsonl(2, prefix="later")
    with pytest.raises(ValidationFailed) as info:
        services.items_import(campaign=campaign, text=text, fmt="jsonl")
    assert info.value.detail["line"] == 5  # blank line 4 still counts
    assert words in info.value.message
    assert Item.objects.filter(campaign=campaign).count() == 0 and Task.objects.count() == 0


def test_the_same_content_is_not_imported_twice(campaign):
    services.items_import(campaign=campaign, text=jsonl(3), fmt="jsonl")
    again = services.items_import(campaign=campaign, text=jsonl(4), fmt="jsonl")
    assert again.as_dict() == {"created_items": 1, "created_tasks": 1, "duplicates": 3}
    assert Item.objects.filter(campaign=campaign).count() == 4


def test_hh_rlhf_dialogues_split_into_the_dialogue_up_to_the_last_assistant_cue_and_two_final_replies():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour, water, yeast."
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: No idea."
    prompt, c, r = split_hh_dialogue(chosen, rejected, 1)
    # Nothing stripped: prompt + reply is the dataset's dialogue, as training and TRL read it.
    assert prompt == "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant:"
    assert (c, r) == (" Mix flour, water, yeast.", " No idea.")
    assert (prompt + c, prompt + r) == (chosen, rejected)


def test_the_shared_hh_rlhf_file_imports_and_its_identical_pairs_are_refused(campaign):
    lines = gzip.open(shared_data("hh-rlhf/helpful-base.dev.jsonl.gz"), "rt").read().splitlines()
    identical = [i for i, line in enumerate(lines) if json.loads(line)["chosen"] == json.loads(line)["rejected"]]
    assert identical, "the shared file has pairs whose replies are identical"
    with pytest.raises(ValidationFailed) as info:
        services.items_import(campaign=campaign, text="\n".join(lines[:identical[0] + 1]), fmt="hh", keep_empty=True)
    assert info.value.detail["line"] == identical[0] + 1 and "identical" in info.value.message
    good = [line for line in lines if json.loads(line)["chosen"] != json.loads(line)["rejected"]]
    result = services.items_import(campaign=campaign, text="\n".join(good), fmt="hh", keep_empty=True)
    assert result.created_items + result.duplicates == len(good)
    item = Item.objects.filter(campaign=campaign).first()
    assert item.prompt.startswith("\n\nHuman:") and item.prompt.endswith("\n\nAssistant:")
    assert not item.responses[0]["text"].lstrip().startswith("Assistant:")
    assert detect_format(good[0]) == "hh"
    # A reply that itself contains an "Assistant:" turn stays whole (line 127 of the file).
    tricky = json.loads(lines[126])
    prompt, chosen, rejected = split_hh_dialogue(tricky["chosen"], tricky["rejected"], 127)
    assert prompt.endswith("What are some famous world music artists?\n\nAssistant:")
    assert "\n\nAssistant:" in rejected


def test_csv_with_prompt_and_reply_columns(campaign):
    text = "prompt,response_a,response_b,category\n\"Hi, there\",hello,go away,violence\n"
    services.items_import(campaign=campaign, text=text, fmt="csv")
    item = Item.objects.get(campaign=campaign)
    assert item.prompt == "Hi, there" and item.category == "violence"
    with pytest.raises(ValidationFailed, match="prompt"):
        services.items_import(campaign=campaign, text="question,answer\nq,a\n", fmt="csv")


def test_category_weights_set_the_task_weight(actors):
    campaign = make_campaign(actors, n_items=0, raters=(), category_weights={"violence": 3})
    text = "\n".join([
        json.dumps({"prompt": "a", "responses": ["1", "2"], "meta": {"category": "violence"}}),
        json.dumps({"prompt": "b", "responses": ["1", "2"]}),
    ])
    services.items_import(campaign=campaign, text=text, fmt="jsonl")
    assert sorted(Task.objects.filter(campaign=campaign).values_list("weight", flat=True)) == [1.0, 3.0]


def test_an_empty_reply_refuses_the_file_naming_its_line_unless_empty_replies_are_kept(campaign):
    lines = [json.dumps({"prompt": f"p{i}", "response_a": f"a{i}", "response_b": f"b{i}"}) for i in range(16)]
    text = "\n".join(lines + [json.dumps({"prompt": "p16", "response_a": "said something", "response_b": " \n"})])
    with pytest.raises(ValidationFailed) as info:
        services.items_import(campaign=campaign, text=text, fmt="jsonl")
    assert info.value.message == "line 17: response_b is empty; pass keep_empty=1 to keep empty replies"
    assert not Item.objects.filter(campaign=campaign).exists()
    assert services.items_import(campaign=campaign, text=text, fmt="jsonl", keep_empty=True).created_items == 17
    assert Item.objects.get(campaign=campaign, prompt="p16").responses[1]["text"] == " \n"


def test_an_empty_hh_reply_is_refused_by_default_too(campaign):
    line = json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant:"})
    with pytest.raises(ValidationFailed, match="line 1: rejected is empty; pass keep_empty=1"):
        services.items_import(campaign=campaign, text=line, fmt="hh")
    assert services.items_import(campaign=campaign, text=line, fmt="hh", keep_empty=True).created_items == 1


def test_a_file_is_written_batch_by_batch_with_duplicates_found_across_batches_and_a_late_bad_line_keeps_nothing(
        campaign, monkeypatch, tmp_path):
    monkeypatch.setattr(services, "IMPORT_BATCH", 3)
    rows = [{"prompt": f"p{i}", "responses": ["a", "b"]} for i in range(10)] + [{"prompt": "p1", "responses": ["a", "b"]}]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    seen = []
    with open(path, "rb") as source:
        result = services.items_import(campaign=campaign, source=source, fmt="jsonl",
                                       on_progress=lambda fraction, line: seen.append((fraction, line)))
    assert result.as_dict() == {"created_items": 10, "created_tasks": 10, "duplicates": 1}
    assert [line for _, line in seen] == [3, 6, 9, 11] and seen[-1][0] == 1.0
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)

    path.write_text("\n".join([json.dumps({"prompt": f"q{i}", "responses": ["a", "b"]}) for i in range(8)] + ["{bad"]))
    with open(path, "rb") as source, pytest.raises(ValidationFailed, match="line 9: not valid JSON"):
        services.items_import(campaign=campaign, source=source, fmt="jsonl")
    assert not Item.objects.filter(campaign=campaign, prompt__startswith="q").exists()


def test_a_file_that_is_not_utf8_is_refused_naming_the_byte(campaign):
    body = b'{"prompt": "p", "responses": ["a", "b"]}\n{"prompt": "caf\xe9", "responses": ["a", "b"]}\n'
    for fmt, data in [("jsonl", body), ("csv", b"prompt,response_a,response_b\ncaf\xe9,a,b\n")]:
        with pytest.raises(ValidationFailed) as info:
            services.items_import(campaign=campaign, source=io.BytesIO(data), fmt=fmt)
        bad_byte = data.index(b"\xe9")
        assert info.value.message == f"file: the file is not UTF-8 text (byte {bad_byte})"
