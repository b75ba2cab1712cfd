"""Reads of safety specs. Visibility: admins see every spec, policy users the specs they edit."""

from typing import Any

from django.db.models import Count, Max, QuerySet
from django.http import Http404

from specloop import roles

from .document import diff_documents
from .models import Spec, SpecChange, SpecVersion


def spec_list(*, user) -> QuerySet[Spec]:
    qs = Spec.objects.all()
    if not roles.has_role(user, roles.ADMIN):
        qs = qs.filter(editors=user) if roles.has_role(user, roles.POLICY) else qs.none()
    return qs.annotate(n_versions=Count("versions", distinct=True), latest_number=Max("versions__number"))


def spec_get(*, user, spec_id: int) -> Spec:
    """The spec if ``user`` may see it; otherwise 404, so ids leak nothing."""
    try:
        return spec_list(user=user).get(pk=spec_id)
    except (Spec.DoesNotExist, ValueError, TypeError):
        raise Http404("No such spec.") from None


def spec_version_get(*, spec: Spec, number: int) -> SpecVersion:
    try:
        version = spec.versions.select_related("created_by", "updated_by", "published_by").get(number=number)
    except SpecVersion.DoesNotExist:
        raise Http404(f"“{spec.name}” has no version {number}.") from None
    version.spec = spec
    return version


def spec_version_latest(*, spec: Spec) -> SpecVersion:
    version = spec.versions.order_by("-number").select_related("created_by", "updated_by", "published_by").first()
    version.spec = spec
    return version


def spec_versions(*, spec: Spec) -> list[SpecVersion]:
    """Every version of ``spec``, oldest first; ``based_on`` is linked within the list, not loaded per version."""
    versions = list(spec.versions.select_related("created_by", "published_by").order_by("number"))
    by_id = {version.pk: version for version in versions}
    for version in versions:
        version.spec = spec
        if version.based_on_id in by_id:
            version.based_on = by_id[version.based_on_id]
    return versions


def spec_version_diff(*, spec: Spec, from_number: int, to_number: int) -> dict[str, Any]:
    a = spec_version_get(spec=spec, number=from_number)
    b = spec_version_get(spec=spec, number=to_number)
    return {"from": a.number, "to": b.number, **diff_documents(a.document, b.document)}


def spec_changes(*, spec: Spec, version: SpecVersion | None = None) -> QuerySet[SpecChange]:
    qs = SpecChange.objects.filter(version__spec=spec).select_related("user", "version")
    if version is not None:
        qs = qs.filter(version=version)
    return qs


def spec_version_published_list(*, user) -> list[SpecVersion]:
    """Published versions of the specs ``user`` may see, newest first within each spec (no documents)."""
    visible = spec_list(user=user).values("pk")
    return list(
        SpecVersion.objects.filter(spec__in=visible, status=SpecVersion.PUBLISHED).defer("document")
        .select_related("spec").order_by("spec__name", "spec_id", "-number")
    )
