"""Text the database cannot store, and bodies nested too deep to walk.

PostgreSQL refuses NUL characters in text and jsonb, and a lone UTF-16 surrogate (JSON ``"\\ud800"``)
cannot be encoded as UTF-8 at all: either would reach the database as a 500. Every way text comes in
(JSON and YAML bodies, query strings, form posts, item files) is checked here first, so the user gets a
400 naming the field or the line instead.
"""

import re
from typing import Any

MAX_DEPTH = 64  # nesting levels a body may have; a spec document needs 5, a judgment 3
MAX_NODES = 1_000_000  # values in one body, counted as expanded (a YAML alias counts each time it is used)

_BAD = re.compile("[\x00\ud800-\udfff]")  # for escaping; a regex scan is ~50x slower than _first_bad


def _first_bad(text: str) -> int:
    """Index of the first NUL or lone surrogate in ``text``, or -1 (C-speed: memchr and the UTF-8 codec)."""
    nul = text.find("\x00")
    if text.isascii():
        return nul
    try:
        text.encode("utf-8")  # fails exactly on lone surrogates
    except UnicodeEncodeError as exc:
        return exc.start if nul < 0 else min(nul, exc.start)
    return nul


def bad_text_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    index = _first_bad(text)
    if index < 0:
        return None
    char = text[index]
    where = f"at character {index + 1}"
    if char == "\x00":
        return f"contains a NUL character (\\u0000) {where}; remove it"
    return f"contains a lone surrogate (\\u{ord(char):04x}) {where}, which is not text; send valid Unicode"


def bad_text_line(text: str) -> tuple[int, str] | None:
    """``(line number, reason)`` of the first line of ``text`` that cannot be stored, or None."""
    index = _first_bad(text)
    if index < 0:
        return None
    line = text.count("\n", 0, index) + 1
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return line, bad_text_reason(text[start:] if end < 0 else text[start:end]) or ""


def escaped(text: str) -> str:
    """``text`` with the characters above written as escapes, safe to name in an answer."""
    if _first_bad(text) < 0:
        return text
    return _BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _key_path(path: str, key: Any) -> str:
    key = escaped(str(key))
    return f"{path}.{key}" if path else key


def check_tree(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
               limit: int = 10) -> list[dict[str, str]]:
    """Problems in a parsed body: ``[{"field": "document.categories[0].name", "message": ...}]``.

    Walks with an explicit stack (a deep body must not exhaust Python's recursion), checks every string
    and mapping key, and stops at ``max_depth`` levels, after ``max_nodes`` values (a YAML "billion
    laughs" expands without end) or after ``limit`` problems. Only containers go on the stack and a
    child's path is spelled out only when it is reported: a judgment body costs a few microseconds.
    """
    errors: list[dict[str, str]] = []
    if isinstance(value, str):
        if reason := bad_text_reason(value):
            errors.append({"field": path or "body", "message": reason})
        return errors
    if not isinstance(value, (dict, list, tuple)):
        return errors
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    visited = 1
    def search(text: str) -> bool:
        return "\x00" in text or (not text.isascii() and _first_bad(text) >= 0)

    while stack and len(errors) < limit:
        node, where, depth = stack.pop()
        if depth >= max_depth:
            errors.append({"field": where or "body", "message": f"nested deeper than {max_depth} levels"})
            continue
        visited += len(node)
        if visited > max_nodes:
            errors.append({"field": path or "body", "message": f"holds more than {max_nodes} values"})
            break
        is_dict = isinstance(node, dict)
        pending = []
        for key, child in (node.items() if is_dict else enumerate(node)):
            if is_dict and type(key) is str and search(key):
                errors.append({"field": _key_path(where, key), "message": f"the key {bad_text_reason(key)}"})
            if type(child) is str:
                if search(child):
                    child_path = _key_path(where, key) if is_dict else f"{where}[{key}]"
                    errors.append({"field": child_path or "body", "message": bad_text_reason(child) or ""})
            elif isinstance(child, (dict, list, tuple)):
                pending.append((child, _key_path(where, key) if is_dict else f"{where}[{key}]", depth + 1))
        stack.extend(reversed(pending))  # reversed: the stack pops them in document order
    return errors
