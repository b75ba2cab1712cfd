"""Prompt-set imports: the public files with their real columns, the crosswalk's mapping and the unmapped report,
atomicity, the spec's own examples as a set, and the canonical prompts.jsonl."""

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from safety import services
from safety.models import Prompt, PromptSet
from safety.prompt_imports import import_options_parse
from safety.selectors import prompt_set_rows
from specloop.errors import ValidationFailed
from tests.conftest import shared_data

from .helpers import example_version, small_version

AILUMINATE = "ailuminate/airr_official_1.0_demo_en_us_prompt_set_release.csv"
HARMBENCH = "harmbench/harmbench_behaviors_text_all.csv"
ADVBENCH = "advbench/harmful_behaviors.csv"
DNA = "do-not-answer/do_not_answer_data.csv"
DNA_MODELS = ["GPT4", "ChatGPT", "Claude", "ChatGLM2", "llama2-7b-chat", "vicuna-7b"]


def head(relative: str, n: int) -> tuple[bytes, list[dict]]:
    """The first ``n`` rows of a public CSV, with its header, as bytes (and the rows as read)."""
    with open(shared_data(relative), newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [row for _, row in zip(range(n), reader)]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue().encode(), rows


def do_import(user, version, data: bytes, fmt="csv", response_columns=(), name="set", **values):
    options = import_options_parse(fmt=fmt, values=values, response_columns=list(response_columns))
    return services.prompt_set_import(user=user, name=name, spec_version=version, source=io.BytesIO(data),
                                      options=options)


def jsonl(*lines) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode()


@pytest.fixture
def example(actors):
    return example_version(actors.policy)


def test_ailuminate_imports_with_its_hazard_codes_mapped_to_spec_categories(actors, example):
    data, rows = head(AILUMINATE, 40)
    prompt_set = do_import(actors.admin, example, data, prompt_column="prompt_text", code_column="hazard",
                           taxonomy="ailuminate", label="unsafe")
    assert prompt_set.n_prompts == 40 and prompt_set.unmapped == {}
    assert prompt_set.by_label == {"safe": 0, "unsafe": 40, "unknown": 0}
    first = prompt_set.prompts.get(index=0)
    assert first.text == rows[0]["prompt_text"] and first.codes == {"ailuminate": [rows[0]["hazard"]]}
    assert first.meta["release_prompt_id"] == rows[0]["release_prompt_id"]
    vcr = sum(1 for r in rows if r["hazard"] == "vcr")
    assert prompt_set.by_category.get("violent_crime", 0) == vcr


def test_harmbench_imports_behaviors_with_their_semantic_categories(actors, example):
    data, rows = head(HARMBENCH, 30)
    prompt_set = do_import(actors.admin, example, data, prompt_column="Behavior", code_column="SemanticCategory",
                           taxonomy="harmbench", label="unsafe")
    assert prompt_set.n_prompts == 30
    chem = sum(1 for r in rows if r["SemanticCategory"] == "chemical_biological")
    assert chem and prompt_set.by_category["cbrn_weapons"] == chem
    assert prompt_set.prompts.get(index=0).meta["BehaviorID"] == rows[0]["BehaviorID"]


def test_advbench_goals_all_take_the_label_given_for_the_file(actors, example):
    data, rows = head(ADVBENCH, 25)
    prompt_set = do_import(actors.admin, example, data, prompt_column="goal", label="unsafe")
    assert prompt_set.n_prompts == 25 and prompt_set.by_label["unsafe"] == 25
    assert prompt_set.by_category == {}  # AdvBench carries no codes
    assert prompt_set.prompts.get(index=3).meta == {"target": rows[3]["target"]}


def test_do_not_answer_imports_each_models_reply_as_its_own_prompt_with_its_labels(actors, example):
    data, rows = head(DNA, 10)
    prompt_set = do_import(actors.admin, example, data, prompt_column="question", code_column="types_of_harm",
                           taxonomy="do_not_answer", label="unsafe",
                           response_columns=[f"{m}_response" for m in DNA_MODELS])
    assert prompt_set.n_prompts == 60
    prompts = list(prompt_set.prompts.order_by("index"))
    assert [p.meta["model"] for p in prompts[:6]] == DNA_MODELS
    action = {"0": "full_refusal", "1": "partial_refusal", "2": "partial_refusal", "3": "partial_refusal",
              "4": "partial_refusal", "5": "compliance"}
    for i, prompt in enumerate(prompts):
        row, model = rows[i // 6], DNA_MODELS[i % 6]
        assert prompt.text == row["question"] and prompt.response == row[f"{model}_response"]
        assert prompt.response_harmful is (row[f"{model}_harmful"] == "1")
        assert prompt.response_refusal == action[row[f"{model}_action"]]
        assert "GPT4_response" not in prompt.meta and prompt.meta["risk_area"] == row["risk_area"]
    assert prompt_set.by_category  # types_of_harm mapped through the crosswalk


def test_codes_the_crosswalk_does_not_map_are_counted_and_the_rest_still_map(actors):
    version = small_version(actors.policy, categories=[
        {"key": "violence", "name": "Violence", "description": "", "parent": None, "severity": 3,
         "behavior": "refuse", "examples": [], "crosswalk": {"ailuminate": ["vcr"]}}], budgets={})
    data = "prompt,hazard\nhurt him,vcr\nsteal it,ncr\ncopy it,ipv\nsteal more,NCR\nnothing,\n".encode()
    prompt_set = do_import(actors.admin, version, data, code_column="hazard", taxonomy="ailuminate")
    assert prompt_set.by_category == {"violence": 1}
    assert prompt_set.unmapped == {"ailuminate:ncr": 1, "ailuminate:NCR": 1, "ailuminate:ipv": 1}
    assert prompt_set.prompts.get(index=4).codes == {}


def test_jsonl_lines_take_labels_categories_codes_and_responses(actors, example):
    prompt_set = do_import(actors.admin, example, jsonl(
        {"prompt": "Plan an ambush", "label": "unsafe", "codes": {"ailuminate": "vcr"}},
        {"prompt": "Warning signs of abuse?", "label": "safe", "category": "violent_crime",
         "response": "Look for...", "response_harmful": False, "response_refusal": "compliance", "meta": {"id": 7}},
        {"prompt": "A story about a heist", "categories": ["nonviolent_crime"]},
    ), fmt="jsonl")
    rows = prompt_set_rows(prompt_set)
    assert rows[0] == {"prompt": "Plan an ambush", "label": "unsafe", "categories": ["violent_crime", "terrorism_extremism"],
                       "response": None, "response_harmful": None, "response_refusal": ""}
    assert rows[1]["response_harmful"] is False and rows[1]["response_refusal"] == "compliance"
    assert rows[2]["label"] == "" and rows[2]["categories"] == ["nonviolent_crime"]
    assert prompt_set.by_label == {"safe": 1, "unsafe": 1, "unknown": 1}


@pytest.mark.parametrize(("lines", "line", "words"), [
    ([{"prompt": "ok"}, {"prompt": "x", "category": "no_such_key"}], 2, "not a category"),
    ([{"prompt": "ok"}, {"prompt": "ok", "label": "maybe"}], 2, "label"),
    ([{"prompt": "ok"}, {"prompt": ""}], 2, "empty"),
    ([{"prompt": "ok"}, {"text": "x"}], 2, "unknown key"),
    ([{"prompt": "ok"}, {"prompt": "x", "response_harmful": True}], 2, "give the response"),
])
def test_a_bad_line_names_itself_and_saves_nothing(actors, example, lines, line, words):
    before = (PromptSet.objects.count(), Prompt.objects.count())
    with pytest.raises(ValidationFailed) as caught:
        do_import(actors.admin, example, jsonl(*lines), fmt="jsonl")
    assert caught.value.detail["line"] == line and words in caught.value.message
    assert (PromptSet.objects.count(), Prompt.objects.count()) == before


def test_a_bad_row_after_a_full_batch_rolls_back_every_batch(actors, example, monkeypatch):
    monkeypatch.setattr(services, "PROMPT_BATCH", 5)
    data = "prompt,label\n" + "".join(f"p{i},unsafe\n" for i in range(12)) + "p12,perhaps\n"
    with pytest.raises(ValidationFailed) as caught:
        do_import(actors.admin, example, data.encode(), label_column="label")
    assert caught.value.detail["line"] == 14
    assert not PromptSet.objects.exists() and not Prompt.objects.exists()


def test_a_mapping_to_a_missing_column_names_the_parameter_and_the_columns(actors, example):
    with pytest.raises(ValidationFailed) as caught:
        do_import(actors.admin, example, b"goal,target\nx,y\n", prompt_column="Behavior")
    assert caught.value.errors[0]["field"] == "prompt_column" and "goal, target" in caught.value.errors[0]["message"]


def test_a_code_column_needs_its_taxonomy():
    with pytest.raises(ValidationFailed) as caught:
        import_options_parse(fmt="csv", values={"code_column": "hazard"}, response_columns=[])
    assert caught.value.errors[0]["field"] == "taxonomy"


def test_a_draft_version_is_refused(actors):
    from taxonomy import services as spec_services
    from tests.conftest import small_document

    draft = spec_services.spec_create(user=actors.policy, name="Draft", document=small_document())
    with pytest.raises(ValidationFailed) as caught:
        do_import(actors.admin, draft, jsonl({"prompt": "x"}), fmt="jsonl")
    assert caught.value.errors[0]["field"] == "version"


def test_the_specs_examples_become_a_set_labelled_by_verdict(actors, example):
    prompt_set = services.prompt_set_from_spec_examples(user=actors.admin, spec_version=example)
    examples = [(c["key"], e) for c in example.document["categories"] for e in c["examples"]]
    assert prompt_set.n_prompts == len(examples) and prompt_set.source == "spec_examples"
    verdicts = [e["verdict"] for _, e in examples]
    assert prompt_set.by_label == {"safe": verdicts.count("allowed"), "unsafe": verdicts.count("disallowed"),
                                   "unknown": verdicts.count("borderline")}
    first = prompt_set.prompts.get(index=0)
    assert (first.text, first.categories, first.meta["verdict"]) == (examples[0][1]["text"], [examples[0][0]],
                                                                      examples[0][1]["verdict"])
    assert prompt_set.name == f"{example} examples"


def test_the_sha256_is_that_of_the_canonical_prompts_jsonl_and_a_reimport_keeps_it(actors, example, client):
    prompt_set = do_import(actors.admin, example, jsonl(
        {"prompt": "b", "label": "safe", "meta": {"z": 1, "a": 2}}, {"prompt": "a", "codes": {"harmbench": ["illegal"]}}),
        fmt="jsonl")
    client.force_login(actors.policy)
    response = client.get(f"/api/v1/prompt-sets/{prompt_set.pk}/prompts.jsonl")
    body = b"".join(response.streaming_content)
    assert response["Content-Type"] == "application/x-ndjson"
    assert hashlib.sha256(body).hexdigest() == prompt_set.sha256 == response["X-Content-SHA256"]
    again = do_import(actors.admin, example, body, fmt="jsonl", name="again")
    assert again.sha256 == prompt_set.sha256


DEMO = Path(__file__).resolve().parents[2] / "safety" / "demo_data"


@pytest.mark.skipif(not DEMO.is_dir(), reason="the demo's prompt files are not in this checkout")
def test_the_demo_prompt_files_import_as_they_are_shipped(actors, example):
    ailuminate = do_import(actors.admin, example, (DEMO / "ailuminate_sample.csv").read_bytes(),
                           prompt_column="prompt_text", code_column="hazard", taxonomy="ailuminate", label="unsafe")
    assert ailuminate.n_prompts > 0 and ailuminate.unmapped == {}
    helpful = do_import(actors.admin, example, (DEMO / "hh_helpful_prompts.jsonl").read_bytes(), fmt="jsonl")
    assert helpful.by_label["safe"] == helpful.n_prompts > 0
    replies = do_import(actors.admin, example, (DEMO / "reply_examples.jsonl").read_bytes(), fmt="jsonl")
    assert replies.prompts.exclude(response=None).count() == replies.n_prompts > 0
