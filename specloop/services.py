"""Users and roles."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from specloop import roles
from specloop.errors import ValidationFailed

User = get_user_model()


@transaction.atomic
def user_upsert(*, username: str, role_names: list[str], password: str | None = None) -> tuple[object, str, bool]:
    """Create or update a user with exactly these SpecLoop roles; returns (user, API token, created)."""
    username = username.strip()
    if not username:
        raise ValidationFailed.one("username", "must not be empty")
    unknown = [r for r in role_names if r not in roles.ROLES]
    if unknown or not role_names:
        raise ValidationFailed.one("role", f"unknown role {', '.join(unknown) or '(none)'}; one of {', '.join(roles.ROLES)}")
    user, created = User.objects.get_or_create(username=username)
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()  # API only until a password is set
    user.is_staff = roles.ADMIN in role_names
    user.save()
    user.groups.remove(*Group.objects.filter(name__in=roles.ROLES))
    # The role groups come with the first migration; get_or_create also covers a database emptied since.
    user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in role_names))
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key, created
