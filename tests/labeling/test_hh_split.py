"""One HH-RLHF split: an HH line trains on the same prompt and replies however it reached the trainer."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from labeling import services
from labeling.pair_imports import export_snapshot_import
from rewardmodels.ml import data as ml_data
from rewardmodels.ml import hh
from tests.labeling.helpers import judge, make_campaign

pytestmark = pytest.mark.django_db

HH_LINE = {
    "chosen": "\n\nHuman: My neighbour's dog barks all night.\n\nAssistant: That sounds exhausting.\n\n"
              "Human: How do I make it stop?\n\nAssistant: Talk to your neighbour first; a calm note works too.",
    "rejected": "\n\nHuman: My neighbour's dog barks all night.\n\nAssistant: That sounds exhausting.\n\n"
                "Human: How do I make it stop?\n\nAssistant: Poison it.",
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def trained_on(relative_path: str) -> tuple[str, str, str]:
    pairs, _ = ml_data.load_pairs([Path(settings.MEDIA_ROOT) / relative_path])
    assert len(pairs) == 1
    return pairs[0].prompt, pairs[0].first, pairs[0].second


def test_an_hh_line_gives_the_same_pair_through_a_campaign_export_a_pairs_import_and_the_direct_ml_split(actors):
    direct = ml_data.split_hh_dialogue(HH_LINE["chosen"], HH_LINE["rejected"])  # what the benches train on
    assert direct[0].endswith("How do I make it stop?\n\nAssistant:")

    campaign = make_campaign(actors, n_items=0, overlap=1, raters=("rater",))
    services.items_import(campaign=campaign, text=json.dumps(HH_LINE), fmt="hh")
    shown = actors.api("rater").get(f"/api/v1/campaigns/{campaign.pk}/next-task/").json()
    assert shown["prompt"] == direct[0]  # the rater reads the prompt the model is trained on
    assert judge(campaign, actors.rater, prefer_x=-2).assignment_id == shown["assignment"]  # x: the chosen reply
    export = services.export_snapshot_create(campaign=campaign, user=actors.admin, filters={})
    assert trained_on(export.path) == direct

    snapshot = export_snapshot_import(user=actors.admin, text=json.dumps(HH_LINE), fmt="hh")
    assert trained_on(snapshot.path) == direct


def test_training_data_uses_the_one_split_the_imports_use():
    assert ml_data.split_hh_dialogue is hh.split_hh_dialogue
