"""Text cleaning: HTML to main text, NFKC, whitespace and control characters, boilerplate lines.

Pure functions, no I/O. The result keeps paragraph breaks (blank lines) and table rows (one per
line, cells separated by `` | ``) so the chunker can split on paragraphs and keep tables whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Literal

import trafilatura

ContentType = Literal["text/plain", "text/html", "text/markdown"]

#: Lines that carry no information for retrieval: navigation, sharing, legal footers.
DEFAULT_BOILERPLATE: tuple[str, ...] = (
    r"(click|tap) here\b.*",
    r"(subscribe|sign up|register) (now|today|for|to)\b.*",
    r"(follow|like) us on\b.*",
    r"share (this|on)\b.*",
    r"read (more|next|the full story)\b.*",
    r"advertisement",
    r"sponsored( content)?",
    r"all rights reserved\.?",
    r"(copyright|\(c\)|©)\s*\d{4}.*",
    r"cookie(s)? (policy|settings|preferences)\b.*",
    r"(back to top|skip to (main )?content)",
    r"(related|recommended) (articles|stories|coverage)\s*:?",
    r"(print|email) this (article|page)",
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_HSPACE = re.compile(r"[ \t\u00a0\u3000]+")
_BLANKS = re.compile(r"\n{3,}")


def compile_boilerplate(patterns: Iterable[str] = DEFAULT_BOILERPLATE) -> re.Pattern[str]:
    """One case-insensitive regex that matches a whole boilerplate line."""
    return re.compile(r"^(?:" + "|".join(f"(?:{p})" for p in patterns) + r")$", re.IGNORECASE)


_DEFAULT_BOILERPLATE_RE = compile_boilerplate()


def html_to_text(html: str) -> str:
    """The main text of an HTML document, tables kept as ``a | b | c`` rows.

    trafilatura's main-content extraction is used first; a page too small for it to find a main
    block falls back to its plain-text conversion, so no non-empty page becomes empty.
    """
    text = trafilatura.extract(
        html,
        output_format="markdown",
        include_tables=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        favor_recall=True,
        deduplicate=False,
    )
    if not text or not text.strip():
        text = trafilatura.html2txt(html) or ""
    return _markdown_tables_to_rows(text)


_HEADING = re.compile(r"^#{1,6}\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _markdown_tables_to_rows(text: str) -> str:
    """Drop markdown heading marks, table rule lines and outer pipes; rows stay one per line."""
    out: list[str] = []
    for line in text.split("\n"):
        if _TABLE_RULE.match(line):
            continue
        stripped = line.strip()
        heading = _HEADING.match(stripped)
        if heading:
            line = heading.group(1)
        elif stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
            cells = [c.strip() for c in stripped[1:-1].split("|")]
            line = " | ".join(cells)
        out.append(line)
    return "\n".join(out)


def normalize_text(text: str, boilerplate: re.Pattern[str] = _DEFAULT_BOILERPLATE_RE) -> str:
    """NFKC, control characters removed, spaces collapsed, boilerplate lines dropped.

    Paragraph breaks survive as one blank line; leading and trailing blank lines go.
    """
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines: list[str] = []
    for raw in text.split("\n"):
        line = _HSPACE.sub(" ", raw).strip()
        if line and boilerplate.match(line):
            continue
        lines.append(line)
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def clean_document(body: str, content_type: ContentType) -> str:
    """The clean text of a document body of the given content type."""
    if content_type == "text/html":
        body = html_to_text(body)
    return normalize_text(body)
