"""A prompt shown as its turns, and an empty reply marked, on the rater page and in the disagreement queue
(Django test client; the browser checks are in test_conversation_browser.py)."""

import json
import re
from html import unescape

import pytest
from django.urls import reverse

from labeling import services
from labeling.models import Item, Task
from tests.labeling.helpers import judge, published_version
from tests.pages import XSS

EMPTY_MARK = "(empty reply — the model said nothing)"
DIALOGUE = (f"Human: My cat knocked a glass over. {XSS}\n\nAssistant: Oh no! Is anyone hurt?\n\n"
            "Human: No, but how do I get the shards out of the rug?\n\nAssistant: Use a torch held low.\n\n"
            "Human: Is 2 < 3 & is <b>tape</b> safe for the last bits?")
TURN = re.compile(r'<(?:li|div) class="turn turn-(\w+)( turn-last)?"><span class="speaker">(\w+).*?</span>'
                  r'<div class="turn-text">(.*?)</div>', re.S)


def turns_of(html: str) -> list[tuple[str, bool, str]]:
    """(speaker, is it the last turn, text as a reader sees it) of each turn on the page, in order."""
    found = [(speaker, bool(last), unescape(text)) for css, last, speaker, text in TURN.findall(html)]
    assert all(css == speaker.lower() for css, _, speaker, _ in TURN.findall(html))
    return found


@pytest.fixture
def campaign(actors):
    """One item, its prompt a five-turn dialogue with markup in it, its first reply empty."""
    version = published_version(actors.policy)
    campaign = services.campaign_create(user=actors.admin, name="Talks", spec_version=version, overlap=2)
    row = {"prompt": DIALOGUE, "response_a": "Vacuum slowly, then press bread on the spot.", "response_b": "Tape."}
    services.items_import(campaign=campaign, text=json.dumps(row), fmt="jsonl")
    item = Item.objects.get(campaign=campaign)
    item.responses[0]["text"] = ""  # imported with keep-empty, or from before imports refused it
    item.save(update_fields=["responses"])
    services.campaign_raters_add(campaign=campaign, usernames=[actors.rater.username, actors.rater2.username])
    return campaign


EXPECTED_TURNS = [
    ("Human", False, f"My cat knocked a glass over. {XSS}"),
    ("Assistant", False, "Oh no! Is anyone hurt?"),
    ("Human", False, "No, but how do I get the shards out of the rug?"),
    ("Assistant", False, "Use a torch held low."),
    ("Human", True, "Is 2 < 3 & is <b>tape</b> safe for the last bits?"),
]


def test_the_rater_page_shows_each_turn_with_its_speaker_the_last_one_marked_and_the_text_escaped(client, actors, campaign):
    client.force_login(actors.rater)

    html = client.get(f"/campaigns/{campaign.pk}/rate/").content.decode()

    assert turns_of(html) == EXPECTED_TURNS
    assert XSS not in html and "<b>tape</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Conversation <span class=\"turn-count\">· 5 turns</span>" in html
    assert "↑</span> 4 earlier turns above" in html
    assert html.count('<span class="answers" title="Both replies answer this turn">last turn</span>') == 1


def test_the_rater_page_marks_an_empty_reply_and_shows_the_other_as_written(client, actors, campaign):
    client.force_login(actors.rater)

    html = client.get(f"/campaigns/{campaign.pk}/rate/").content.decode()

    replies = re.findall(r'<div class="text reply-text( is-empty)?"[^>]*>(.*?)</div>', html, re.S)
    assert sorted(replies) == [("", "Tape."),
                               (" is-empty", f'<span class="empty-reply">{EMPTY_MARK}</span>')]


def test_a_plain_prompt_is_one_human_turn_without_a_hint(client, actors, campaign):
    Item.objects.filter(campaign=campaign).update(prompt="What is the capital of France?")
    client.force_login(actors.rater)

    html = client.get(f"/campaigns/{campaign.pk}/rate/").content.decode()

    assert turns_of(html) == [("Human", True, "What is the capital of France?")]
    assert '<h2 id="prompt-title">Prompt</h2>' in html
    assert "earlier turn" not in html and 'class="answers"' not in html


def test_the_next_task_fragment_shows_its_conversation_too(client, actors, campaign):
    row = {"prompt": "Human: First\n\nAssistant: Second\n\nHuman: Third?", "response_a": "Yes.", "response_b": "No."}
    services.items_import(campaign=campaign, text=json.dumps(row), fmt="jsonl")
    short = [("Human", False, "First"), ("Assistant", False, "Second"), ("Human", True, "Third?")]
    client.force_login(actors.rater)
    first = turns_of(client.get(f"/campaigns/{campaign.pk}/rate/").content.decode())
    assignment = campaign.assignments.get(rater=actors.rater, status="open")

    html = client.post(f"/assignments/{assignment.pk}/judge/", {"preference": "0"}, HTTP_HX_REQUEST="true").content.decode()

    assert html.startswith('<div id="task"')
    assert sorted([first, turns_of(html)]) == sorted([EXPECTED_TURNS, short])  # each task with its own turns


def test_the_disagreement_queue_shows_the_turns_and_marks_the_empty_reply(client, actors, campaign):
    judge(campaign, actors.rater, prefer_x=-2)
    judge(campaign, actors.rater2, prefer_x=2)
    task = Task.objects.get(campaign=campaign)
    client.force_login(actors.admin)

    html = client.get(reverse("campaigns:agreement", args=[campaign.pk])).content.decode()
    form_page = client.get(reverse("campaigns:adjudicate", args=[campaign.pk, task.pk])).content.decode()

    item = re.search(rf'<article class="queue-item" id="task-{task.pk}">(.*?)</article>', html, re.S).group(1)
    assert turns_of(item) == EXPECTED_TURNS
    assert XSS not in html and "Conversation · 5 turns" in item and "4 earlier turns above" in item
    empty_side = "X" if task.x_index == 0 else "Y"  # the item's first reply is the empty one
    assert re.search(rf'Reply {empty_side}</div><div class="reply-text"><span class="empty-reply">{re.escape(EMPTY_MARK)}</span>',
                     item)
    assert item.count("empty-reply") == 1
    assert turns_of(form_page) == EXPECTED_TURNS and EMPTY_MARK in form_page  # the page without JavaScript
    assert "css/conversation.css" in html and "css/conversation.css" in form_page
