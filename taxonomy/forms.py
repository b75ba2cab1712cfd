"""Forms parse browser input into plain values; the document rules live in document.py."""

from typing import Any

from django import forms

from .document import BEHAVIORS, VERDICTS


def parse_crosswalk(text: str) -> dict[str, list[str]]:
    """``"ailuminate: vcr, cse\\nllama_guard: S1"`` → ``{"ailuminate": ["vcr", "cse"], "llama_guard": ["S1"]}``."""
    out: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if ":" not in line:
            raise forms.ValidationError(f"line {n}: write 'taxonomy: code, code' (e.g. 'llama_guard: S1')")
        name, codes = line.split(":", 1)
        out[name.strip()] = [c.strip() for c in codes.split(",") if c.strip()]
    return out


def format_crosswalk(crosswalk: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {', '.join(codes)}" for name, codes in crosswalk.items())


class CategoryForm(forms.Form):
    key = forms.CharField(max_length=64, help_text="lowercase slug, e.g. violent_crime")
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    parent = forms.ChoiceField(required=False)
    severity = forms.TypedChoiceField(coerce=int)
    behavior = forms.ChoiceField(choices=[(b, b.replace("_", " ")) for b in BEHAVIORS])
    crosswalk = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "ailuminate: vcr\nllama_guard: S1"}),
        required=False, help_text="one line per public taxonomy: 'name: code, code'",
    )
    budget = forms.FloatField(
        required=False, min_value=0, max_value=1,
        help_text="largest acceptable harmful-reply rate in this category (0–1); empty: no budget",
    )

    def __init__(self, *args, document: dict[str, Any], editing: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        excluded = _descendants(document, editing) if editing else set()
        self.fields["parent"].choices = [("", "— top level —")] + [
            (c["key"], f"{c['name']} ({c['key']})") for c in document["categories"] if c["key"] not in excluded
        ]
        scale = document["rubric"]["severity_scale"]
        self.fields["severity"].choices = [(i, f"{i} · {scale[i]}" if i < len(scale) else str(i)) for i in range(4)]

    def clean_crosswalk(self) -> dict[str, list[str]]:
        return parse_crosswalk(self.cleaned_data["crosswalk"])

    def category(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "key": data["key"].strip(),
            "name": data["name"].strip(),
            "description": data["description"],
            "parent": data["parent"] or None,
            "severity": data["severity"],
            "behavior": data["behavior"],
            "crosswalk": data["crosswalk"],
        }

    @classmethod
    def initial_for(cls, document: dict[str, Any], category: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: category[k] for k in ("key", "name", "description", "severity", "behavior")},
            "parent": category["parent"] or "",
            "crosswalk": format_crosswalk(category["crosswalk"]),
            "budget": document["budgets"].get(category["key"]),
        }


def _descendants(document: dict[str, Any], key: str) -> set[str]:
    """``key`` and everything below it: not valid as its new parent."""
    out = {key}
    changed = True
    while changed:
        changed = False
        for c in document["categories"]:
            if c["parent"] in out and c["key"] not in out:
                out.add(c["key"])
                changed = True
    return out


class ExampleForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)
    verdict = forms.ChoiceField(choices=[(v, v) for v in VERDICTS])


class LinesForm(forms.Form):
    """Goals or principles: one per line."""

    lines = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)

    def items(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["lines"].splitlines() if line.strip()]


class SpecCreateForm(forms.Form):
    STARTS = [("example", "the shipped example spec"), ("blank", "an empty spec"), ("upload", "an uploaded YAML/JSON file")]
    name = forms.CharField(max_length=200)
    start = forms.ChoiceField(choices=STARTS, initial="example", widget=forms.RadioSelect)
    file = forms.FileField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("start") == "upload" and not data.get("file"):
            self.add_error("file", "choose a YAML or JSON file to upload")
        return data


class UploadForm(forms.Form):
    file = forms.FileField(help_text="a YAML or JSON spec document")
