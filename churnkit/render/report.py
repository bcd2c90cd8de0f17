"""The retention report in every format: terminal, Markdown, HTML, JSON and CSV.

All renderers read one ``Report`` (``churnkit.report.result``) and are pure (no I/O), so
golden tests need no terminal. Charts arrive as ``ChartRef`` objects (a title, a text
alternative and an image source: a relative file path for Markdown, a ``data:`` URI for
HTML), drawn by ``churnkit.render.charts``. Every value taken from the data is escaped
for the format it lands in by the shared renderers of ``churnkit.render.formats``.
"""

from __future__ import annotations

from churnkit.render.report_data import report_csv, report_json
from churnkit.render.report_html import report_html
from churnkit.render.report_markdown import report_markdown
from churnkit.render.report_parts import ChartRef, embedded
from churnkit.render.report_table import report_table

__all__ = [
    "ChartRef",
    "embedded",
    "report_csv",
    "report_html",
    "report_json",
    "report_markdown",
    "report_table",
]
