"""What a safety classifier's model page shows, from its held-out metrics (training.ml.safety's train): each head,
each category, the refusal confusion matrix, and the refusal head against plain string matching. Pure functions of
the metrics dict; every key is optional here."""

from typing import Any

REFUSAL_CLASSES = ("compliance", "partial_refusal", "full_refusal")
HEAD_NAMES = {"prompt_harmful": "Prompt harmful", "response_harmful": "Reply harmful",
              "categories": "Categories (macro over the spec's)", "response_refusal": "Refusal (3 classes)"}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _width(value: Any) -> int:
    value = _number(value)
    return 0 if value is None else max(0, min(100, round(100 * value)))


def head_rows(metrics: dict) -> list[dict[str, Any]]:
    """One row per head: how many held-out rows carried its label, AUROC, F1 at the stored threshold."""
    rows = []
    for head in ("prompt_harmful", "response_harmful"):
        stats = _dict(metrics.get(head))
        rows.append({"key": head, "name": HEAD_NAMES[head], "n": _number(stats.get("n")),
                     "positives": _number(stats.get("positives")), "auroc": _number(stats.get("auroc")),
                     "f1": _number(stats.get("f1")), "threshold": _number(stats.get("threshold")),
                     "precision": _number(stats.get("precision")), "recall": _number(stats.get("recall")),
                     "extra": (f"harm pairs ranked right {100 * stats['pair_accuracy']:.1f}% of {stats.get('n_pairs')}"
                               if _number(stats.get("pair_accuracy")) is not None else "")})
    categories = _dict(metrics.get("categories"))
    rows.append({"key": "categories", "name": HEAD_NAMES["categories"], "n": _number(categories.get("n")),
                 "positives": None, "auroc": _number(categories.get("macro_auroc")),
                 "f1": _number(categories.get("macro_f1")), "threshold": None, "precision": None, "recall": None,
                 "extra": (f"{categories.get('n_with_positives')} categories with held-out positives"
                           if categories.get("n_with_positives") is not None else "")})
    refusal = _dict(metrics.get("response_refusal"))
    detection = _dict(refusal.get("refusal_detection"))
    rows.append({"key": "response_refusal", "name": HEAD_NAMES["response_refusal"], "n": _number(refusal.get("n")),
                 "positives": None, "auroc": None, "f1": _number(refusal.get("macro_f1")), "threshold": None,
                 "precision": None, "recall": None,
                 "extra": " · ".join(x for x in (
                     f"accuracy {100 * refusal['accuracy']:.1f}%" if _number(refusal.get("accuracy")) is not None else "",
                     f"refused-or-not F1 {detection['f1']:.3f}" if _number(detection.get("f1")) is not None else "") if x)})
    return rows


def category_rows(metrics: dict) -> list[dict[str, Any]]:
    per_category = _dict(_dict(metrics.get("categories")).get("per_category"))
    rows = []
    for key, stats in per_category.items():
        stats = _dict(stats)
        auroc = _number(stats.get("auroc"))
        rows.append({"key": key, "name": stats.get("name") or key, "n": _number(stats.get("n")),
                     "positives": _number(stats.get("positives")), "auroc": auroc, "width": _width(auroc),
                     "f1": _number(stats.get("f1")), "threshold": _number(stats.get("threshold"))})
    return sorted(rows, key=lambda r: (-(r["positives"] or 0), r["name"]))


def confusion(metrics: dict) -> dict[str, Any] | None:
    """The refusal head's confusion matrix (rows: the label, columns: the prediction), or None."""
    refusal = _dict(metrics.get("response_refusal"))
    matrix = refusal.get("confusion")
    labels = refusal.get("labels") or list(REFUSAL_CLASSES)
    if not isinstance(matrix, list) or len(matrix) != len(labels):
        return None
    per_class = _dict(refusal.get("per_class"))
    return {"labels": [label.replace("_", " ") for label in labels],
            "rows": [{"label": label.replace("_", " "), "n": sum(row) if all(_number(c) is not None for c in row) else None,
                      "recall": _number(_dict(per_class.get(label)).get("recall")),
                      "cells": [{"count": c, "diagonal": i == j} for j, c in enumerate(row)]}
                     for i, (label, row) in enumerate(zip(labels, matrix)) if isinstance(row, list)]}


def baseline(metrics: dict) -> dict[str, Any] | None:
    """The refusal head against string matching on the same held-out replies: overall, non-templated replies,
    and the partial refusals (how many each one calls refused at all, and exactly partial)."""
    comparison = _dict(_dict(metrics.get("response_refusal")).get("string_match"))
    if not comparison:
        return None
    rows = []
    for key, label in (("overall", "All held-out replies"), ("non_templated", "Non-templated replies")):
        part = _dict(comparison.get(key))
        head, match = _dict(part.get("head")), _dict(part.get("string_match"))
        rows.append({
            "key": key, "label": label, "n": _number(head.get("n")),
            "head_accuracy": _number(head.get("accuracy")), "match_accuracy": _number(match.get("accuracy")),
            "head_f1": _number(head.get("macro_f1")), "match_f1": _number(match.get("macro_f1")),
            "head_detection": _number(_dict(head.get("refusal_detection")).get("f1")),
            "match_detection": _number(_dict(match.get("refusal_detection")).get("f1")),
        })
    partial = _dict(comparison.get("partial_refusals"))
    head, match = _dict(partial.get("head")), _dict(partial.get("string_match"))
    return {"rows": rows, "partial": {
        "n": _number(head.get("n")), "head_refused": _number(head.get("refused")),
        "match_refused": _number(match.get("refused")), "head_exact": _number(head.get("exact")),
        "match_exact": _number(match.get("exact"))}}


def safety_context(metrics: Any) -> dict[str, Any]:
    metrics = _dict(metrics)
    return {"heads": head_rows(metrics), "safety_categories": category_rows(metrics), "confusion": confusion(metrics),
            "baseline": baseline(metrics), "n_rows": _number(metrics.get("n_rows")),
            "n_pairs": _number(metrics.get("n_pairs"))}


def try_result(result: dict[str, Any]) -> dict[str, Any]:
    """rewardmodels.services.safety_model_classify's answer with bar widths for the page."""
    refusal = result.get("response_refusal")
    return {**result,
            "refusal_rows": [{"label": c.replace("_", " "), "p": (refusal["probabilities"] or {}).get(c),
                              "width": _width((refusal["probabilities"] or {}).get(c))} for c in REFUSAL_CLASSES]
            if refusal else [],
            "category_rows": [{**c, "width": _width(c["probability"])} for c in result.get("categories") or []][:8]}
