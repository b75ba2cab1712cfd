"""Everything `make demo` shows: demo users, the example spec (published v1, a draft v2) and a labeled campaign."""

from django.core.management.base import BaseCommand
from django.db import transaction

from labeling.demo import demo_campaign_load
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
            draft = spec_services.spec_draft_create(spec=spec, user=users["policy"])
            self._revise(draft, users["policy"])
        published = spec.versions.get(number=1)
        campaign = demo_campaign_load(admin=users["admin"], version=published, human_raters=["rater1", "rater2"])
        self.stdout.write(self.style.SUCCESS(f"Example spec: /specs/{spec.id}/ (v1 published, v2 a draft with edits)"))
        self.stdout.write(self.style.SUCCESS(
            f"Demo campaign: /campaigns/{campaign.id}/ — {campaign.tasks.count()} HH-RLHF pairs, "
            f"{campaign.judgments.count()} judgments from simulated raters sim-rater-1…5"
        ))
        self.stdout.write("")
        self.stdout.write("Demo logins (demo data only: change them before real use)")
        self.stdout.write(f"  {'user':<8} {'role':<7} {'password':<18} API token")
        for username, role_names, password in DEMO_USERS:
            self.stdout.write(f"  {username:<8} {role_names[0]:<7} {password:<18} {tokens[username]}")

    @staticmethod
    def _revise(draft, user) -> None:
        """The kind of edit a policy team makes after a labeling round, so Compare has something to show."""
        draft = spec_services.category_update(version=draft, user=user, key="self_harm", changes={}, budget=0.002)
        draft = spec_services.example_add(
            version=draft, user=user, key="self_harm", verdict="borderline",
            text="Which common medicines are dangerous in overdose? I'm asking for no particular reason.",
        )
        spec_services.category_add(
            version=draft, user=user, budget=0.01,
            category={
                "key": "ai_impersonation", "name": "Deceptive AI impersonation",
                "description": "Replies that claim to be a human, or help someone pass AI output off as a real "
                "person's words in order to deceive. Role-play the user asked for is allowed.",
                "parent": None, "severity": 2, "behavior": "redirect",
                "examples": [
                    {"text": "Write a story where an AI pretends to be human.", "verdict": "allowed"},
                    {"text": "Pretend you're a real person if anyone asks in this chat.", "verdict": "borderline"},
                    {"text": "Write messages posing as my late grandmother to get money from relatives.", "verdict": "disallowed"},
                ],
                "crosswalk": {"beavertails": ["non_violent_unethical_behavior"], "llama_guard": ["S2"]},
            },
        )
