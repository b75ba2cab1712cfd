"""Forms parse browser input into the plain values the labeling services take; the rules live there."""

from typing import Any

from django import forms

from specloop.errors import ValidationFailed

from .exports import AGGREGATIONS
from .imports import FORMATS
from .models import Campaign

PREFERENCE_CHOICES = [
    (-2, "X much better"), (-1, "X better"), (0, "tie"), (1, "Y better"), (2, "Y much better"),
]


def parse_weights(text: str) -> dict[str, float]:
    """``"violence: 2\\nweapons: 1.5"`` → ``{"violence": 2.0, "weapons": 1.5}``; bad lines name their number."""
    out: dict[str, float] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise forms.ValidationError(f"line {n}: write 'category_key: weight' (e.g. 'violence: 2')")
        try:
            weight = float(value)
        except ValueError:
            raise forms.ValidationError(f"line {n}: {value.strip()!r} is not a number") from None
        out[key.strip()] = weight
    return out


def format_weights(weights: dict[str, float]) -> str:
    return "\n".join(f"{key}: {value:g}" for key, value in weights.items())


def usernames_parse(text: str) -> list[str]:
    """Names separated by commas, spaces or new lines."""
    return [name for name in text.replace(",", " ").split() if name]


class CampaignCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    spec_version = forms.TypedChoiceField(coerce=int, label="Spec version",
                                          help_text="published versions of the specs you can see")
    guidelines = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False,
                                 help_text="what raters read before they start")
    overlap = forms.IntegerField(min_value=1, max_value=50, initial=3, help_text="distinct raters per task")
    pairing = forms.ChoiceField(choices=Campaign.PAIRING_CHOICES, initial=Campaign.ALL_PAIRS,
                                help_text="for prompts with more than two replies")
    category_weights = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "violence: 2\nweapons: 1.5"}), required=False,
        label="Sampling weights", help_text="one 'category_key: weight' per line; items of heavier categories come first",
    )
    gold_share = forms.FloatField(min_value=0, max_value=0.5, initial=0.0, help_text="share of gold tasks, 0–0.5")
    timeout_minutes = forms.IntegerField(min_value=1, max_value=7 * 24 * 60, initial=30, label="Timeout (minutes)",
                                         help_text="an open task returns to the pool after this")

    # Service error fields → form fields, so an error lands next to the input that caused it.
    SERVICE_FIELDS = {"version": "spec_version", "assignment_timeout_seconds": "timeout_minutes"}

    def __init__(self, *args, versions: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.versions = {v.pk: v for v in versions}
        groups: dict[str, list[tuple[int, str]]] = {}
        for v in versions:
            groups.setdefault(v.spec.name, []).append((v.pk, f"{v.spec.name} · v{v.number}"))
        self.fields["spec_version"].choices = list(groups.items())

    def clean_category_weights(self) -> dict[str, float]:
        return parse_weights(self.cleaned_data["category_weights"])

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"], "spec_version": self.versions[data["spec_version"]], "guidelines": data["guidelines"],
            "overlap": data["overlap"], "pairing": data["pairing"], "category_weights": data["category_weights"],
            "gold_share": data["gold_share"], "assignment_timeout_seconds": data["timeout_minutes"] * 60,
        }

    def add_service_errors(self, error: ValidationFailed) -> None:
        for e in error.errors:
            name = e["field"].split(".")[0]
            name = self.SERVICE_FIELDS.get(name, name)
            if name in self.fields:
                self.add_error(name, f"{e['field']}: {e['message']}" if "." in e["field"] else e["message"])
            else:
                self.add_error(None, f"{e['field']}: {e['message']}")


class RatersAddForm(forms.Form):
    usernames = forms.CharField(max_length=5000, help_text="rater usernames, separated by commas or spaces")

    def usernames_list(self) -> list[str]:
        return usernames_parse(self.cleaned_data["usernames"])


class ItemImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL, HH-RLHF JSONL or CSV, UTF-8")
    format = forms.ChoiceField(choices=[("auto", "detect from the file")] + [(f, f) for f in FORMATS], initial="auto")
    keep_empty = forms.BooleanField(required=False, label="Keep empty replies",
                                    help_text="Otherwise a reply with no text rejects the file, naming its line.")


class ExportCreateForm(forms.Form):
    aggregation = forms.ChoiceField(choices=[(a, a.replace("_", " ")) for a in AGGREGATIONS], initial="majority")
    min_agreement = forms.FloatField(min_value=0, max_value=1, initial=0.0,
                                     help_text="share of a task's judgments that agree with the consensus")
    min_judgments = forms.IntegerField(min_value=1, initial=1)
    harmful_threshold = forms.FloatField(min_value=0, initial=2.0,
                                         help_text="mean severity index at which a reply counts as harmful")
    categories = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                           help_text="keep only pairs where a reply carries one of these; none: all")

    def __init__(self, *args, categories: list[dict[str, Any]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["categories"].choices = [(c["key"], c["name"]) for c in categories]

    def filters(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class AdjudicationForm(forms.Form):
    """A decision in canonical terms: X is the reply the import listed first."""

    preference = forms.TypedChoiceField(coerce=int, choices=PREFERENCE_CHOICES, widget=forms.RadioSelect)
    categories_x = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Categories of X")
    categories_y = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Categories of Y")
    severity_x = forms.TypedChoiceField(coerce=int, label="Severity of X")
    severity_y = forms.TypedChoiceField(coerce=int, label="Severity of Y")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)

    def __init__(self, *args, document: dict[str, Any], prefix_id: str = "", **kwargs):
        super().__init__(*args, auto_id=f"id_{prefix_id}%s" if prefix_id else "id_%s", **kwargs)
        categories = [(c["key"], c["name"]) for c in document["categories"]]
        severities = [(i, f"{i} · {label}") for i, label in enumerate(document["rubric"]["severity_scale"])]
        for side in ("x", "y"):
            self.fields[f"categories_{side}"].choices = categories
            self.fields[f"severity_{side}"].choices = severities

    def data_for_service(self) -> dict[str, Any]:
        return dict(self.cleaned_data)
