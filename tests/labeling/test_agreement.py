"""Agreement equals the krippendorff package on the same reliability matrix, in canonical orientation."""

import random

import krippendorff
import numpy as np
import pytest

from labeling import agreement, selectors, services
from labeling.models import Assignment, Judgment, Task
from specloop.services import user_upsert
from tests.labeling.helpers import make_campaign

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers x 12 units, values 1-5.
K2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])


def test_the_published_example_gives_the_published_alphas():
    raters, units = np.nonzero(~np.isnan(K2011))
    values = K2011[raters, units]
    domain = np.arange(1.0, 6.0)
    counts = agreement.value_counts(units, values, domain)
    assert agreement.alpha_of(counts, domain, "nominal")["alpha"] == pytest.approx(0.743, abs=5e-4)
    assert agreement.alpha_of(counts, domain, "ordinal")["alpha"] == pytest.approx(0.815, abs=5e-4)
    assert agreement.alpha_of(counts, domain, "nominal")["n_units"] == 11  # unit 12 has one value


def judge_exactly(campaign, task, rater, *, preference_xy, swapped, **fields):
    """A judgment for ``task`` by ``rater`` whatever the queue order, shown with the given side order."""
    assignment = Assignment.objects.create(
        task=task, campaign=campaign, rater=rater, swapped=swapped, created_at=task.item.created_at,
        expires_at=task.item.created_at.replace(year=2100),
    )
    Task.objects.filter(pk=task.pk).update(n_open=task.n_open + 1)
    shown = -preference_xy if swapped else preference_xy
    return services.judgment_submit(assignment_id=assignment.pk, rater=rater, data={"preference": shown, **fields})


def test_the_published_example_through_the_whole_pipeline(actors):
    """The 2011 matrix as preferences (1..5 -> -2..2) and as the helpful axis, shown in random side order."""
    campaign = make_campaign(actors, n_items=12, overlap=4, raters=())
    raters = [user_upsert(username=f"observer{i}", role_names=["rater"])[0] for i in range(4)]
    tasks = list(Task.objects.filter(campaign=campaign).select_related("item").order_by("id"))
    rng = random.Random(7)
    for r, rater in enumerate(raters):
        for u, task in enumerate(tasks):
            if np.isnan(K2011[r, u]):
                continue
            value = int(K2011[r, u])
            swapped = rng.random() < 0.5
            side_x, side_y = ("b", "a") if swapped else ("a", "b")
            judge_exactly(campaign, task, rater, preference_xy=value - 3, swapped=swapped,
                          axes={"helpful": {side_x: min(value - 1, 2), side_y: 0}})
            task.refresh_from_db()
    result = selectors.campaign_agreement(campaign=campaign)
    assert result["preference"]["alpha"] == pytest.approx(0.815, abs=5e-4)
    assert result["preference"]["n_units"] == 11
    assert result["n_judgments"] == int((~np.isnan(K2011)).sum())


def random_campaign(actors, n_items=25, n_raters=5, seed=3):
    campaign = make_campaign(actors, n_items=n_items, overlap=3, raters=())
    raters = [user_upsert(username=f"r{i}", role_names=["rater"])[0] for i in range(n_raters)]
    services.campaign_raters_add(campaign=campaign, usernames=[r.username for r in raters])
    rng = random.Random(seed)
    while True:
        progressed = False
        for rater in raters:
            assignment = services.next_task_assign(campaign=campaign, rater=rater, rng=rng)
            if assignment is None:
                continue
            progressed = True
            truth = (assignment.task_id % 5) - 2
            pref = max(-2, min(2, truth + rng.choice([-1, 0, 0, 1])))
            tags = {"a": ["violence"] if rng.random() < 0.4 else [], "b": ["weapons"] if rng.random() < 0.3 else []}
            services.judgment_submit(assignment_id=assignment.pk, rater=rater, data={
                "preference": -pref if assignment.swapped else pref,
                "categories": tags, "severity": {"a": rng.randrange(4), "b": rng.randrange(4)},
                "axes": {"helpful": {"a": rng.randrange(3), "b": rng.randrange(3)}},
                "seconds": rng.uniform(5, 60),
            })
        if not progressed:
            return campaign


def reliability_matrix(judgments, value_of, n_sides=1):
    """The textbook (raters x units) matrix, built row by row from the stored judgments."""
    raters = sorted({j.rater_id for j in judgments})
    units = sorted({(j.task_id, side) for j in judgments for side in range(n_sides)})
    matrix = np.full((len(raters), len(units)), np.nan)
    for j in judgments:
        for side in range(n_sides):
            value = value_of(j, side)
            if value is not None:
                matrix[raters.index(j.rater_id), units.index((j.task_id, side))] = value
    return matrix


