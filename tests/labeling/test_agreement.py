"""Agreement equals the krippendorff package on the same reliability matrix, in canonical orientation."""

import random

import krippendorff
import numpy as np
import pytest
from django.core.cache import caches
from django.db import connection
from krippendorff.krippendorff import _coincidences

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


def random_reliability_data(rng, domain):
    """(raters × units) with missing values, so some units have one value or none."""
    data = rng.choice(domain, size=(rng.integers(2, 7), rng.integers(2, 40)))
    data[rng.random(data.shape) < 0.35] = np.nan
    return data


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_the_fast_alpha_equals_the_package_on_random_matrices(level):
    """agreement.py borrows the package's private _distances/_distance_metric: if an upgrade moves them the
    import fails, and if it changes what they mean this comparison with krippendorff.alpha fails."""
    rng = np.random.default_rng(2011)
    domain = np.array([0.0, 1.0, 2.0, 4.0, 7.0])  # uneven steps: interval distances are not ordinal ones
    compared = 0
    for _ in range(80):
        data = random_reliability_data(rng, domain)
        raters, units = np.nonzero(~np.isnan(data))
        ours = agreement.alpha_of(agreement.value_counts(units, data[raters, units], domain), domain, level)["alpha"]
        if (np.count_nonzero(~np.isnan(data), axis=0) < 2).all():
            assert ours is None  # no pairable unit: the package refuses
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            theirs = krippendorff.alpha(reliability_data=data, value_domain=domain, level_of_measurement=level)
        if np.isnan(theirs):
            assert ours is None  # a single value in use
        else:
            assert ours == pytest.approx(theirs, abs=1e-6)
            compared += 1
    assert compared > 60


def test_the_coincidence_matrix_equals_the_package():
    counts = np.random.default_rng(7).integers(0, 4, size=(300, 5)).astype(float)  # (units × values)
    counts[:40] = 0
    counts[40:80, 1:] = 0  # units with one value or none are not pairable
    counts[40:60, 0] = 1
    np.testing.assert_allclose(agreement.coincidences(counts), _coincidences(counts), rtol=1e-12)


def test_alpha_is_undefined_without_pairable_units_or_with_one_value_in_use():
    domain = np.arange(3)
    lonely = np.array([[1.0, 0, 0], [0, 0, 1], [0, 0, 0]])  # every unit has at most one value
    assert agreement.alpha_of(lonely, domain, "nominal") == {"alpha": None, "n_units": 0, "n_values": 0}
    unanimous = np.array([[0, 3.0, 0], [0, 2, 0]])
    assert agreement.alpha_of(unanimous, domain, "ordinal") == {"alpha": None, "n_units": 2, "n_values": 5}


@pytest.mark.parametrize("ids", [[7, 5, 5, 9, 12, 7], [10**9, 3, 3, 10**12]])
def test_dense_index_is_unique_with_the_inverse(ids):
    ids = np.array(ids)
    unique, inverse = agreement.dense_index(ids)
    expected_unique, expected_inverse = np.unique(ids, return_inverse=True)
    np.testing.assert_array_equal(unique, expected_unique)
    np.testing.assert_array_equal(inverse, expected_inverse)


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
    caches[selectors.AGREEMENT_CACHE].clear()  # judgments are never edited in the product: recompute here
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


def tag_triples(arrays):
    """(task, side, key) of every tag, sorted: tags come in no particular order."""
    return sorted(zip(arrays.tag_task.tolist(), arrays.tag_side.tolist(), arrays.tag_key.tolist()))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the packed binary load is PostgreSQL's")
