"""Writes to safety specs. Every write validates the whole document and records who changed what."""

import copy
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from specloop import roles
from specloop.errors import ApplicationError, Conflict, ValidationFailed
from specloop.selectors import users_with_role

from .document import diff_documents, empty_document, normalize_document
from .models import Spec, SpecChange, SpecVersion


def _record(*, version: SpecVersion, user, action: str, summary: str, detail: dict | None = None) -> SpecChange:
    return SpecChange.objects.create(version=version, user=user, action=action, summary=summary[:500], detail=detail or {})


def _change_detail(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {"diff": diff_documents(before, after)}


@transaction.atomic
def spec_create(*, user: AbstractBaseUser, name: str, document: Any, description: str = "") -> SpecVersion:
    """A new spec whose version 1 is a draft holding ``document`` (validated; nothing saved if bad)."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.one("name", "a spec needs a name")
    if len(name) > 200:
        raise ValidationFailed.one("name", "at most 200 characters")
    doc = normalize_document(empty_document() if document is None else document)
    spec = Spec.objects.create(name=name, description=description, created_by=user)
    spec.editors.add(user)
    version = SpecVersion.objects.create(
        spec=spec, number=1, status=SpecVersion.DRAFT, document=doc, created_by=user, updated_by=user
    )
    _record(
        version=version, user=user, action="spec.create",
        summary=f"Created spec “{name}” with {len(doc['categories'])} categories",
    )
    return version


def _locked_draft(version: SpecVersion) -> SpecVersion:
    locked = SpecVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status != SpecVersion.DRAFT:
        raise Conflict(
            f"v{locked.number} of “{version.spec.name}” is published and cannot be changed; "
            "start a new draft to edit it.",
            detail={"version": locked.number, "status": locked.status},
        )
    return locked


@transaction.atomic
def spec_version_edit(
    *, version: SpecVersion, user, action: str, summary: str, edit: Callable[[dict[str, Any]], None]
) -> SpecVersion:
    """Apply ``edit`` to a copy of the draft's document, validate it whole, save, record the change."""
    locked = _locked_draft(version)
    before = locked.document
    doc = copy.deepcopy(before)
    edit(doc)
    after = normalize_document(doc)
    if after == before:
        return locked
    locked.document = after
    locked.updated_by = user
    locked.save(update_fields=["document", "updated_by", "updated_at"])
    _record(version=locked, user=user, action=action, summary=summary, detail=_change_detail(before, after))
    return locked


def spec_version_replace_document(*, version: SpecVersion, user, document: Any) -> SpecVersion:
    """Replace a draft's whole document (an upload or an API PUT)."""

    def edit(doc: dict[str, Any]) -> None:
        if not isinstance(document, dict):
            normalize_document(document)  # raises with the right message
        doc.clear()
        doc.update(document)

    return spec_version_edit(
        version=version, user=user, action="document.replace", summary="Replaced the whole document", edit=edit
    )


# --- categories ----------------------------------------------------------------------------------


def _find(doc: dict[str, Any], key: str) -> dict[str, Any]:
    for category in doc["categories"]:
        if category["key"] == key:
            return category
    raise ApplicationError(f"no category {key!r} in this version", detail={"field": "key"})


def _apply_budget(doc: dict[str, Any], key: str, budget: float | None) -> None:
    if budget is None:
        doc["budgets"].pop(key, None)
    else:
        doc["budgets"][key] = budget


def category_add(*, version: SpecVersion, user, category: dict[str, Any], budget: float | None = None) -> SpecVersion:
    def edit(doc: dict[str, Any]) -> None:
        doc["categories"].append(dict(category))
        _apply_budget(doc, category.get("key"), budget)

    return spec_version_edit(
        version=version, user=user, action="category.add",
        summary=f"Added category {category.get('key')!r}", edit=edit,
    )


_UNSET: Any = object()


def category_update(
    *, version: SpecVersion, user, key: str, changes: dict[str, Any], budget: float | None = _UNSET
) -> SpecVersion:
    """Change fields of one category; a new key is carried to its children and its budget."""

    def edit(doc: dict[str, Any]) -> None:
        category = _find(doc, key)
        category.update(changes)
        new_key = category.get("key")
        if new_key != key:
            for other in doc["categories"]:
                if other is not category and other.get("parent") == key:
                    other["parent"] = new_key
            if key in doc["budgets"]:
                doc["budgets"][new_key] = doc["budgets"].pop(key)
        if budget is not _UNSET:
            _apply_budget(doc, new_key, budget)

    return spec_version_edit(
        version=version, user=user, action="category.update", summary=f"Edited category {key!r}", edit=edit
    )


def category_delete(*, version: SpecVersion, user, key: str) -> SpecVersion:
    def edit(doc: dict[str, Any]) -> None:
        category = _find(doc, key)
        children = [c["key"] for c in doc["categories"] if c.get("parent") == key]
        if children:
            raise ValidationFailed.one(
                "key", f"{key!r} has sub-categories ({', '.join(children)}): move or delete them first"
            )
        doc["categories"].remove(category)
        doc["budgets"].pop(key, None)

    return spec_version_edit(
        version=version, user=user, action="category.delete", summary=f"Deleted category {key!r}", edit=edit
    )


def category_move(*, version: SpecVersion, user, key: str, direction: str) -> SpecVersion:
    """Move a category one place up or down among its siblings (same parent)."""
    if direction not in ("up", "down"):
        raise ValidationFailed.one("direction", "must be 'up' or 'down'")

    def edit(doc: dict[str, Any]) -> None:
        category = _find(doc, key)
        cats = doc["categories"]
        siblings = [i for i, c in enumerate(cats) if c.get("parent") == category.get("parent")]
        pos = siblings.index(cats.index(category))
        target = pos - 1 if direction == "up" else pos + 1
        if 0 <= target < len(siblings):
            i, j = siblings[pos], siblings[target]
            cats[i], cats[j] = cats[j], cats[i]

    return spec_version_edit(
        version=version, user=user, action="category.move", summary=f"Moved category {key!r} {direction}", edit=edit
    )


# --- examples ------------------------------------------------------------------------------------


def _example_at(category: dict[str, Any], index: int) -> dict[str, Any]:
    examples = category.setdefault("examples", [])
    if not 0 <= index < len(examples):
        raise ApplicationError(f"category {category['key']!r} has no example {index + 1}", detail={"field": "index"})
    return examples[index]


def example_add(*, version: SpecVersion, user, key: str, text: str, verdict: str) -> SpecVersion:
    def edit(doc: dict[str, Any]) -> None:
        _find(doc, key).setdefault("examples", []).append({"text": text, "verdict": verdict})

    return spec_version_edit(
        version=version, user=user, action="example.add", summary=f"Added a {verdict} example to {key!r}", edit=edit
    )


def example_update(*, version: SpecVersion, user, key: str, index: int, text: str, verdict: str) -> SpecVersion:
    def edit(doc: dict[str, Any]) -> None:
        _example_at(_find(doc, key), index).update(text=text, verdict=verdict)

    return spec_version_edit(
        version=version, user=user, action="example.update", summary=f"Edited example {index + 1} of {key!r}", edit=edit
    )


def example_delete(*, version: SpecVersion, user, key: str, index: int) -> SpecVersion:
    def edit(doc: dict[str, Any]) -> None:
        category = _find(doc, key)
        category["examples"].remove(_example_at(category, index))

    return spec_version_edit(
        version=version, user=user, action="example.delete", summary=f"Deleted example {index + 1} of {key!r}", edit=edit
    )


def example_move(*, version: SpecVersion, user, key: str, index: int, direction: str) -> SpecVersion:
    if direction not in ("up", "down"):
        raise ValidationFailed.one("direction", "must be 'up' or 'down'")

    def edit(doc: dict[str, Any]) -> None:
        category = _find(doc, key)
        _example_at(category, index)
        examples = category["examples"]
        target = index - 1 if direction == "up" else index + 1
        if 0 <= target < len(examples):
            examples[index], examples[target] = examples[target], examples[index]

    return spec_version_edit(
        version=version, user=user, action="example.move",
        summary=f"Moved example {index + 1} of {key!r} {direction}", edit=edit,
    )


def spec_version_set_list(*, version: SpecVersion, user, section: str, items: list[str]) -> SpecVersion:
    """Replace the goals or the principles of a draft."""
    if section not in ("goals", "principles"):
        raise ValidationFailed.one("section", "must be 'goals' or 'principles'")

    def edit(doc: dict[str, Any]) -> None:
        doc[section] = items

    return spec_version_edit(
        version=version, user=user, action=f"{section}.set", summary=f"Edited the {section}", edit=edit
    )


# --- lifecycle -----------------------------------------------------------------------------------


@transaction.atomic
def spec_publish(*, spec: Spec, user) -> SpecVersion:
    """Freeze the spec's draft forever. Campaigns and training jobs point at published versions."""
    draft = SpecVersion.objects.select_for_update().filter(spec=spec, status=SpecVersion.DRAFT).first()
    if draft is None:
        latest = spec.versions.order_by("-number").first()
        raise Conflict(
            f"“{spec.name}” has no draft to publish (v{latest.number} is already published); start a new draft first.",
            detail={"version": latest.number},
        )
    if not draft.document["categories"]:
        raise ValidationFailed.one("categories", "a spec needs at least one category before it can be published")
    draft.status = SpecVersion.PUBLISHED
    draft.published_by = user
    draft.published_at = timezone.now()
    draft.updated_by = user
    draft.save(update_fields=["status", "published_by", "published_at", "updated_by", "updated_at"])
    _record(version=draft, user=user, action="version.publish", summary=f"Published v{draft.number}")
    return draft


@transaction.atomic
def spec_draft_create(*, spec: Spec, user, document: Any = None) -> SpecVersion:
    """A new draft: a copy of the latest version, or ``document`` when given (an uploaded revision)."""
    Spec.objects.select_for_update().get(pk=spec.pk)
    latest = spec.versions.order_by("-number").first()
    if latest.status == SpecVersion.DRAFT:
        raise Conflict(
            f"v{latest.number} of “{spec.name}” is already a draft; edit it or publish it first.",
            detail={"version": latest.number},
        )
    doc = normalize_document(copy.deepcopy(latest.document) if document is None else document)
    draft = SpecVersion.objects.create(
        spec=spec, number=latest.number + 1, status=SpecVersion.DRAFT, document=doc,
        based_on=latest, created_by=user, updated_by=user,
    )
    summary = f"Started v{draft.number} from v{latest.number}"
    detail = {}
    if document is not None:
        summary += " with an uploaded document"
        detail = _change_detail(latest.document, doc)
    _record(version=draft, user=user, action="version.create", summary=summary, detail=detail)
    return draft


@transaction.atomic
def spec_editors_add(*, spec: Spec, user, usernames: list[str]) -> list[str]:
    """Share a spec with other policy users (they can then read and edit it)."""
    spec.editors.add(*users_with_role(usernames=usernames, role=roles.POLICY))
    latest = spec.versions.order_by("-number").first()
    _record(version=latest, user=user, action="spec.share", summary=f"Shared with {', '.join(usernames)}")
    return sorted(spec.editors.values_list("username", flat=True))
