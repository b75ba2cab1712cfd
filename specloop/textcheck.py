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

_BAD = re.compile("[\x00\ud800-\udfff]")


def bad_text_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    found = _BAD.search(text)
    if found is None:
        return None
    char = found.group()
    where = f"at character {found.start() + 1}"
    if char == "\x00":
        return f"contains a NUL character (\\u0000) {where}; remove it"
    return f"contains a lone surrogate (\\u{ord(char):04x}) {where}, which is not text; send valid Unicode"


def bad_text_line(text: str) -> tuple[int, str] | None:
    """``(line number, reason)`` of the first line of ``text`` that cannot be stored, or None."""
    found = _BAD.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1
    start = text.rfind("\n", 0, found.start()) + 1
    end = text.find("\n", found.start())
    return line, bad_text_reason(text[start:] if end < 0 else text[start:end]) or ""


def escaped(text: str) -> str:
    """``text`` with the characters above written as escapes, safe to name in an answer."""
    return _BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _key_path(path: str, key: Any) -> str:
    key = escaped(str(key))
    return f"{path}.{key}" if path else key


def check_tree(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
               limit: int = 10) -> list[dict[str, str]]:
    """Problems in a parsed body: ``[{"field": "document.categories[0].name", "message": ...}]``.

    Walks with an explicit stack (a deep body must not exhaust Python's recursion), checks every string
    and mapping key, and stops at ``max_depth`` levels, after ``max_nodes`` values (a YAML "billion
    laughs" expands without end) or after ``limit`` problems.
    """
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    visited = 0
    while stack and len(errors) < limit:
        visited += 1
        if visited > max_nodes:
            errors.append({"field": path or "body", "message": f"holds more than {max_nodes} values"})
            break
        node, where, depth = stack.pop()
        if isinstance(node, str):
            reason = bad_text_reason(node)
            if reason:
                errors.append({"field": where or "body", "message": reason})
            continue
        if not isinstance(node, (dict, list, tuple)):
            continue
        if depth >= max_depth:
            errors.append({"field": where or "body", "message": f"nested deeper than {max_depth} levels"})
            continue
        if isinstance(node, dict):
            children = []
            for key, child in node.items():
                if isinstance(key, str) and (reason := bad_text_reason(key)):
                    errors.append({"field": _key_path(where, key), "message": f"the key {reason}"})
                children.append((child, _key_path(where, key)))
        else:
            children = [(child, f"{where}[{i}]") for i, child in enumerate(node)]
        for child, child_path in reversed(children):  # reversed: the stack pops them in document order
            stack.append((child, child_path, depth + 1))
    return errors
