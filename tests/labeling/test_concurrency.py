"""Twenty raters racing through a campaign over HTTP, on whichever database the suite runs (both in CI).

The embedded default (SQLite) must serve a small team as PostgreSQL does: no 5xx, no task past its
overlap, every acknowledged judgment stored, no rater twice on a task.
"""

import http.client
import json
import random
import threading
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from django.db.models import Count

from labeling import services
from labeling.models import Assignment, Judgment, Task
from specloop.roles import ROLES
from specloop.services import user_upsert

RATERS = 20
OVERLAP = 3
ITEMS = 30


@pytest.fixture
def campaign(transactional_db):
    for name in ROLES:  # a transactional test's flush drops the groups the data migration made
        Group.objects.get_or_create(name=name)
    from tests.conftest import Actors
    from tests.labeling.helpers import make_campaign

    actors = Actors()
    return make_campaign(actors, n_items=ITEMS, overlap=OVERLAP, raters=())


class Rater:
    """One rater's HTTP session: next task, then a judgment (or now and then a skip), until none is left."""

    def __init__(self, url: str, token: str, campaign_id: int, seed: int):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.campaign_id = campaign_id
        self.rng = random.Random(seed)
        self.acknowledged: list[int] = []
        self.failures: list[str] = []

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        if response.status >= 500:
            self.failures.append(f"{method} {path}: {response.status} {raw[:200]!r}")
        return response.status, (json.loads(raw) if raw else None)

    def run(self, barrier: threading.Barrier, *, skips: bool = True) -> None:
        try:
            barrier.wait()
            for _ in range(ITEMS * 2):  # bounded: each round either judges, skips or ends
                status, task = self.call("GET", f"/api/v1/campaigns/{self.campaign_id}/next-task/")
                if status == 204:
                    return
                if status != 200:
                    self.failures.append(f"next-task answered {status}: {task}")
                    return
                if skips and self.rng.random() < 0.1:
                    self.call("POST", f"/api/v1/assignments/{task['assignment']}/skip/", {"reason": "unsure"})
                    continue
                status, judgment = self.call(
                    "POST", f"/api/v1/assignments/{task['assignment']}/judgment/",
                    {"preference": self.rng.choice([-2, -1, 0, 1, 2])},
                )
                if status == 201:
                    self.acknowledged.append(judgment["id"])
                elif status != 409:
                    self.failures.append(f"judgment answered {status}: {judgment}")
        except Exception as exc:  # surfaced by the test
            self.failures.append(repr(exc))


def test_twenty_raters_racing_over_http_get_no_5xx_and_lose_nothing(live_server, campaign):
    users = [user_upsert(username=f"racer{i}", role_names=["rater"]) for i in range(RATERS)]
    services.campaign_raters_add(campaign=campaign, usernames=[user.username for user, _, _ in users])
    raters = [Rater(live_server.url, token, campaign.pk, seed) for seed, (_, token, _) in enumerate(users)]
    barrier = threading.Barrier(RATERS)
    threads = [threading.Thread(target=r.run, args=(barrier,)) for r in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not any(thread.is_alive() for thread in threads), "a rater hung"
    assert [f for r in raters for f in r.failures] == []
    # A rater stops when nothing is left for them; a task skipped late may still need judgments: drain.
    for rater in raters:
        rater.run(threading.Barrier(1), skips=False)
    assert [f for r in raters for f in r.failures] == []
    acknowledged = sorted(j for r in raters for j in r.acknowledged)
    assert acknowledged == sorted(Judgment.objects.values_list("id", flat=True))
    counts = dict(Judgment.objects.values("task").annotate(n=Count("id")).values_list("task", "n"))
    tasks = list(Task.objects.filter(campaign=campaign))
    assert all(t.n_judgments == counts.get(t.pk, 0) <= OVERLAP and t.n_open == 0 for t in tasks)
    assert sum(counts.values()) == len(tasks) * OVERLAP
    pairs = list(Judgment.objects.values_list("task", "rater"))
    assert len(pairs) == len(set(pairs))
    assert not Assignment.objects.filter(status=Assignment.OPEN).exists()
