"""HTML and SVG built in Python, escaped by construction.

Every value reaches the page through :func:`el` (or a Jinja template with autoescape):
text children and attribute values are escaped, :class:`~markupsafe.Markup` children are
taken as they are. Tag and attribute names are always literals of this package.
"""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup, escape

__all__ = ["Markup", "el", "fmt_number", "join"]


def el(tag: str, attrs: Mapping[str, object] | None = None, *children: object) -> Markup:
    """``<tag attrs>children</tag>``; an attribute that is None or False is left out, True
    gives a bare attribute, floats are written with 4 decimals at most."""
    head = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        if value is True:
            head.append(name)
        else:
            head.append(f'{name}="{escape(fmt_number(value))}"')
    body = "".join(str(escape(c)) for c in children if c is not None)
    return Markup(f"<{' '.join(head)}>{body}</{tag}>")


def join(parts: list[Markup], sep: str = "") -> Markup:
    return Markup(escape(sep).join(parts))


def fmt_number(value: object) -> str:
    """Coordinates and figures: floats to at most 4 decimals, without trailing zeros."""
    if isinstance(value, float):
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value)
