"""Every response carries a strict Content-Security-Policy, and nothing the pages ship needs it relaxed.

tests/specloop/test_csp_browser.py opens the pages in Chromium and counts violations; these checks are
the cheap half: the header itself, and no inline code or style left in the templates and scripts.
"""

import html
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted([*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")])
SCRIPTS = sorted((ROOT / "static" / "js").glob("*.js"))

POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'self'"],
    "object-src": ["'none'"],
}


def directives(response) -> dict[str, list[str]]:
    out = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        out[name] = values
    return out


@pytest.mark.parametrize("who, path, status", [
    (None, "/login/", 200),
    ("policy", "/specs/", 200),
    ("policy", "/api/v1/specs/", 200),
    ("rater", "/api/docs/", 200),
    ("policy", "/no-such-page/", 404),
])
def test_every_response_carries_the_strict_content_security_policy(client, actors, who, path, status):
    if who:
        client.force_login(getattr(actors, who))
    response = client.get(path)
    assert response.status_code == status
    assert directives(response) == POLICY


def test_the_api_docs_load_their_start_up_code_from_a_script_file_not_inline(client, actors):
    client.force_login(actors.rater)
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    init_url = html.unescape(re.findall(r'<script src="([^"]+)"', page)[-1])
    init = client.get(init_url)
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in init.content.decode()
    assert "<style" not in page


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(client, actors):
    client.force_login(actors.policy)
    page = client.get("/specs/").content.decode()
    config = json.loads(html.unescape(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', page).group(1)))
    assert config["includeIndicatorStyles"] is False and config["allowEval"] is False


INLINE = {
    "an inline <script> (only <script src> or json_script data)": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "a <style> block": re.compile(r"<style\b", re.I),
    "a style= attribute": re.compile(r"\sstyle\s*=", re.I),
    "an on...= event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
    "an hx-on handler or a js: value (htmx evaluates them)": re.compile(r"hx-on|hx-vars|[\"']js:", re.I),
    "an hx-trigger filter (htmx evaluates it)": re.compile(r"hx-trigger=\"[^\"]*\[", re.I),
}

EVAL_IN_SCRIPTS = {
    "eval()": re.compile(r"\beval\s*\("),
    "new Function()": re.compile(r"\bnew\s+Function\b"),
    "string timers": re.compile(r"set(Timeout|Interval)\(\s*[\"'`]"),
    "a style attribute set as text (use el.style or a class)": re.compile(r"setAttribute\(\s*[\"']style|\.cssText\b"),
    "markup with inline style or handlers": re.compile(r"(innerHTML|insertAdjacentHTML)[^;]*(style=|on[a-z]+=)"),
}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_code_or_style(path):
    text = path.read_text(encoding="utf-8")
    found = [f"{what}: {m.group(0)!r} on line {text.count(chr(10), 0, m.start()) + 1}"
             for what, pattern in INLINE.items() for m in pattern.finditer(text)]
    assert not found, f"{path.relative_to(ROOT)} breaks the Content-Security-Policy: {found}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_no_script_evaluates_strings_or_writes_inline_style(path):
    text = path.read_text(encoding="utf-8")
    found = [what for what, pattern in EVAL_IN_SCRIPTS.items() if pattern.search(text)]
    assert not found, f"static/js/{path.name} needs what the Content-Security-Policy forbids: {found}"
