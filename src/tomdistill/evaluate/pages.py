"""Report pages: Markdown rendered from a Jinja template, and a self-contained HTML copy of it.

Reports quote user text (context and scenario names, split names, model specs, file names), and
python-markdown passes raw HTML and links through. So every `{{ }}` in a report template is
escaped as literal text (`md_text`) unless it is `Markup` that tomdistill built itself (numbers,
image paths, Markdown assembled from escaped parts). Both the evaluation report and the
population report render through `markdown_env` and `write_pages`.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

# td nowrap: a cell holds one short value ("48.0 (exact)", "99.9% [99.9, 100.0]"); in a table that fills
# the page (many rows with long cell names), the browser broke it over two lines before the long headers.
_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td{white-space:nowrap}td:first-child,th:first-child{text-align:left}img{max-width:100%}code{background:#f3f3f3}</style></head>
<body>{{ body }}</body></html>
"""

# Markdown syntax that can make links, images, code spans, emphasis or table cells out of text.
# An underscore inside a word is left alone: Markdown does not read it as emphasis there, and
# ids such as prisoners_dilemma stay readable in report.md.
_MD_SPECIAL = re.compile(r"[\\`*\[\]|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(value: Any) -> str:
    """`value` as literal text inside Markdown that becomes HTML: no tags, links or table breaks."""
    text = " ".join(str(value).splitlines())  # a line break would end a table row or a list item
    text = html.escape(text, quote=False)  # &, <, >: python-markdown passes raw HTML through
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup | jinja2.Undefined):
        return value
    return md_text(value)


def trusted(format_fn: Callable[..., str]) -> Callable[..., Markup]:
    """A formatter of numbers whose output needs no escaping (keeps "[1.0, 2.0]" as it is in report.md)."""
    return lambda *args, **kwargs: Markup(format_fn(*args, **kwargs))


def markdown_env() -> jinja2.Environment:
    """The Jinja environment of every report template: each `{{ }}` is escaped unless it is Markup."""
    return jinja2.Environment(undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                              finalize=_finalize)


def write_pages(out: Path, page: Callable[[dict[str, Markup]], str], pngs: dict[str, Path], *, title: str) -> None:
    """report.md (images by file name) and a self-contained report.html (images inlined) in `out`.

    `page(images)` renders the Markdown, given where each PNG is to be found by its key. PNG file
    names are tomdistill's own (safe characters only), so they go in unescaped."""
    (out / "report.md").write_text(page({k: Markup(p.name) for k, p in pngs.items()}))
    inlined = {k: Markup("data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()) for k, p in pngs.items()}
    import markdown

    body = markdown.markdown(page(inlined), extensions=["tables"])
    page_html = jinja2.Environment(autoescape=True).from_string(_HTML).render(body=Markup(body), title=title)
    (out / "report.html").write_text(page_html)
