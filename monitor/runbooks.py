"""The runbooks page at `/runbooks`: docs/runbooks.md rendered to HTML, one anchor per alert.

Every alert's `runbook_url` points at `<base>/runbooks#<alertname lower-cased>`, so the collector
serves the runbooks itself and a link works without internet access to any repository.

docs/runbooks.md is the one source. A wheel carries a copy as package data (`monitor/runbooks.md`,
put there by setup.py's build step); a checkout reads docs/ directly. The markdown is rendered by
markdown-it-py with raw HTML off (it is escaped) and its link validation on (no `javascript:`), and
headings get GitHub's anchors (`## SchoolLinkDown` -> `id="schoollinkdown"`), so links written for
the repository's view of the file work here too.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from markdown_it import MarkdownIt

_CHECKOUT_SOURCE = Path(__file__).resolve().parent.parent / "docs" / "runbooks.md"

CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:60em;color:#222;"
    "line-height:1.45}h2{border-top:1px solid #ddd;padding-top:.8em}"
    "code{background:#f4f4f4;padding:0 .2em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ddd;padding:.2em .5em}"
)
# The page's only inline code is its stylesheet: the policy allows exactly that and nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def source() -> str:
    """The markdown text: the packaged copy in an installed wheel, docs/ in a checkout."""
    packaged = resources.files("monitor").joinpath("runbooks.md")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return _CHECKOUT_SOURCE.read_text(encoding="utf-8")


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def render_markdown(text: str) -> str:
    """The HTML body of `text`, every heading with its anchor."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    seen: dict[str, int] = {}
    for opening, inline in itertools.pairwise(tokens):
        if opening.type == "heading_open":
            anchor = slug(inline.content)
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            opening.attrSet("id", anchor if count == 0 else f"{anchor}-{count}")
    return md.renderer.render(tokens, md.options, {})


@lru_cache(maxsize=1)
def page() -> bytes:
    """The whole page (rendered once: the source does not change while the collector runs)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape('schoolnet-monitor runbooks')}</title>"
        f"<style>{CSS}</style></head><body>\n"
        f"{render_markdown(source())}</body></html>\n"
    ).encode()