def test_every_alpha_equals_the_package_on_the_reliability_matrix(actors):
    campaign = random_campaign(actors)
    result = selectors.campaign_agreement(campaign=campaign)
    judgments = list(Judgment.objects.filter(campaign=campaign))
    pref = reliability_matrix(judgments, lambda j, s: j.preference_xy)
    assert result["preference"]["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=pref, value_domain=list(range(-2, 3)), level_of_measurement="ordinal"), abs=1e-6)
    direction = reliability_matrix(judgments, lambda j, s: np.sign(j.preference_xy))
    assert result["preference_direction"]["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=direction, level_of_measurement="nominal"), abs=1e-6)
    severity = reliability_matrix(judgments, lambda j, s: (j.severity_x, j.severity_y)[s], n_sides=2)
    assert result["severity"]["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=severity, value_domain=[0, 1, 2, 3], level_of_measurement="ordinal"), abs=1e-6)
    helpful = reliability_matrix(judgments, lambda j, s: j.axes_xy["helpful"]["xy"[s]], n_sides=2)
    assert result["axes"]["helpful"]["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=helpful, value_domain=[0, 1, 2], level_of_measurement="ordinal"), abs=1e-6)
    for key in ("violence", "weapons"):
        tagged = reliability_matrix(judgments, lambda j, s: float(key in (j.categories_x, j.categories_y)[s]), n_sides=2)
        assert result["categories"][key]["alpha"] == pytest.approx(
            krippendorff.alpha(reliability_data=tagged, level_of_measurement="nominal"), abs=1e-6)


def test_side_order_does_not_change_any_alpha(actors):
    campaign = random_campaign(actors, seed=11)
    before = selectors.campaign_agreement(campaign=campaign)
    # Flip every assignment's display order and rewrite the displayed values to match: canonical is unchanged.
    for judgment in Judgment.objects.filter(campaign=campaign).select_related("assignment"):
        a = judgment.assignment
        a.swapped = not a.swapped
        a.save(update_fields=["swapped"])
        judgment.preference = -judgment.preference
        judgment.save(update_fields=["preference"])
    after = selectors.campaign_agreement(campaign=campaign)
    for field in ("preference", "preference_direction", "severity"):
        assert after[field] == before[field]


def test_the_rater_table_uses_the_leave_one_out_consensus(actors):
    campaign = make_campaign(actors, n_items=2, overlap=3, raters=())
    raters = [user_upsert(username=f"v{i}", role_names=["rater"])[0] for i in range(3)]
    tasks = list(Task.objects.filter(campaign=campaign).select_related("item"))
    # Task 1: x, x, y.  Task 2: x, x, x.  v2 disagrees once.
    for task, votes in zip(tasks, ([-1, -2, 1], [-1, -1, -2])):
        for rater, vote in zip(raters, votes):
            judge_exactly(campaign, task, rater, preference_xy=vote, swapped=False, seconds=10)
            task.refresh_from_db()
    table = {row["username"]: row for row in selectors.campaign_agreement(campaign=campaign)["raters"]}
    assert table["v0"]["agreement"] == 1.0 and table["v1"]["agreement"] == 1.0
    assert table["v2"]["agreement"] == 0.5
    assert table["v2"]["n_judgments"] == 2 and table["v2"]["median_seconds"] == 10.0
    queue = selectors.campaign_agreement(campaign=campaign)["disagreements"]
    assert [row["task"] for row in queue] == [tasks[0].pk, tasks[1].pk]  # split first, then spread
    assert queue[0]["directions"] == {"x": 2, "tie": 0, "y": 1}


def test_gold_accuracy_counts_direction_matches(actors):
    campaign = make_campaign(actors, n_items=2, overlap=1, raters=())
    gold, plain = Task.objects.filter(campaign=campaign).select_related("item").order_by("id")
    Task.objects.filter(pk=gold.pk).update(is_gold=True, gold_preference=-2)
    judge_exactly(campaign, gold, actors.rater, preference_xy=-1, swapped=True)
    judge_exactly(campaign, plain, actors.rater, preference_xy=1, swapped=False)
    row = selectors.campaign_agreement(campaign=campaign)["raters"][0]
    assert (row["gold_accuracy"], row["n_gold"]) == (1.0, 1)


def test_an_empty_campaign_has_no_alphas(actors):
    campaign = make_campaign(actors, n_items=2, raters=())
    result = selectors.campaign_agreement(campaign=campaign)
    assert result["preference"] == {"alpha": None, "n_units": 0, "n_values": 0}
    assert result["raters"] == [] and result["disagreements"] == []
