"""Forms parse browser input into the plain values the safety services take; the rules live there."""

from django import forms

from specloop.errors import ValidationFailed

from .decisions import DECISIONS
from .prompt_imports import FORMATS


def _version_choices(versions) -> list[tuple[int, str]]:
    return [(v.pk, f"{v.spec.name} v{v.number}") for v in versions]


class ServiceErrors:
    """Errors a service raised, shown at the field they name (the query-parameter names are the field names)."""

    SERVICE_FIELDS = {"response_column": "response_columns", "spec": "spec_version", "version": "spec_version"}

    def add_service_errors(self, error: ValidationFailed) -> None:
        for e in error.errors:
            name = self.SERVICE_FIELDS.get(e["field"], e["field"])
            if name in self.fields:
                self.add_error(name, e["message"])
            else:
                self.add_error(None, f"{e['field']}: {e['message']}")


class PromptSetImportForm(ServiceErrors, forms.Form):
    name = forms.CharField(max_length=200)
    spec_version = forms.TypedChoiceField(coerce=int, label="Spec version",
                                          help_text="its crosswalk maps public codes to its categories")
    file = forms.FileField(help_text="JSONL or CSV, UTF-8. A bad line rejects the whole file, naming it.")
    format = forms.ChoiceField(choices=[("auto", "from the file name")] + [(f, f) for f in FORMATS], initial="auto")
    label = forms.ChoiceField(choices=[("", "unknown"), ("safe", "safe"), ("unsafe", "unsafe")], required=False,
                              label="Default label", help_text="for prompts that carry none (AdvBench: unsafe)")
    prompt_column = forms.CharField(max_length=200, required=False, help_text="CSV: default prompt")
    label_column = forms.CharField(max_length=200, required=False, help_text="CSV: safe / unsafe labels")
    response_columns = forms.CharField(max_length=2000, required=False, label="Response columns",
                                       help_text="CSV: comma-separated; each reply becomes its own prompt row")
    category_column = forms.CharField(max_length=200, required=False, help_text="CSV: spec category keys")
    code_column = forms.CharField(max_length=200, required=False, help_text="CSV: public taxonomy codes")
    taxonomy = forms.CharField(max_length=200, required=False, help_text="ailuminate, harmbench, do_not_answer, …")

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["spec_version"].choices = _version_choices(versions)

    def response_column_list(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data["response_columns"].split(",") if c.strip()]

    def fmt(self, filename: str) -> str:
        fmt = self.cleaned_data["format"]
        if fmt == "auto":
            return "csv" if filename.lower().endswith((".csv", ".tsv")) else "jsonl"
        return fmt


class SpecExamplesForm(forms.Form):
    spec_version = forms.TypedChoiceField(coerce=int, label="Spec version")
    name = forms.CharField(max_length=200, required=False, help_text="default: the version and “examples”")

    def __init__(self, *args, versions, **kwargs):
        kwargs.setdefault("auto_id", "examples_%s")  # beside the import form on one page: ids of its own
        super().__init__(*args, **kwargs)
        self.fields["spec_version"].choices = _version_choices(versions)


class GuardCreateForm(ServiceErrors, forms.Form):
    SERVICE_FIELDS = {"spec": "spec_version", "version": "spec_version"}

    name = forms.CharField(max_length=200)
    safety_classifier = forms.TypedChoiceField(coerce=int, label="Safety classifier")
    spec_version = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Spec version",
                                          help_text="default: the classifier's own")
    cost_model = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Cost model",
                                        help_text="optional: a cost above 0 also marks a reply harmful")
    log_decisions = forms.BooleanField(required=False, label="Log every decision",
                                       help_text="for the decision log, which can feed a labeling campaign")

    def __init__(self, *args, classifiers, cost_models, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["safety_classifier"].choices = [(m.pk, f"#{m.pk} {m.name}") for m in classifiers]
        self.fields["cost_model"].choices = [("", "none")] + [(m.pk, f"#{m.pk} {m.name}") for m in cost_models]
        self.fields["spec_version"].choices = [("", "the classifier's")] + _version_choices(versions)


class DecisionFilterForm(forms.Form):
    decision = forms.ChoiceField(choices=[("", "every decision")] + [(d, d.replace("_", " ")) for d in DECISIONS],
                                 required=False)


class SendToCampaignForm(forms.Form):
    """The campaign; the ticked decisions come as repeated ``decisions`` values (checkboxes in the log table)."""

    campaign = forms.TypedChoiceField(coerce=int, label="Campaign")

    def __init__(self, *args, campaigns, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = [(c.pk, f"{c.name} ({c.spec_version})") for c in campaigns]

    def decision_ids(self) -> list[int]:
        ids = [v for v in self.data.getlist("decisions")]
        if not ids:
            raise ValidationFailed.one("decisions", "tick one or more decisions to send")
        if not all(str(v).isdigit() for v in ids):
            raise ValidationFailed.one("decisions", "must be decision ids")
        return [int(v) for v in ids]


class GuardTryForm(forms.Form):
    prompt = forms.CharField(max_length=100_000, widget=forms.Textarea(attrs={"rows": 3}), strip=False)
    response = forms.CharField(max_length=100_000, widget=forms.Textarea(attrs={"rows": 3}), required=False, strip=False,
                               help_text="leave it empty to judge the prompt alone")
