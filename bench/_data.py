"""Synthetic campaigns for the benchmarks, loaded with COPY: items, tasks, judged assignments, judgments.

The judgments look like real ones: each task has a latent quality difference, each rater a noise
level (a few are close to random), replies carry a category about 20% of the time, severity follows
the category, and the three rubric axes are filled for both replies. Everything is seeded.
"""

from datetime import UTC, datetime

import numpy as np
import orjson
from _common import copy_rows, copy_text, next_ids

WORDS = ["the", "a", "model", "reply", "user", "asks", "how", "why", "when", "safe", "harm", "help", "explain", "steps", "we", "should", "not", "cannot", "will", "please", "consider", "instead", "risk", "data", "privacy", "law", "medical", "advice", "context", "example", "clear", "answer", "question", "policy", "general", "information", "detail", "source", "because", "however", "also", "here", "is", "are", "can", "may", "might", "could", "would", "first", "second", "then", "finally", "note", "that", "this", "it", "you", "your", "they", "their", "people", "person", "tool", "code", "result"]
MODELS = ("policy-a", "policy-b", "policy-c", "base")


def text_pool(rng: np.random.Generator, n: int, min_words: int, max_words: int) -> list[str]:
    """n pseudo-sentences; items combine them so texts vary without generating a million strings."""
    words = np.array(WORDS)
    lengths = rng.integers(min_words, max_words + 1, size=n)
    return [" ".join(words[rng.integers(0, len(words), size=k)]).capitalize() + "." for k in lengths]


def load_items_and_tasks(
    *, campaign_id: int, n: int, rng: np.random.Generator, prompt_words: tuple[int, int] = (8, 40),
    reply_words: tuple[int, int] = (20, 90), n_judgments: int = 0, chunk: int = 100_000,
) -> tuple[int, int]:
    """n items with two replies each and one task per item (x=0, y=1); returns (first item id, first task id).

    ``n_judgments`` is written into the tasks' counters when judgments are loaded afterwards.
    """
    prompts = text_pool(rng, 4096, *prompt_words)
    replies = text_pool(rng, 8192, *reply_words)
    first_item = next_ids("labeling_item", n)
    first_task = next_ids("labeling_task", n)
    now = datetime.now(UTC)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        p = rng.integers(0, len(prompts), size=stop - start)
        r = rng.integers(0, len(replies), size=(stop - start, 2))
        m = rng.integers(0, len(MODELS), size=(stop - start, 2))
        items = (
            (first_item + i, campaign_id, f"[{i}] {prompts[p[k]]}",
             orjson.dumps([{"text": replies[r[k, 0]], "model": MODELS[m[k, 0]]},
                           {"text": replies[r[k, 1]], "model": MODELS[m[k, 1]]}]).decode(),
             "{}", "", f"{campaign_id:016x}{i:048x}", now)
            for k, i in enumerate(range(start, stop))
        )
        copy_rows("labeling_item", ["id", "campaign_id", "prompt", "responses", "meta", "category", "content_hash",
                                    "created_at"], items)
        tasks = ((first_task + i, campaign_id, first_item + i, 0, 1, 1.0, n_judgments, 0, False, None)
                 for i in range(start, stop))
        copy_rows("labeling_task", ["id", "campaign_id", "item_id", "x_index", "y_index", "weight", "n_judgments",
                                    "n_open", "is_gold", "gold_preference"], tasks)
    return first_item, first_task


