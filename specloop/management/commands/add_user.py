from django.core.management.base import BaseCommand, CommandError

from specloop import roles
from specloop.errors import ApplicationError
from specloop.services import user_upsert


class Command(BaseCommand):
    help = "Create or update a user with a role; prints the user's API token on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role", action="append", required=True, choices=roles.ROLES,
            help="rater, policy or admin; repeat for several roles",
        )
        parser.add_argument("--password", help="set the password (without it a new user can use the API only)")

    def handle(self, *args, username: str, role: list[str], password: str | None, **options):
        try:
            user, token, created = user_upsert(username=username, role_names=role, password=password)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {user.username} with role {', '.join(role)}")
        self.stdout.write(token)
