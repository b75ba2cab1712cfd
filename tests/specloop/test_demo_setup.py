"""`manage.py demo_setup` (run by `make demo`) loads the example and prints working logins; twice is safe."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from taxonomy.models import Spec, SpecVersion


def run_demo_setup() -> str:
    out = StringIO()
    call_command("demo_setup", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_demo_setup_loads_the_example_spec_and_prints_working_logins(client):
    output = run_demo_setup()
    spec = Spec.objects.get()
    assert [(v.number, v.status) for v in SpecVersion.objects.filter(spec=spec)] == [(1, "published"), (2, "draft")]
    assert authenticate(username="policy", password="policy-demo-pass") is not None
    token_line = next(line for line in output.splitlines() if line.strip().startswith("policy "))
    token = token_line.split()[-1]
    assert client.get(f"/api/v1/specs/{spec.id}/diff/", HTTP_AUTHORIZATION=f"Token {token}").json()["n_changes"] > 0


@pytest.mark.django_db
def test_demo_setup_twice_changes_nothing():
    run_demo_setup()
    run_demo_setup()
    assert Spec.objects.count() == 1 and SpecVersion.objects.count() == 2
