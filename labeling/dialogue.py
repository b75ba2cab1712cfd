"""A prompt as the conversation a rater reads: its turns, each with its speaker, and whether a reply says nothing.

Prompts imported from HH-RLHF hold the whole dialogue before the compared replies, as text:
``"Human: ...\\n\\nAssistant: ...\\n\\nHuman: ..."``. The last turn is the one both replies answer.
"""

import re
from typing import NamedTuple

HUMAN, ASSISTANT = "Human", "Assistant"
# A speaker's turn starts the text or follows a blank line, as HH-RLHF writes its dialogues.
_TURN = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant):")


class Turn(NamedTuple):
    speaker: str  # HUMAN or ASSISTANT
    text: str  # without its speaker label and surrounding whitespace


def dialogue_turns(prompt: str) -> list[Turn]:
    """The prompt's turns in order; a prompt without speaker labels is one human turn.

    Text before the first label is the human's (a dialogue whose first turn lacks ``Human:``). A last
    ``Assistant:`` with nothing after it is the cue the replies follow, not a turn, and is left out.
    """
    marks = list(_TURN.finditer(prompt))
    if not marks:
        return [Turn(HUMAN, prompt.strip())] if prompt.strip() else []
    turns = []
    if head := prompt[:marks[0].start()].strip():
        turns.append(Turn(HUMAN, head))
    for mark, following in zip(marks, marks[1:] + [None]):
        turns.append(Turn(mark.group(1), prompt[mark.end():following.start() if following else len(prompt)].strip()))
    if len(turns) > 1 and turns[-1] == Turn(ASSISTANT, ""):
        turns.pop()
    return turns


def reply_is_empty(text: str | None) -> bool:
    """A reply with no visible text: the model said nothing. (None is a missing value, not a reply.)"""
    return text is not None and not text.strip()
