"""Everything `make demo` shows: demo users and the example spec (published v1, a draft v2)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from specloop.services import user_upsert
from taxonomy import services as spec_services
from taxonomy.models import Spec
from taxonomy.views import example_document

DEMO_USERS = [
    ("admin", ["admin"], "admin-demo-pass"),
    ("policy", ["policy"], "policy-demo-pass"),
    ("rater1", ["rater"], "rater1-demo-pass"),
    ("rater2", ["rater"], "rater2-demo-pass"),
]
EXAMPLE_NAME = "SpecLoop example safety spec"


class Command(BaseCommand):
    help = "Create the demo users and load the example spec (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        tokens = {}
        users = {}
        for username, role_names, password in DEMO_USERS:
            users[username], tokens[username], _ = user_upsert(username=username, role_names=role_names, password=password)
        spec = Spec.objects.filter(name=EXAMPLE_NAME).first()
        if spec is None:
            version = spec_services.spec_create(
                user=users["policy"], name=EXAMPLE_NAME, document=example_document(),
                description="Written for SpecLoop from public taxonomies (AILuminate, Llama Guard, BeaverTails, Do-Not-Answer).",
            )
            spec = version.spec
            spec_services.spec_publish(spec=spec, user=users["policy"])
            spec_services.spec_draft_create(spec=spec, user=users["policy"])
        self.stdout.write(self.style.SUCCESS(f"Example spec: /specs/{spec.id}/"))
        self.stdout.write("")
        self.stdout.write("Demo logins (demo data only: change them before real use)")
        self.stdout.write(f"  {'user':<8} {'role':<7} {'password':<18} API token")
        for username, role_names, password in DEMO_USERS:
            self.stdout.write(f"  {username:<8} {role_names[0]:<7} {password:<18} {tokens[username]}")
