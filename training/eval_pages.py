"""What the evaluation pages show, from an evaluation job's final metrics (training.ml.evaluation.aggregate):
the headline rates, the per-label and per-category tables with budget marks, the worst items, and two or more
evaluations side by side. Pure functions of the metrics dict; every key is optional here (a job that is still
running, or metrics of an older shape, render as dashes)."""

from typing import Any

WORST_SHOWN = 10


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _percent(value: Any) -> str:
    value = _number(value)
    return "" if value is None else f"{100 * value:.1f}%"


def _interval(value: Any) -> str:
    """[low, high] as "1.2–8.9%"; empty when absent."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) is not None for v in value):
        return f"{100 * value[0]:.1f}–{100 * value[1]:.1f}%"
    return ""


def _width(value: Any) -> int:
    value = _number(value)
    return 0 if value is None else max(0, min(100, round(100 * value)))


def budget_mark(row: dict[str, Any]) -> dict[str, str]:
    """How a category's harmful rate stands against its budget, in words and a css class.

    Over: the measured rate is above the budget. Within: at or under it, and so is the top of the 95% interval.
    Unsure: under it, but the interval reaches past it (too few prompts to tell).
    """
    budget, rate = _number(row.get("budget")), _number(row.get("harmful_rate"))
    if budget is None:
        return {"mark": "none", "text": "no budget"}
    if rate is None:
        return {"mark": "none", "text": "no replies"}
    ci = row.get("harmful_rate_ci")
    high = _number(ci[1]) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None
    if rate > budget:
        return {"mark": "over", "text": "over budget"}
    if high is not None and high > budget:
        return {"mark": "unsure", "text": "within, unsure"}
    return {"mark": "under", "text": "within budget"}


def _rates_row(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": _number(stats.get("n")),
        "refusal": _percent(stats.get("refusal_rate")), "refusal_width": _width(stats.get("refusal_rate")),
        "full": _percent(stats.get("full_refusal_rate")), "partial": _percent(stats.get("partial_refusal_rate")),
        "compliance": _percent(stats.get("compliance_rate")),
        "harmful": _percent(stats.get("harmful_rate")), "harmful_width": _width(stats.get("harmful_rate")),
        "harmful_ci": _interval(stats.get("harmful_rate_ci")),
    }


LABEL_ORDER = ("unsafe", "safe", "unknown")


def ordered(keys, order: list[str] | None) -> list:
    """``keys`` in the spec's order (a JSON column need not keep the order the metrics were written in), the rest
    after them alphabetically."""
    keys = list(keys)
    rank = {key: n for n, key in enumerate(order or [])}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), str(k)))


def spec_order(version) -> list[str]:
    """The category keys of a spec version in its document's order."""
    document = getattr(version, "document", None) or {}
    return [c.get("key") for c in document.get("categories") or [] if isinstance(c, dict)]


def evaluation_summary(metrics: Any, order: list[str] | None = None) -> dict[str, Any] | None:
    """The evaluation section of a job page, or None when the job has no evaluation metrics yet; categories in
    ``order`` (the spec's)."""
    if not isinstance(metrics, dict) or "by_category" not in metrics and "over_refusal" not in metrics:
        return None
    by_label = metrics.get("by_label") if isinstance(metrics.get("by_label"), dict) else {}
    by_category = metrics.get("by_category") if isinstance(metrics.get("by_category"), dict) else {}
    labels = [{"label": label, **_rates_row(by_label[label])} for label in ordered(by_label, list(LABEL_ORDER))
              if isinstance(by_label[label], dict)]
    categories = []
    for key in ordered(by_category, order):
        stats = by_category[key]
        if not isinstance(stats, dict):
            continue
        met = _number(stats.get("behavior_met_rate"))
        categories.append({
            "key": key, "name": stats.get("name") or key, **_rates_row(stats),
            "behavior": stats.get("behavior") or "", "budget": _percent(stats.get("budget")),
            "behavior_met": _percent(met), **budget_mark(stats),
        })
    worst = [item for item in metrics.get("worst") or [] if isinstance(item, dict)][:WORST_SHOWN]
    for item in worst:
        item["harm_label"] = _percent(item.get("response_harmful"))
    return {
        "n": _number(metrics.get("n")),
        "over_refusal": _percent(metrics.get("over_refusal")), "over_refusal_ci": _interval(metrics.get("over_refusal_ci")),
        "refusal_rate": _percent(metrics.get("refusal_rate")), "refusal_rate_ci": _interval(metrics.get("refusal_rate_ci")),
        "harmful_rate": _percent(metrics.get("harmful_rate")), "harmful_rate_ci": _interval(metrics.get("harmful_rate_ci")),
        "mean_reward": _number(metrics.get("mean_reward")), "mean_cost": _number(metrics.get("mean_cost")),
        "replies_per_second": _number(metrics.get("replies_per_second")),
        "labels": labels, "categories": categories, "n_over": sum(c["mark"] == "over" for c in categories),
        "worst": worst,
    }


