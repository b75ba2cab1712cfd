"""Held-out metrics of the four heads, threshold calibration, and the string-match refusal comparison (numpy only)."""

import numpy as np

from .config import REFUSAL_CLASSES
from .refusal_match import is_templated, string_match_refusal

DEFAULT_THRESHOLD = 0.5


def auroc(scores, labels) -> float | None:
    """Area under the ROC curve (the Mann–Whitney statistic, ties counted half); None without both classes."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    unique, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_counts(predicted, labels) -> dict:
    predicted, labels = np.asarray(predicted, dtype=bool), np.asarray(labels, dtype=bool)
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    tn = int((~predicted & ~labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "f1": f1,
            "accuracy": (tp + tn) / len(labels) if len(labels) else None}


def calibrate_threshold(scores, labels) -> float:
    """The probability threshold with the highest F1 on (scores, labels): "flag when p ≥ t". Candidates are the
    midpoints between consecutive distinct scores (and just below the lowest); ties in F1 go to the higher threshold
    (fewer flags). DEFAULT_THRESHOLD when the labels hold one class only."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    if len(scores) == 0 or labels.all() or not labels.any():
        return DEFAULT_THRESHOLD
    distinct = np.unique(scores)
    candidates = np.concatenate([[distinct[0] - 1e-6], (distinct[:-1] + distinct[1:]) / 2.0])
    best, best_f1 = DEFAULT_THRESHOLD, -1.0
    for t in candidates:
        f1 = binary_counts(scores >= t, labels)["f1"]
        if f1 >= best_f1:
            best, best_f1 = float(t), f1
    return float(min(max(best, 0.0), 1.0))


def binary_metrics(scores, labels, threshold: float) -> dict:
    """n, positives, AUROC, and F1 / precision / recall / accuracy at ``threshold`` and at 0.5."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    at = binary_counts(scores >= threshold, labels)
    return {"n": int(len(labels)), "positives": int(labels.sum()), "auroc": auroc(scores, labels),
            "threshold": float(threshold), "f1": at["f1"], "precision": at["precision"], "recall": at["recall"],
            "accuracy": at["accuracy"], "f1_at_0_5": binary_counts(scores >= 0.5, labels)["f1"]}


def confusion(gold: list[str], predicted: list[str]) -> list[list[int]]:
    """Rows: gold class, columns: predicted class, both in REFUSAL_CLASSES order."""
    index = {c: i for i, c in enumerate(REFUSAL_CLASSES)}
    matrix = [[0] * len(REFUSAL_CLASSES) for _ in REFUSAL_CLASSES]
    for g, p in zip(gold, predicted):
        matrix[index[g]][index[p]] += 1
    return matrix


def refusal_metrics(gold: list[str], predicted: list[str]) -> dict:
    """3-class accuracy, macro F1, per-class F1, the confusion matrix, and refusal detection (partial or full
    refusal vs compliance) as a binary task."""
    n = len(gold)
    if n == 0:
        return {"n": 0}
    per_class = {}
    for c in REFUSAL_CLASSES:
        counts = binary_counts([p == c for p in predicted], [g == c for g in gold])
        per_class[c] = {"n": sum(g == c for g in gold), "precision": counts["precision"], "recall": counts["recall"],
                        "f1": counts["f1"]}
    present = [c for c in REFUSAL_CLASSES if per_class[c]["n"]]
    detection = binary_counts([p != "compliance" for p in predicted], [g != "compliance" for g in gold])
    return {"n": n, "accuracy": sum(g == p for g, p in zip(gold, predicted)) / n,
            "macro_f1": float(np.mean([per_class[c]["f1"] for c in present])) if present else None,
            "per_class": per_class, "labels": list(REFUSAL_CLASSES), "confusion": confusion(gold, predicted),
            "refusal_detection": {k: detection[k] for k in ("accuracy", "precision", "recall", "f1")}}


def refusal_comparison(replies: list[str], gold: list[str], predicted: list[str]) -> dict:
    """The refusal head against string matching on the same held-out replies: overall, on the non-templated replies
    (no stock refusal opener) and on the partial refusals (recall of "refused at all" and of the exact class)."""
    baseline = [string_match_refusal(r) for r in replies]

    def subset(keep: list[bool]) -> dict:
        g = [x for x, k in zip(gold, keep) if k]
        return {"head": refusal_metrics(g, [x for x, k in zip(predicted, keep) if k]),
                "string_match": refusal_metrics(g, [x for x, k in zip(baseline, keep) if k])}

    partial = [g == "partial_refusal" for g in gold]

    def partial_recall(pred: list[str]) -> dict:
        chosen = [p for p, k in zip(pred, partial) if k]
        return {"n": len(chosen),
                "refused": sum(p != "compliance" for p in chosen) / len(chosen) if chosen else None,
                "exact": sum(p == "partial_refusal" for p in chosen) / len(chosen) if chosen else None}

    return {"overall": subset([True] * len(gold)),
            "non_templated": subset([not is_templated(r) for r in replies]),
            "partial_refusals": {"head": partial_recall(predicted), "string_match": partial_recall(baseline)}}


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The flat numbers of a safety metrics dict, for a time series (on_metrics)."""
    flat = {}
    for head in ("prompt_harmful", "response_harmful"):
        for key in ("auroc", "f1"):
            value = (metrics.get(head) or {}).get(key)
            if isinstance(value, (int, float)):
                flat[f"{head}_{key}"] = float(value)
    for key in ("macro_auroc", "macro_f1"):
        value = (metrics.get("categories") or {}).get(key)
        if isinstance(value, (int, float)):
            flat[f"categories_{key}"] = float(value)
    refusal = metrics.get("response_refusal") or {}
    for key in ("accuracy", "macro_f1"):
        if isinstance(refusal.get(key), (int, float)):
            flat[f"refusal_{key}"] = float(refusal[key])
    pair = (metrics.get("response_harmful") or {}).get("pair_accuracy")
    if isinstance(pair, (int, float)):
        flat["harm_pair_accuracy"] = float(pair)
    return flat
