"""The guard's decision table: what the spec's behaviours say to do with one scored (prompt, reply).

Pure functions (no Django, no model): the classifier's outputs, already thresholded, go in; a decision and
the per-category decisions come out. Decisions, mildest first:

- ``allow``: pass it on.
- ``allow_with_note``: pass it on, with a note the application may show or log (answer with care).
- ``review``: hold it for a person (the spec says ``escalate``, or the heads disagree with every category).
- ``block``: do not send the reply (or, with no reply yet, do not answer the prompt).

The item's decision is the strictest of its flagged categories' decisions and of the two rules outside the
categories (bottom of the table). Per flagged category, by its ``behavior``:

| behaviour | no reply (prompt alone) | reply refused (full or partial), not harmful | reply complies, not harmful | harmful reply |
|---|---|---|---|---|
| refuse | block if the prompt is harmful, else allow_with_note | allow | block if the prompt is harmful, else allow_with_note | block |
| escalate | review | review | review | block |
| partial | allow_with_note | allow (partial) / allow_with_note (full refusal: over-refusal) | allow_with_note | block |
| redirect | allow_with_note | allow | allow_with_note | block |
| comply_with_care | allow_with_note | allow_with_note | allow_with_note | review |
| comply | allow | allow_with_note (over-refusal) | allow | allow_with_note |

Outside the categories: a harmful reply with no flagged category → review (harm the spec does not name);
a harmful prompt with no reply and no flagged category → allow_with_note.

Why: a harmful reply is blocked wherever the spec asks for restraint (refuse, partial, redirect, escalate); so is a
reply that complies with a harmful request in a ``refuse`` category even when the reply head does not call it
harmful (the spec says such requests are refused, and the reply head, trained on far fewer labelled replies than
the prompt head, misses harmful compliance more often: seen on the default classifier); in a
``comply_with_care`` category a person looks at it instead (the spec wants these answered, so a block is
likelier an over-block), and in a ``comply`` category it passes with a note. ``escalate`` always asks for a
person. With no reply the guard judges the prompt: only a harmful prompt in a ``refuse`` category is blocked
before generation; a flagged category whose prompt the prompt head calls safe is the look-alike case
(over-refusal), answered with a note.
"""

from dataclasses import dataclass, field

ALLOW = "allow"
ALLOW_WITH_NOTE = "allow_with_note"
REVIEW = "review"
BLOCK = "block"
DECISIONS = (ALLOW, ALLOW_WITH_NOTE, REVIEW, BLOCK)  # mildest first
_RANK = {d: i for i, d in enumerate(DECISIONS)}

BEHAVIORS = ("comply", "comply_with_care", "partial", "redirect", "refuse", "escalate")
_SAYS = {"refuse": "refuses", "partial": "answers partially", "redirect": "redirects", "escalate": "escalates",
         "comply_with_care": "answers with care", "comply": "answers"}  # "a category the spec ..."
REFUSALS = ("compliance", "partial_refusal", "full_refusal")


@dataclass
class Judged:
    """One item as the heads judged it, thresholds applied."""

    prompt_harmful: bool
    has_response: bool
    refusal: str | None = None  # one of REFUSALS when there is a reply
    response_harmful: bool | None = None  # None when there is no reply
    flagged: list[tuple[str, str]] = field(default_factory=list)  # (category key, behaviour) of flagged categories


def strictest(decisions) -> str:
    return max(decisions, key=_RANK.__getitem__, default=ALLOW)


def category_decision(behavior: str, item: Judged) -> tuple[str, str]:
    """(decision, note) for one flagged category of this behaviour; the note is "" for a plain allow."""
    if not item.has_response:
        if behavior == "refuse":
            if item.prompt_harmful:
                return BLOCK, "harmful request in a category the spec refuses"
            return ALLOW_WITH_NOTE, "looks like a refused category, but the prompt was not judged harmful: answer with care"
        if behavior == "escalate":
            return REVIEW, "the spec escalates this category to a person"
        if behavior == "comply":
            return ALLOW, ""
        return ALLOW_WITH_NOTE, f"a category the spec {_SAYS[behavior]}: answer accordingly"
    if item.response_harmful:
        if behavior == "comply":
            return ALLOW_WITH_NOTE, "the reply was judged harmful in a category the spec answers"
        if behavior == "comply_with_care":
            return REVIEW, "harmful reply in a category the spec answers with care: a person should check it"
        return BLOCK, f"harmful reply in a category the spec {_SAYS[behavior]}"
    refused = item.refusal in ("partial_refusal", "full_refusal")
    if behavior == "escalate":
        return REVIEW, "the spec escalates this category to a person"
    if behavior == "comply_with_care":
        return ALLOW_WITH_NOTE, "a category the spec answers with care"
    if behavior == "comply":
        if refused:
            return ALLOW_WITH_NOTE, "the reply refuses a request the spec answers (over-refusal)"
        return ALLOW, ""
    if behavior == "partial" and item.refusal == "full_refusal":
        return ALLOW_WITH_NOTE, "the reply refuses fully where the spec asks for a partial answer"
    if refused:
        return ALLOW, ""
    if behavior == "refuse" and item.prompt_harmful:
        return BLOCK, "the reply complies with a harmful request in a category the spec refuses"
    return ALLOW_WITH_NOTE, f"the reply complies in a category the spec {_SAYS[behavior]}; it was not judged harmful"


def decide(item: Judged) -> tuple[str, list[str], list[str]]:
    """(the item's decision, the flagged categories' decisions in their order, notes)."""
    per_category: list[str] = []
    notes: list[str] = []
    for key, behavior in item.flagged:
        decision, note = category_decision(behavior, item)
        per_category.append(decision)
        if note:
            notes.append(f"{key}: {note}")
    outside = ALLOW
    if not item.flagged:
        if item.has_response and item.response_harmful:
            outside = REVIEW
            notes.append("the reply was judged harmful, but no spec category was flagged")
        elif not item.has_response and item.prompt_harmful:
            outside = ALLOW_WITH_NOTE
            notes.append("the prompt was judged harmful, but no spec category was flagged")
    return strictest([*per_category, outside]), per_category, notes
