"""Reads about users and roles."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef

from specloop.errors import ValidationFailed

User = get_user_model()


def users_with_role(*, usernames: Any, role: str) -> list:
    """The named users, each of whom must hold ``role``; every unknown or unfit name is reported (one query)."""
    if not isinstance(usernames, list) or not usernames or not all(isinstance(u, str) for u in usernames):
        raise ValidationFailed.one("usernames", "give a list of usernames")
    holds = User.groups.through.objects.filter(user_id=OuterRef("pk"), group__name=role)
    found = {u.username: u for u in User.objects.filter(username__in=usernames).annotate(fits=Exists(holds))}
    errors = []
    for i, name in enumerate(usernames):
        if name not in found:
            errors.append({"field": f"usernames[{i}]", "message": f"no user named {name!r}"})
        elif not (found[name].fits or (role == "admin" and found[name].is_superuser)):
            errors.append({"field": f"usernames[{i}]", "message": f"{name!r} does not have the {role} role"})
    if errors:
        raise ValidationFailed(errors)
    return [found[name] for name in dict.fromkeys(usernames)]
