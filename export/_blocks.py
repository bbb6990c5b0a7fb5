"""The report's building blocks: cells, tables, paragraphs, plots and sections, rendered as Markdown and HTML.

Both :mod:`._report` and :mod:`._report_anomaly` build sections from these, so neither imports the other's internals.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


def cell_text(v: Any) -> str:
    """A value as a table cell's text: yes/no, 4 significant digits, thousands separators, an en dash for None."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    if v is None:
        return "–"
    return str(v)


def escape(v: Any) -> str:
    """``v`` as HTML text (quotes escaped too)."""
    return html.escape(str(v), quote=True)


@dataclass(frozen=True)
class Cell:
    """A table cell: ``text`` is the Markdown cell and, escaped, the HTML one unless ``html`` (markup) is given."""

    text: str
    css: str = ""  # the HTML cell's class
    html: str | None = None


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    right: set[int] = field(default_factory=set)  # right-aligned Markdown columns
    only: str | None = None  # "md" or "html": in that report only


@dataclass(frozen=True)
class Text:
    """A paragraph as Markdown (``""``: an empty one) and as HTML markup; ``None``: not in that report."""

    md: str | None
    html: str | None

    @classmethod
    def para(cls, text: str) -> Text:
        return cls(text, f"<p>{escape(text)}</p>")


@dataclass(frozen=True)
class Plot:
    """The Pareto plot of the variant rows, with its heading; ``report.html`` only, drawn when rendered."""

    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Section:
    """A heading (none for ``title=None``) and its blocks; ``only`` as for :class:`Table`."""

    title: str | None
    blocks: list[Table | Text | Plot]
    html_title: str | None = None  # when the page's heading differs from the Markdown one
    only: str | None = None