def _three_distinct(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """(n, 3) rater indexes, distinct within each row, uniform over k raters."""
    a = rng.integers(0, k, size=n)
    b = rng.integers(0, k - 1, size=n)
    b += b >= a
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    c = rng.integers(0, k - 2, size=n)
    c += c >= lo
    c += c >= hi
    return np.stack([a, b, c], axis=1)


def load_judgments(
    *, campaign_id: int, first_task: int, n_tasks: int, rater_ids: list[int], category_keys: list[str],
    axis_keys: list[str], n_severity: int, rng: np.random.Generator, overlap: int = 3, chunk: int = 50_000,
    progress=None,
) -> int:
    """overlap judgments per task by distinct raters, with their judged assignments; returns the count."""
    if overlap != 3:
        raise ValueError("the generator draws exactly three distinct raters per task")
    k = len(rater_ids)
    raters = np.array(rater_ids)
    # Rater noise: most are decent, a few sloppy, ~5% near random.
    sigma = rng.uniform(0.3, 0.9, size=k)
    sigma[rng.random(k) < 0.05] = 3.0
    bias = rng.normal(0, 0.15, size=k)
    n_cat = len(category_keys)
    cat_p = 1.0 / np.arange(1, n_cat + 1)  # a few categories dominate, as in real data
    cat_p /= cat_p.sum()
    cat_json = [orjson.dumps([key]).decode() for key in category_keys] + ["[]"]
    n_axes = len(axis_keys)
    # JSON of every combination of axis values for x and y (5 levels per axis), as shown and canonical.
    values = [[(code // 5 ** (n_axes - 1 - i)) % 5 for i in range(n_axes)] for code in range(5 ** n_axes)]
    axes_xy = [["{" + ",".join(f'"{key}":{{"x":{x[i]},"y":{y[i]}}}' for i, key in enumerate(axis_keys)) + "}"
                for y in values] for x in values]
    axes_ab = [["{" + ",".join(f'"{key}":{{"a":{a[i]},"b":{b[i]}}}' for i, key in enumerate(axis_keys)) + "}"
                for b in values] for a in values]
    total = 0
    first_assignment = next_ids("labeling_assignment", n_tasks * overlap)
    first_judgment = next_ids("labeling_judgment", n_tasks * overlap)
    base_time = np.datetime64(datetime.now(UTC).replace(tzinfo=None), "s") - np.timedelta64(20, "D")
    for start in range(0, n_tasks, chunk):
        m = min(n_tasks, start + chunk) - start
        who = _three_distinct(rng, m, k)  # (m, 3)
        latent = rng.normal(0, 1.6, size=m)  # x-vs-y quality difference; negative: x better
        pref = np.clip(np.rint(latent[:, None] + bias[who] + rng.normal(0, 1, size=(m, 3)) * sigma[who]), -2, 2)
        pref = pref.astype(np.int64)
        # Per reply (x, y): a true category on ~20% of replies, tagged by a rater with p=0.85, plus 2% stray tags.
        has_cat = rng.random((m, 2)) < 0.2
        true_cat = rng.choice(n_cat, size=(m, 2), p=cat_p)
        tagged = has_cat[:, None, :] & (rng.random((m, 3, 2)) < 0.85)
        stray = rng.random((m, 3, 2)) < 0.02
        stray_cat = rng.integers(0, n_cat, size=(m, 3, 2))
        latent_sev = np.where(has_cat, rng.integers(1, n_severity, size=(m, 2)),
                              (rng.random((m, 2)) < 0.1).astype(np.int64))
        sev = np.clip(latent_sev[:, None, :] + rng.choice([-1, 0, 1], p=[0.1, 0.8, 0.1], size=(m, 3, 2)), 0, n_severity - 1)
        latent_axes = rng.integers(0, 5, size=(m, 2, n_axes))
        axes = np.clip(latent_axes[:, None] + rng.choice([-1, 0, 1], p=[0.15, 0.7, 0.15], size=(m, 3, 2, n_axes)), 0, 4)
        swapped = rng.random((m, 3)) < 0.5
        seconds = np.round(rng.lognormal(3.2, 0.6, size=(m, 3)), 1)
        when = base_time + rng.integers(0, 20 * 86400, size=(m, 3)).astype("timedelta64[s]")
        # Everything per row as plain Python lists and lookup tables, then one text line per row.
        cat = np.where(tagged, true_cat[:, None, :], np.where(stray, stray_cat, n_cat))  # n_cat: no tag
        axis_code = (axes * (5 ** np.arange(n_axes - 1, -1, -1))).sum(axis=3)  # (m, 3, 2) in 0..5**n_axes
        task_ids = (first_task + start + np.arange(m)).tolist()
        rows = zip(task_ids, raters[who].tolist(), pref.tolist(), swapped.tolist(), cat.tolist(), sev.tolist(),
                   axis_code.tolist(), seconds.tolist(), np.datetime_as_string(when, unit="s").tolist(),
                   np.datetime_as_string(when + np.timedelta64(1800, "s"), unit="s").tolist())
        a_lines, j_lines = [], []
        j = start * 3
        for task_id, r_ids, prefs, sws, cats, sevs, codes, secs, times, expiries in rows:
            for rater, pxy, sw, (cx, cy), (sx, sy), (ax, ay), sec, at, exp in zip(
                r_ids, prefs, sws, cats, sevs, codes, secs, times, expiries
            ):
                a_id, j_id = first_assignment + j, first_judgment + j
                j += 1
                at += "+00"
                if sw:
                    shown = f"{-pxy}\t{{\"a\":{cat_json[cy]},\"b\":{cat_json[cx]}}}\t{{\"a\":{sy},\"b\":{sx}}}\t{axes_ab[ay][ax]}"
                else:
                    shown = f"{pxy}\t{{\"a\":{cat_json[cx]},\"b\":{cat_json[cy]}}}\t{{\"a\":{sx},\"b\":{sy}}}\t{axes_ab[ax][ay]}"
                a_lines.append(f"{a_id}\t{task_id}\t{campaign_id}\t{rater}\t{'t' if sw else 'f'}\tjudged\t{at}\t{exp}+00\t{at}\t\n")
                j_lines.append(f"{j_id}\t{a_id}\t{task_id}\t{campaign_id}\t{rater}\t{shown}\t{pxy}\t{cat_json[cx]}\t"
                               f"{cat_json[cy]}\t{sx}\t{sy}\t{axes_xy[ax][ay]}\t\t{sec}\t{at}\n")
        copy_text("labeling_assignment", ["id", "task_id", "campaign_id", "rater_id", "swapped", "status", "created_at",
                                          "expires_at", "finished_at", "skip_reason"], a_lines)
        copy_text("labeling_judgment", ["id", "assignment_id", "task_id", "campaign_id", "rater_id", "preference",
                                        "categories", "severity", "axes", "preference_xy", "categories_x", "categories_y",
                                        "severity_x", "severity_y", "axes_xy", "rationale", "seconds", "created_at"],
                  j_lines)
        judgments = j_lines
        total += len(judgments)
        if progress:
            progress(total)
    return total
