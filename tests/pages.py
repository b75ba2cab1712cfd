"""Shared by the page tests (Django test client): the htmx header, a script tag to escape, and readers for a
rendered page's text and its json_script data."""

import json
import re
from html import unescape

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"


def page_text(response) -> str:
    """The page's text without tags, whitespace collapsed, entities decoded: what a reader sees."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def json_script(response, element_id: str):
    """The data a ``{{ value|json_script:element_id }}`` put in the page."""
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, f"no #{element_id} in the page"
    return json.loads(match.group(1))
