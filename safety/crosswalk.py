"""Public taxonomy codes → spec category keys, through the spec's crosswalk (SPEC section 1).

Each spec category may list, per public taxonomy, the codes it covers (``{"ailuminate": ["vcr"]}``). One code
may map to several categories (AILuminate ``vcr`` is violent crime and terrorism). Codes and taxonomy names
are compared stripped and case-insensitively, so ``"VCR "`` in a file is ``vcr`` in the spec. Django-free:
the training command and the prompt-set import both build their mapping here.
"""

from collections.abc import Iterable


def code_key(code: str) -> str:
    """How a code (or a taxonomy name) is compared: stripped, case-folded, inner whitespace collapsed."""
    return " ".join(str(code).split()).casefold()


def crosswalk_index(categories: list[dict]) -> dict[str, dict[str, list[str]]]:
    """{taxonomy: {code: [category keys in the spec's order]}} from a spec version's categories."""
    index: dict[str, dict[str, list[str]]] = {}
    for category in categories:
        for taxonomy, codes in (category.get("crosswalk") or {}).items():
            if isinstance(codes, str):
                codes = [codes]
            by_code = index.setdefault(code_key(taxonomy), {})
            for code in codes or []:
                keys = by_code.setdefault(code_key(code), [])
                if category["key"] not in keys:
                    keys.append(category["key"])
    return index


def map_codes(index: dict[str, dict[str, list[str]]], taxonomy: str,
              codes: Iterable[str]) -> tuple[list[str], list[str]]:
    """(category keys the codes map to, first seen first, no repeats; the codes that mapped to nothing, as given).

    Blank codes are neither mapped nor unmapped: an empty cell says nothing.
    """
    by_code = index.get(code_key(taxonomy), {})
    keys: list[str] = []
    unmapped: list[str] = []
    for code in codes:
        if not str(code).strip():
            continue
        found = by_code.get(code_key(code))
        if not found:
            if str(code).strip() not in unmapped:
                unmapped.append(str(code).strip())
            continue
        keys.extend(k for k in found if k not in keys)
    return keys, unmapped
