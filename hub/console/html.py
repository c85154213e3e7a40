"""A tiny HTML renderer: :class:`string.Template` with every value escaped.

Values are escaped unless they are :class:`Markup` (HTML this package built itself, from
escaped parts), so text from packages, the directory or the query string can never become
markup: a subject like ``<script>`` shows as text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from string import Template

# Elements that have no content and no end tag.
VOID = frozenset({"br", "input", "meta", "hr", "img", "link"})


class Markup(str):
    """A string already safe to put into HTML as it is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def render(template: str, **values: object) -> Markup:
    """*template* with ``$name`` placeholders filled by the escaped *values*."""
    return Markup(Template(template).substitute({k: escape(v) for k, v in values.items()}))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    return Markup(escape(sep).join(escape(p) for p in parts))


def tag(element: str, content: object = "", /, **attrs: object) -> Markup:
    """``<element attr="…">content</element>``. An attribute whose value is None or False is
    left out, True writes it bare; ``class_`` is written ``class``, ``font_size`` ``font-size``."""
    out = [element]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        key = key.rstrip("_").replace("_", "-")
        out.append(key if value is True else f'{key}="{escape(value)}"')
    if element in VOID:
        return Markup(f"<{' '.join(out)}>")
    return Markup(f"<{' '.join(out)}>{escape(content)}</{element}>")
