"""Building blocks for labeling tests: a published spec, a campaign, items, judgments."""

import json

from labeling import services
from labeling.models import Campaign
from taxonomy import services as spec_services
from tests.conftest import small_document


def published_version(user, **overrides):
    version = spec_services.spec_create(user=user, name="Labeling spec", document=small_document(**overrides))
    return spec_services.spec_publish(spec=version.spec, user=user)


def make_campaign(actors, *, overlap=2, n_items=4, replies=2, raters=("rater", "rater2"), **kwargs) -> Campaign:
    version = published_version(actors.policy)
    campaign = services.campaign_create(user=actors.admin, name="Pairs", spec_version=version, overlap=overlap, **kwargs)
    if n_items:
        services.items_import(campaign=campaign, text=jsonl(n_items, replies), fmt="jsonl")
    if raters:
        services.campaign_raters_add(campaign=campaign, usernames=[getattr(actors, r).username for r in raters])
    return campaign


def jsonl(n: int, replies: int = 2, prefix: str = "prompt") -> str:
    return "\n".join(
        json.dumps({"prompt": f"{prefix} {i}", "responses": [{"text": f"reply {i}.{r}", "model": f"m{r}"} for r in range(replies)]})
        for i in range(n)
    )


def judge(campaign, rater, *, prefer_x: int | None = None, shown: int | None = None, **extra):
    """Take the next task and judge it. ``prefer_x``: canonical preference (negative = x better)."""
    assignment = services.next_task_assign(campaign=campaign, rater=rater)
    if assignment is None:
        return None
    if shown is None:
        shown = -prefer_x if assignment.swapped else prefer_x
    data = {"preference": shown, **extra}
    return services.judgment_submit(assignment_id=assignment.pk, rater=rater, data=data)
