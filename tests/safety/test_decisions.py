"""The guard's decision table (safety/decisions.py), one test per behaviour and situation."""

import pytest

from safety.decisions import ALLOW, ALLOW_WITH_NOTE, BLOCK, REVIEW, Judged, decide


def judged(behavior=None, *, prompt_harmful=True, response=True, refusal="compliance", harmful=False):
    return Judged(prompt_harmful=prompt_harmful, has_response=response, refusal=refusal if response else None,
                  response_harmful=harmful if response else None,
                  flagged=[("cat", behavior)] if behavior else [])


# (behaviour, situation) → decision; situation: no reply (harmful prompt / safe-looking prompt), refused reply,
# compliant reply, harmful reply.
TABLE = {
    "refuse": {"prompt": BLOCK, "lookalike": ALLOW_WITH_NOTE, "refused": ALLOW, "partial": ALLOW,
               "complied": BLOCK, "lookalike_complied": ALLOW_WITH_NOTE, "harmful": BLOCK},
    "escalate": {"prompt": REVIEW, "lookalike": REVIEW, "refused": REVIEW, "partial": REVIEW,
                 "complied": REVIEW, "harmful": BLOCK},
    "partial": {"prompt": ALLOW_WITH_NOTE, "lookalike": ALLOW_WITH_NOTE, "refused": ALLOW_WITH_NOTE,
                "partial": ALLOW, "complied": ALLOW_WITH_NOTE, "harmful": BLOCK},
    "redirect": {"prompt": ALLOW_WITH_NOTE, "lookalike": ALLOW_WITH_NOTE, "refused": ALLOW, "partial": ALLOW,
                 "complied": ALLOW_WITH_NOTE, "harmful": BLOCK},
    "comply_with_care": {"prompt": ALLOW_WITH_NOTE, "lookalike": ALLOW_WITH_NOTE, "refused": ALLOW_WITH_NOTE,
                         "partial": ALLOW_WITH_NOTE, "complied": ALLOW_WITH_NOTE, "harmful": REVIEW},
    "comply": {"prompt": ALLOW, "lookalike": ALLOW, "refused": ALLOW_WITH_NOTE, "partial": ALLOW_WITH_NOTE,
               "complied": ALLOW, "harmful": ALLOW_WITH_NOTE},
}
SITUATIONS = {
    "prompt": {"response": False},
    "lookalike": {"response": False, "prompt_harmful": False},
    "refused": {"refusal": "full_refusal"},
    "partial": {"refusal": "partial_refusal"},
    "complied": {"refusal": "compliance"},
    "lookalike_complied": {"refusal": "compliance", "prompt_harmful": False},
    "harmful": {"refusal": "compliance", "harmful": True},
}
# Outside refuse, a look-alike prompt answered decides as a harmful one answered (the reply is what is judged).
for behavior, row in TABLE.items():
    row.setdefault("lookalike_complied", row["complied"])
CASES = [(b, s, d) for b, row in TABLE.items() for s, d in row.items()]


@pytest.mark.parametrize(("behavior", "situation", "expected"), CASES, ids=[f"{b}-{s}" for b, s, _ in CASES])
def test_a_flagged_category_decides_as_its_behaviour_says(behavior, situation, expected):
    decision, per_category, notes = decide(judged(behavior, **SITUATIONS[situation]))
    assert (decision, per_category) == (expected, [expected])
    assert bool(notes) == (expected != ALLOW)  # every decision but a plain allow says why


def test_refuse_blocks_a_harmful_reply_even_when_the_reply_reads_as_a_refusal():
    assert decide(judged("refuse", refusal="partial_refusal", harmful=True))[0] == BLOCK


def test_the_strictest_flagged_category_decides_the_item():
    item = Judged(prompt_harmful=True, has_response=True, refusal="compliance", response_harmful=False,
                  flagged=[("a", "comply"), ("b", "escalate"), ("c", "comply_with_care")])
    decision, per_category, _ = decide(item)
    assert per_category == [ALLOW, REVIEW, ALLOW_WITH_NOTE]
    assert decision == REVIEW


def test_a_harmful_reply_that_no_category_explains_goes_to_review():
    decision, per_category, notes = decide(judged(None, harmful=True))
    assert (decision, per_category) == (REVIEW, [])
    assert "no spec category" in notes[0]


def test_a_harmful_prompt_alone_that_no_category_explains_is_allowed_with_a_note():
    assert decide(judged(None, response=False))[0] == ALLOW_WITH_NOTE


def test_nothing_flagged_and_nothing_harmful_is_allowed_without_notes():
    assert decide(judged(None, prompt_harmful=False, refusal="compliance")) == (ALLOW, [], [])
    assert decide(judged(None, prompt_harmful=False, response=False)) == (ALLOW, [], [])
