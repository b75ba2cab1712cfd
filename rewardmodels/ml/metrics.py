"""Held-out metrics from scores: pair accuracy (overall, per category), calibration, score distributions."""

import math

import numpy as np

CALIBRATION_BINS = 10
HISTOGRAM_BINS = 20


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def calibration(diff: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict:
    """Reliability of p = σ(s_first - s_second) read as a probability: each pair's confidence max(p, 1-p) against
    whether the model picked the right reply, in ``n_bins`` equal bins over [0.5, 1]; ECE = Σ n_b/N·|acc_b - conf_b|."""
    p = _sigmoid(diff.astype(np.float64))
    confidence = np.maximum(p, 1.0 - p)
    correct = (diff > 0).astype(np.float64)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        inside = which == b
        count = int(inside.sum())
        mean_predicted = float(confidence[inside].mean()) if count else None
        accuracy = float(correct[inside].mean()) if count else None
        if count:
            ece += count / len(diff) * abs(accuracy - mean_predicted)
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "mean_predicted": mean_predicted,
                     "accuracy": accuracy, "count": count})
    return {"ece": float(ece) if len(diff) else None, "bins": bins}


def _summary(values: np.ndarray, edges: np.ndarray) -> dict:
    return {"n": int(len(values)), "mean": float(values.mean()) if len(values) else None,
            "std": float(values.std()) if len(values) else None,
            "histogram": np.histogram(values, bins=edges)[0].astype(int).tolist()}


def distributions(scores: np.ndarray, harmful: list) -> dict | None:
    """Scores of harmful vs safe replies (only replies whose flag is known), histograms over shared edges."""
    known = np.array([h is not None for h in harmful], dtype=bool)
    if not known.any():
        return None
    flags = np.array([bool(h) for h in harmful], dtype=bool)
    values = scores[known]
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {"edges": edges.tolist(), "harmful": _summary(scores[known & flags], edges),
            "safe": _summary(scores[known & ~flags], edges)}


def pair_metrics(s_first: list[float], s_second: list[float], pairs: list, *, kind: str) -> dict:
    """Every held-out metric. ``pairs`` are data.Pair objects (first = should score higher), aligned with the scores."""
    first, second = np.asarray(s_first, dtype=np.float64), np.asarray(s_second, dtype=np.float64)
    diff = first - second
    n = len(diff)
    if n == 0:
        return {"kind": kind, "n_pairs": 0}
    correct = diff > 0
    scores = np.concatenate([first, second])
    harmful = [p.harmful_first for p in pairs] + [p.harmful_second for p in pairs]
    metrics = {
        "kind": kind,
        "n_pairs": n,
        "accuracy": float(correct.mean()),
        "loss": float(np.mean(np.logaddexp(0.0, -diff))),  # -log σ(diff), the pairwise term
        "score_mean": float(scores.mean()),
        "score_std": float(scores.std()),
        "calibration": calibration(diff),
        "distributions": distributions(scores, harmful),
    }
    if kind == "cost":
        sign_correct = _sign_correct(scores, harmful)
        metrics["sign_accuracy"] = float(np.mean(sign_correct)) if sign_correct else None
        metrics["n_signed"] = len(sign_correct)
    per_category: dict[str, dict] = {}
    for i, pair in enumerate(pairs):
        for category in pair.categories:
            entry = per_category.setdefault(category, {"n": 0, "correct": 0, "signed": 0, "sign_correct": 0})
            entry["n"] += 1
            entry["correct"] += bool(correct[i])
            for score, flag in ((first[i], pair.harmful_first), (second[i], pair.harmful_second)):
                if flag is not None:
                    entry["signed"] += 1
                    entry["sign_correct"] += bool((score > 0) == flag)
    metrics["per_category"] = {
        key: {"n": e["n"], "accuracy": e["correct"] / e["n"],
              **({"sign_accuracy": e["sign_correct"] / e["signed"] if e["signed"] else None} if kind == "cost" else {})}
        for key, e in sorted(per_category.items())}
    return metrics


def _sign_correct(scores: np.ndarray, harmful: list) -> list[bool]:
    """Per reply with a known flag: is cost > 0 exactly when it is harmful?"""
    return [bool((s > 0) == h) for s, h in zip(scores, harmful) if h is not None]


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The flat numbers of a metrics dict, for a time series (on_metrics)."""
    flat = {key: float(metrics[key]) for key in ("accuracy", "loss", "score_mean", "score_std", "sign_accuracy")
            if isinstance(metrics.get(key), (int, float)) and math.isfinite(metrics[key])}
    ece = (metrics.get("calibration") or {}).get("ece")
    if ece is not None:
        flat["ece"] = float(ece)
    return flat
