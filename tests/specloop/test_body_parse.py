"""body_parse validates with one field tree per body class; it answers what a fresh serializer's is_valid() does."""

import threading

import pytest

from labeling.api import AdjudicationIn, CampaignCreateIn, CampaignRatersIn, ExportIn, JudgmentIn, SkipIn
from rewardmodels.api import ScoreIn
from safety.api import DecisionsSendIn, GuardCreateIn, GuardItemIn, GuardScoreIn, PromptSetFromSpecIn
from specloop.errors import ValidationFailed
from specloop.serializers import Body, _flatten, body_parse
from taxonomy.api import SpecCreateIn, SpecDocumentIn, SpecEditorsIn
from training.api import JobCreateIn

JUNK = [None, [], "text", 3, {"unknown": 1}, {}]
BODIES = {
    JudgmentIn: [
        {"preference": 1}, {"preference": 5}, {"preference": "1"}, {"preference": True},
        {"preference": -2, "categories": {"a": ["violence"], "b": []}, "severity": {"a": 0, "b": 3},
         "axes": {"helpful": {"a": 1, "b": 2}}, "rationale": "fine", "seconds": 4.5},
        {"preference": 0, "categories": {"c": []}}, {"preference": 0, "categories": {"a": "violence"}},
        {"preference": 0, "severity": {"a": "high"}}, {"preference": 0, "seconds": -1}, {"preference": 0, "colour": 1},
    ],
    SkipIn: [{"reason": "unsure"}, {"reason": 3}, {"reason": "x" * 600}],
    AdjudicationIn: [{"preference": 1, "categories_x": ["violence"], "note": "n"}, {"preference": 9}, {"note": []}],
    CampaignCreateIn: [{"name": "c", "spec": 1}, {"name": "c", "spec": "1"}, {"spec": 1, "overlap": 0},
                       {"name": "c", "spec": 1, "category_weights": {"violence": 2}, "gold_share": 0.1}],
    CampaignRatersIn: [{"usernames": ["a", "b"]}, {"usernames": "a"}, {"usernames": [1]}],
    ExportIn: [{"aggregation": "majority"}, {"aggregation": 3}, {"min_agreement": 0.5, "categories": ["x"]}],
    ScoreIn: [{"items": [{"prompt": "q", "response": "r"}]}, {"items": [{"prompt": 1}]}, {"items": []}],
    SpecDocumentIn: [{"document": {"goals": []}}, {"document": []}, {"document": {}, "extra": 1}],
    SpecCreateIn: [{"name": "n", "document": {"goals": []}}, {"document": {}}, {"name": 3, "document": {}}],
    SpecEditorsIn: [{"usernames": ["p"]}, {"usernames": [None]}],
    JobCreateIn: [{"kind": "reward_model", "export": 1}, {"kind": "nope"}, {"kind": "reward_model", "export": 1, "exports": [2]},
                  {"kind": "cost_model", "exports": [1, 2], "config": {"epochs": 2}, "name": "n"}],
    GuardCreateIn: [{"name": "g", "safety_classifier": 1}, {"name": "g", "safety_classifier": "1"},
                    {"name": "g", "safety_classifier": 1, "spec": 2, "version": 1, "cost_model": None, "log_decisions": True},
                    {"safety_classifier": 1, "log_decisions": "yes"}],
    GuardItemIn: [{"prompt": "p"}, {"prompt": "p", "response": None}, {"prompt": ""}, {"response": "r"}],
    GuardScoreIn: [{"prompt": "p"}, {"prompt": "p", "response": "r", "guard": 1}, {"items": [{"prompt": "p"}]},
                   {"items": [{"prompt": 1}]}, {"items": []}, {"prompt": "p", "items": [{"prompt": "q"}]}, {"guard": "x"}],
    DecisionsSendIn: [{"decisions": [1, 2], "campaign": 3}, {"decisions": [], "campaign": 3}, {"decisions": ["1"]}],
    PromptSetFromSpecIn: [{"spec": 1}, {"spec": 1, "version": 2, "name": "n"}, {"spec": "1"}, {"name": 3}],
}
CASES = [(cls, body) for cls, bodies in BODIES.items() for body in bodies + JUNK]


def plain(cls, body):
    """What a fresh serializer answers: ("ok", validated data) or ("error", the errors as ValidationFailed lists)."""
    serializer = cls(data=body)
    if serializer.is_valid():
        return "ok", dict(serializer.validated_data)
    return "error", _flatten(serializer.errors)


def shared(cls, body):
    try:
        return "ok", dict(body_parse(cls, body))
    except ValidationFailed as exc:
        return "error", exc.errors


@pytest.mark.parametrize(("cls", "body"), CASES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)])
def test_the_shared_validator_answers_what_a_fresh_serializer_answers(cls, body):
    assert shared(cls, body) == plain(cls, body)


def test_every_body_class_of_the_api_is_compared_here():
    declared = set()
    pending = [Body]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            declared.add(sub)
    nested = {c for c in declared if c.__name__ in ("SideKeys", "SideIndexes", "ScoreItemIn")}  # parts of others
    assert declared - nested - set(BODIES) == set()


def test_a_refused_body_leaves_nothing_behind_for_the_next_one():
    with pytest.raises(ValidationFailed):
        body_parse(JudgmentIn, {"preference": 9, "categories": {"a": "x"}})
    assert body_parse(JudgmentIn, {"preference": 2}) == plain(JudgmentIn, {"preference": 2})[1]


def test_threads_validating_at_once_each_get_their_own_answer():
    bodies = [{"preference": p, "rationale": f"r{p}"} for p in (-2, -1, 0, 1, 2)] + [{"preference": 7}]
    expected = [shared(JudgmentIn, b) for b in bodies]
    results: list = [None] * (len(bodies) * 40)
    barrier = threading.Barrier(8)

    def work(offset):
        barrier.wait()
        for i in range(offset, len(results), 8):
            results[i] = shared(JudgmentIn, bodies[i % len(bodies)])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected[i % len(bodies)] for i in range(len(results))]
