"""Output formats every command shares, and what a file name's suffix implies."""

from __future__ import annotations

from enum import StrEnum


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    HTML = "html"


# Formats written as documents (to a file, with charts).
DOCUMENT_SUFFIX = {Format.MARKDOWN: ".md", Format.HTML: ".html"}
SUFFIX_FORMAT = {
    ".md": Format.MARKDOWN,
    ".markdown": Format.MARKDOWN,
    ".html": Format.HTML,
    ".htm": Format.HTML,
}
