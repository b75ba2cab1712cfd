"""The HH-RLHF dialogue split, the one used everywhere: item and pair imports, the demo, training data, benches.

An HH-RLHF row holds two whole dialogues, ``chosen`` and ``rejected``, that share every turn but the last
assistant reply. The prompt is the shared text up to and including the last shared ``"\\n\\nAssistant:"``
marker; the replies are what follows it, as written. Nothing is stripped, so ``prompt + reply`` is the
dataset's dialogue byte for byte: the text raters read (the rater page shows the trailing marker as the cue
the replies answer), the text exports write, and the text a reward model is trained on — also by TRL,
which joins an explicit prompt and its reply as they are.

Plain Python (no Django, no torch): ``labeling`` and ``rewardmodels.ml`` both import it.
"""

ASSISTANT_TURN = "\n\nAssistant:"


def split_hh_dialogue(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """(prompt, chosen reply, rejected reply), cut after the last "\\n\\nAssistant:" wholly inside the text both
    dialogues share; None when they share no assistant turn.

    The cut is inside the shared text because a reply may itself contain that marker (ten lines of the public
    HH-RLHF dev files do). Two identical dialogues split into two identical replies; callers refuse those.
    """
    cut = chosen.rfind(ASSISTANT_TURN, 0, _shared_length(chosen, rejected))
    if cut < 0:
        return None
    cut += len(ASSISTANT_TURN)
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _shared_length(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slice comparisons (C speed; a character loop is not)."""
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while high - low > 1:  # a[:low] == b[:low] and a[:high] != b[:high]
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low


def has_human_turn(prompt: str) -> bool:
    """Whether a split prompt holds anything before its final assistant marker."""
    return bool(prompt[:-len(ASSISTANT_TURN)].strip()) if prompt.endswith(ASSISTANT_TURN) else bool(prompt.strip())
