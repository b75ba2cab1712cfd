"""A prompt as the turns a rater reads (labeling.dialogue), and what counts as an empty reply."""

import gzip
import json
import os
from pathlib import Path

from labeling.dialogue import ASSISTANT, HUMAN, Turn, dialogue_turns, reply_is_empty

CUE = "\n\nAssistant:"  # what the replies follow in an HH-RLHF dialogue
DEMO = Path(__file__).resolve().parents[2] / "labeling" / "demo_data" / "hh_rlhf_sample.jsonl.gz"


def test_an_hh_dialogue_becomes_its_turns_in_order():
    prompt = "Human: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke."
    assert dialogue_turns(prompt) == [Turn(HUMAN, "Hi there"), Turn(ASSISTANT, "Hello! How can I help?"),
                                      Turn(HUMAN, "Tell me a joke.")]


def test_a_plain_prompt_is_one_human_turn():
    assert dialogue_turns("  What is the capital of France?\n") == [Turn(HUMAN, "What is the capital of France?")]
    assert dialogue_turns("") == [] and dialogue_turns(" \n ") == []


def test_paragraphs_and_line_breaks_stay_inside_their_turn():
    prompt = "Human: First line\nsecond line\n\nA new paragraph.\n\nAssistant: Sure.\n\n\nHuman: Thanks"
    assert dialogue_turns(prompt) == [Turn(HUMAN, "First line\nsecond line\n\nA new paragraph."),
                                      Turn(ASSISTANT, "Sure."), Turn(HUMAN, "Thanks")]


def test_a_speaker_named_inside_a_line_does_not_start_a_turn():
    prompt = "Human: I wrote 'Assistant: no' in my notes. Human: is that odd?"
    assert dialogue_turns(prompt) == [Turn(HUMAN, "I wrote 'Assistant: no' in my notes. Human: is that odd?")]


def test_a_first_turn_without_its_label_is_the_humans():
    assert dialogue_turns("How are you?\n\nAssistant: Fine.\n\nHuman: Good.") == [
        Turn(HUMAN, "How are you?"), Turn(ASSISTANT, "Fine."), Turn(HUMAN, "Good.")]


def test_the_assistant_cue_the_replies_follow_is_not_a_turn():
    """The raw HH text (before the import strips it) starts with a blank line and ends with the cue."""
    prompt = "\n\nHuman: Is it possible to download a car?\n\nAssistant:"
    assert dialogue_turns(prompt) == [Turn(HUMAN, "Is it possible to download a car?")]
    # An empty assistant turn in the middle is kept: the model said nothing there.
    assert dialogue_turns("Human: a\n\nAssistant:\n\nHuman: b") == [Turn(HUMAN, "a"), Turn(ASSISTANT, ""), Turn(HUMAN, "b")]


def test_every_demo_prompt_ends_with_the_human_turn_both_replies_answer():
    """Stored as the dataset has it (up to the last shared assistant cue) or trimmed of the cue: the same turns."""
    counts = []
    for raw in gzip.open(DEMO, "rt", encoding="utf-8"):
        pair = json.loads(raw)
        cut = pair["chosen"].rfind(CUE, 0, len(os.path.commonprefix([pair["chosen"], pair["rejected"]])))
        prompt = pair["chosen"][:cut + len(CUE)]
        turns = dialogue_turns(prompt)
        assert dialogue_turns(prompt[:-len(CUE)].strip()) == turns
        assert turns[-1].speaker == HUMAN and turns[-1].text, prompt
        assert [t.speaker for t in turns] == [HUMAN, ASSISTANT] * (len(turns) // 2) + [HUMAN]  # they alternate
        counts.append(len(turns))
    assert len(counts) == 240 and max(counts) >= 7  # long conversations: what the rater page must show whole


def test_a_reply_of_nothing_or_only_whitespace_is_empty():
    assert reply_is_empty("") and reply_is_empty(" \n\t") and reply_is_empty("\u3000\u00a0")
    assert not reply_is_empty(".") and not reply_is_empty(" no ")
    assert not reply_is_empty(None)  # a missing value, not a reply