def test_the_postgresql_load_gives_the_same_arrays_as_the_generic_load(actors):
    campaign = make_campaign(actors, n_items=3, overlap=3, raters=())
    raters = [user_upsert(username=f"loader{i}", role_names=["rater"])[0] for i in range(3)]
    tasks = list(Task.objects.filter(campaign=campaign).select_related("item").order_by("id"))
    Task.objects.filter(pk=tasks[1].pk).update(is_gold=True, gold_preference=-2)
    # A gold task, absent values (one side's severity, one side's axis, seconds), two tags on one reply,
    # both display orders.
    rows = [
        (0, 0, -2, True, {"categories": {"a": ["violence", "weapons"], "b": []}, "severity": {"a": 3, "b": 0},
                          "axes": {"helpful": {"a": 2, "b": 0}}, "seconds": 12.5}),
        (0, 1, -1, False, {"categories": {"a": ["weapons"], "b": ["violence"]}, "severity": {"a": 1}}),
        (0, 2, 0, False, {"axes": {"helpful": {"b": 1}}, "seconds": 3.0}),
        (1, 0, 2, False, {"categories": {"a": [], "b": ["weapons", "violence"]}, "seconds": 40.0}),
        (1, 1, 1, True, {"severity": {"a": 0, "b": 2}, "axes": {"helpful": {"a": 1, "b": 1}}}),
        (2, 2, -1, True, {"categories": {"a": ["violence"], "b": []}}),
    ]
    for t, r, preference, swapped, fields in rows:
        judge_exactly(campaign, tasks[t], raters[r], preference_xy=preference, swapped=swapped, **fields)
        tasks[t].refresh_from_db()
    # An update writes the row anew, later in the heap, and a later created_at moves it in the campaign-time
    # index: whichever way the judgments are read, they do not come in id order, and the order must not matter.
    first = Judgment.objects.filter(campaign=campaign).order_by("id").first()
    Judgment.objects.filter(pk=first.pk).update(seconds=13.5, created_at=first.created_at.replace(year=2100))
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM labeling_judgment WHERE campaign_id = %s ORDER BY ctid", [campaign.pk])
        heap_order = [row[0] for row in cursor.fetchall()]
        assert heap_order != sorted(heap_order)
        cursor.execute("SHOW parallel_tuple_cost")
        tuple_cost = cursor.fetchone()[0]
        # Read in heap order, as a large campaign is (a sequential scan), not through the (campaign, id) index.
        cursor.execute("SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off")
        fast = agreement.load_arrays_postgresql(campaign.pk, ["helpful"])
        cursor.execute("RESET enable_indexscan; RESET enable_bitmapscan; RESET enable_indexonlyscan")
        cursor.execute("SHOW parallel_tuple_cost")
        assert cursor.fetchone()[0] == tuple_cost  # the planner setting it lowers is put back
    plain = agreement.load_arrays_generic(campaign.pk, ["helpful"])  # in id order
    assert len(fast) == len(plain) == len(rows)
    in_id_order = np.argsort(fast.judgment_id)  # the fast path keeps the heap's order
    assert (in_id_order != np.arange(len(fast))).any()
    for name in ("judgment_id", "task", "rater", "preference", "severity_x", "severity_y", "seconds", "gold"):
        got, expected = getattr(fast, name)[in_id_order], getattr(plain, name)
        np.testing.assert_array_equal(got, expected, err_msg=name)  # nan equals nan here
        assert got.dtype == expected.dtype, name
    for got, expected in zip(fast.axes["helpful"], plain.axes["helpful"]):
        np.testing.assert_array_equal(got[in_id_order], expected)
    assert fast.tag_names == plain.tag_names == ["violence", "weapons"]
    assert tag_triples(fast) == tag_triples(plain) and len(fast.tag_task) == 7
    # And what the rows say, so that the two paths cannot agree on a mistake.
    assert np.isnan(fast.gold).sum() == 4 and set(fast.gold[~np.isnan(fast.gold)]) == {-2.0}
    assert np.isnan(fast.severity_x).sum() == 3 and np.isnan(fast.severity_y).sum() == 4
    assert fast.seconds[fast.judgment_id == first.pk] == 13.5 and np.isnan(fast.seconds).sum() == 3
    assert np.isnan(fast.axes["helpful"][0]).sum() == 4 and np.isnan(fast.axes["helpful"][1]).sum() == 3


def test_categories_the_judgments_never_used_have_no_alpha(actors):
    campaign = random_campaign(actors, n_items=6, seed=5)
    arrays = agreement.load_arrays(campaign.pk, ["helpful"])
    result = agreement.agreement_compute(arrays, axes={"helpful": 3}, categories=["violence", "weapons", "unused"],
                                         severity_levels=4)
    assert result["categories"]["unused"]["alpha"] is None and result["categories"]["unused"]["n_tagged"] == 0
    assert result["categories"]["unused"]["n_units"] == result["categories"]["violence"]["n_units"] > 0


def test_the_order_of_judgments_and_tags_changes_nothing(actors):
    campaign = random_campaign(actors, n_items=12, seed=9)
    arrays = agreement.load_arrays(campaign.pk, ["helpful"])
    rng = np.random.default_rng(1)
    j, g = rng.permutation(len(arrays)), rng.permutation(len(arrays.tag_task))
    shuffled = agreement.JudgmentArrays(
        judgment_id=arrays.judgment_id[j], task=arrays.task[j], rater=arrays.rater[j], preference=arrays.preference[j],
        severity_x=arrays.severity_x[j], severity_y=arrays.severity_y[j], seconds=arrays.seconds[j], gold=arrays.gold[j],
        axes={key: (x[j], y[j]) for key, (x, y) in arrays.axes.items()},
        tag_task=arrays.tag_task[g], tag_side=arrays.tag_side[g], tag_key=arrays.tag_key[g], tag_names=arrays.tag_names,
    )
    settings = {"axes": {"helpful": 3}, "categories": ["violence", "weapons"], "severity_levels": 4}
    assert agreement.agreement_compute(shuffled, **settings) == agreement.agreement_compute(arrays, **settings)


def test_agreement_is_computed_once_per_state_of_the_judgments(actors, monkeypatch):
    from tests.labeling.helpers import judge

    campaign = make_campaign(actors, n_items=4, overlap=2)
    for rater in (actors.rater, actors.rater2):
        judge(campaign, rater, prefer_x=-2, severity={"a": 0, "b": 1})
    computed = []
    real = agreement.agreement_compute
    monkeypatch.setattr(agreement, "agreement_compute", lambda *a, **k: computed.append(1) or real(*a, **k))
    first = selectors.campaign_agreement(campaign=campaign)
    again = selectors.campaign_agreement(campaign=campaign)
    assert again == first and len(computed) == 1
    judge(campaign, actors.rater, prefer_x=2, severity={"a": 1, "b": 0})
    after = selectors.campaign_agreement(campaign=campaign)
    assert len(computed) == 2
    assert sum(r["n_judgments"] for r in after["raters"]) == sum(r["n_judgments"] for r in first["raters"]) + 1