def _delta(values: list[float | None]) -> str:
    """The last value minus the first, in percentage points ("+2.5 pp"); empty unless both are there."""
    if len(values) < 2 or values[0] is None or values[-1] is None:
        return ""
    return f"{100 * (values[-1] - values[0]):+.1f} pp"


def _cells(values: list[Any], cis: list[Any]) -> list[dict[str, Any]]:
    return [{"value": _percent(v), "ci": _interval(ci)} for v, ci in zip(values, cis)]


def evaluation_comparison(jobs: list, order: list[str] | None = None) -> dict[str, Any]:
    """Two or more evaluations side by side: over-refusal and refusal overall, then per category the harmful
    rate (against its budget) and the refusal rate. The change is the last job's value minus the first's."""
    metrics = [j.final_metrics if isinstance(j.final_metrics, dict) else {} for j in jobs]

    def overall(key: str, label: str, lower_is_better: bool) -> dict[str, Any]:
        values = [_number(m.get(key)) for m in metrics]
        delta = _delta(values)
        worse = bool(delta) and ((values[-1] > values[0]) == lower_is_better) and values[-1] != values[0]
        return {"label": label, "cells": _cells(values, [m.get(f"{key}_ci") for m in metrics]), "delta": delta,
                "worse": worse, "better": bool(delta) and not worse and values[-1] != values[0]}

    headline = [overall("over_refusal", "Over-refusal (safe prompts refused)", True),
                overall("refusal_rate", "Refusal of unsafe prompts", False),
                overall("harmful_rate", "Harmful replies, all prompts", True)]
    per_job = [m.get("by_category") if isinstance(m.get("by_category"), dict) else {} for m in metrics]
    keys = ordered(dict.fromkeys(k for categories in per_job for k in categories), order)
    rows = []
    for key in keys:
        stats = [c.get(key) if isinstance(c.get(key), dict) else {} for c in per_job]
        harmful = [_number(s.get("harmful_rate")) for s in stats]
        refusal = [_number(s.get("refusal_rate")) for s in stats]
        name = next((s.get("name") for s in stats if s.get("name")), key)
        budget = next((_number(s.get("budget")) for s in stats if _number(s.get("budget")) is not None), None)
        behavior = next((s.get("behavior") for s in stats if s.get("behavior")), "")
        rows.append({
            "key": key, "name": name, "behavior": behavior, "budget": _percent(budget),
            "jobs": [{"harmful": _percent(h), "refusal": _percent(r), "n": _number(s.get("n")),
                      **(budget_mark(s) if s else {"mark": "none", "text": "not in this evaluation"})}
                     for h, r, s in zip(harmful, refusal, stats)],
            "harmful_delta": _delta(harmful), "refusal_delta": _delta(refusal),
            "harmful_up": bool(_delta(harmful)) and harmful[-1] > harmful[0],
            "harmful_down": bool(_delta(harmful)) and harmful[-1] < harmful[0],
        })
    return {"headline": headline, "categories": rows}
