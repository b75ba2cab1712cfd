"""Model registry pages: the list, a model's held-out metrics and provenance, and a small "try it" form.

Same visibility as the jobs that made the models (selectors); raters get 403, an invisible model 404.
The metrics dict comes from the ml package: every key is optional here.
"""

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from specloop.errors import ValidationFailed
from specloop.roles import ADMIN, POLICY, role_required
from training.views import config_rows, metric_rows, number, percent

from . import safety_pages, selectors, services
from .models import RewardModel


class ScoreForm(forms.Form):
    prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             strip=False, max_length=services.MAX_TEXT_CHARS)
    response = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False,
                               max_length=services.MAX_TEXT_CHARS,
                               error_messages={"required": "Type a reply to score."})


class SafetyTryForm(forms.Form):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False, max_length=services.MAX_TEXT_CHARS,
                             error_messages={"required": "Type a prompt to classify."})
    response = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), strip=False,
                               max_length=services.MAX_TEXT_CHARS,
                               help_text="Optional: without a reply the prompt alone is judged.")


def _try_form(model: RewardModel, data=None) -> forms.Form:
    return SafetyTryForm(data) if model.kind == RewardModel.SAFETY else ScoreForm(data)


def _category_rows(model: RewardModel, per_category: Any) -> list[dict[str, Any]]:
    if not isinstance(per_category, dict):
        return []
    document = model.spec_version.document if model.spec_version_id else {}
    names = {c.get("key"): c.get("name") for c in (document or {}).get("categories", []) if isinstance(c, dict)}
    rows = []
    for key, stats in per_category.items():
        stats = stats if isinstance(stats, dict) else {}
        accuracy = number(stats.get("accuracy"))
        rows.append({"key": key, "name": names.get(key) or key, "accuracy": accuracy, "label": percent(accuracy),
                     "sign": percent(stats.get("sign_accuracy")),
                     "n": number(stats.get("n")), "width": round(100 * accuracy, 1) if accuracy is not None else 0})
    return sorted(rows, key=lambda r: (-(r["n"] or 0), r["name"]))


def _calibration(calibration: Any) -> dict[str, Any]:
    calibration = calibration if isinstance(calibration, dict) else {}
    bins = []
    for b in calibration.get("bins") or []:
        if not isinstance(b, dict):
            continue
        predicted, accuracy = number(b.get("mean_predicted")), number(b.get("accuracy"))
        if predicted is not None and accuracy is not None:  # an empty bin has neither
            bins.append({"mean_predicted": predicted, "accuracy": accuracy, "count": number(b.get("count")) or 0})
    return {"ece": number(calibration.get("ece")), "bins": bins}


def _distributions(distributions: Any) -> dict[str, Any] | None:
    d = distributions if isinstance(distributions, dict) else {}
    edges = [number(e) for e in d.get("edges") or []]
    if not edges or None in edges:
        return None
    out: dict[str, Any] = {"edges": edges}
    for side in ("harmful", "safe"):
        stats = d.get(side) if isinstance(d.get(side), dict) else {}
        hist = [number(h) or 0 for h in stats.get("histogram") or stats.get("hist") or []]
        out[side] = {"mean": number(stats.get("mean")), "std": number(stats.get("std")),
                     "hist": hist if len(hist) == len(edges) - 1 else []}
    return out if out["harmful"]["hist"] or out["safe"]["hist"] else None


@role_required(POLICY, ADMIN)
def model_list_view(request: HttpRequest) -> HttpResponse:
    models = list(selectors.reward_model_list(user=request.user)[:500])
    rows = [{"model": m, "accuracy": percent((m.metrics or {}).get("accuracy")),
             "refusal_accuracy": percent(((m.metrics or {}).get("response_refusal") or {}).get("accuracy")),
             "sign_accuracy": percent((m.metrics or {}).get("sign_accuracy")), "exports": list(m.exports.all())}
            for m in models]
    return render(request, "rewardmodels/model_list.html", {"rows": rows})


def _detail_context(model: RewardModel) -> dict[str, Any]:
    metrics = model.metrics if isinstance(model.metrics, dict) else {}
    if model.kind == RewardModel.SAFETY:
        return {"model": model, "exports": list(model.exports.all()), "headline": metric_rows(metrics),
                "prompt_sets": list(model.job.prompt_sets.select_related("spec_version__spec").order_by("pk")),
                "data_files": model.job.data_files or [], "config_rows": config_rows(model.config),
                "chart_data": {}, **safety_pages.safety_context(metrics)}
    calibration = _calibration(metrics.get("calibration"))
    distributions = _distributions(metrics.get("distributions"))
    categories = _category_rows(model, metrics.get("per_category"))
    return {
        "model": model, "exports": list(model.exports.all()),
        "headline": metric_rows(metrics), "accuracy": percent(metrics.get("accuracy")),
        "sign_accuracy": percent(metrics.get("sign_accuracy")),
        "categories": categories, "with_sign": any(c["sign"] for c in categories),
        "calibration": calibration, "distributions": distributions,
        "chart_data": {"calibration": calibration, "distributions": distributions},
        "config_rows": config_rows(model.config),
    }


@role_required(POLICY, ADMIN)
def model_detail_view(request: HttpRequest, model_id: int) -> HttpResponse:
    model = selectors.reward_model_get(user=request.user, model_id=model_id)
    return render(request, "rewardmodels/model_detail.html", {**_detail_context(model), "score_form": _try_form(model)})


@role_required(POLICY, ADMIN)
@require_POST
def model_score_view(request: HttpRequest, model_id: int) -> HttpResponse:
    model = selectors.reward_model_get(user=request.user, model_id=model_id)
    form = _try_form(model, request.POST)
    score = classified = None
    if form.is_valid():
        prompt, response = form.cleaned_data["prompt"], form.cleaned_data["response"]
        try:
            if model.kind == RewardModel.SAFETY:
                classified = safety_pages.try_result(services.safety_model_classify(
                    model=model, prompt=prompt, response=response if response.strip() else None))
            else:
                score = services.reward_model_score(model=model, data={"items": [
                    {"prompt": prompt, "response": response}]})[0]
        except ValidationFailed as error:
            form.add_error(None, error.message)
        except OSError as error:  # the checkpoint folder is gone or unreadable
            form.add_error(None, f"The model's checkpoint could not be read: {error}")
    context = {"model": model, "score_form": form, "score": score, "classified": classified}
    if request.htmx:
        return render(request, "rewardmodels/model_detail.html#try-it", context, status=400 if form.errors else 200)
    return render(request, "rewardmodels/model_detail.html", {**_detail_context(model), **context},
                  status=400 if form.errors else 200)
