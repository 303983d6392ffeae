"""HTML to readable Markdown-like text for ``web_fetch``, on the standard library's parser.

Only what a model needs to read a page: headings, paragraphs, lists, links, emphasis, code
and preformatted blocks, table rows as ``|``-separated lines. Scripts, styles, navigation
chrome the page marks as such (``nav``, ``footer``...) and invisible elements are dropped.
Pure: text in, text out.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "noscript", "template", "svg", "head", "nav", "footer", "iframe"}
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "aside", "blockquote", "figure",
    "table", "tr", "ul", "ol", "dl", "dt", "dd", "form", "hr", "br", "li", "h1", "h2", "h3",
    "h4", "h5", "h6", "pre",
}  # fmt: skip
_VOID = {"br", "hr", "img", "input", "meta", "link", "source", "wbr", "area", "col", "embed"}
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.lists: list[str] = []  # "ul" or "ol:<next number>"
        self.links: list[str | None] = []
        self.title = ""
        self.in_title = False
        self.started = False  # some text was written

    def newline(self, count: int = 1) -> None:
        """End the current line, with ``count - 1`` blank lines after it (none at the top)."""
        have = 0
        for piece in reversed(self.out):
            stripped = piece.rstrip("\n")
            have += len(piece) - len(stripped)
            if stripped:
                break
        if self.started:
            self.out.append("\n" * max(count - have, 0))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "title":
            self.in_title = True
        if (
            self.skipping
            or tag in _SKIP
            or "hidden" in values
            or values.get("aria-hidden") == "true"
        ):
            if tag not in _VOID:
                self.skipping += 1
            return
        if tag in _BLOCK:
            self.newline(2 if tag in ("p", "pre", "table", "blockquote") or tag[0] == "h" else 1)
        if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            self.out.append("#" * int(tag[1]) + " ")
        elif tag in ("ul", "ol"):
            self.lists.append("ul" if tag == "ul" else "ol:1")
        elif tag == "li":
            indent = "  " * max(len(self.lists) - 1, 0)
            kind = self.lists[-1] if self.lists else "ul"
            if kind.startswith("ol:"):
                number = int(kind[3:])
                self.lists[-1] = f"ol:{number + 1}"
                self.out.append(f"{indent}{number}. ")
            else:
                self.out.append(f"{indent}- ")
        elif tag == "a":
            href = values.get("href")
            self.links.append(href if href and not href.startswith("javascript:") else None)
            self.out.append("[" if self.links[-1] else "")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("_")
        elif tag == "code" and not self.pre:
            self.out.append("`")
        elif tag == "pre":
            self.pre += 1
            self.out.append("```\n")
        elif tag in ("td", "th"):
            self.out.append("| ")
        elif tag == "hr":
            self.out.append("---")
            self.newline()
        elif tag == "img" and values.get("alt"):
            self.out.append(f"[image: {values['alt']}]")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.skipping:
            if tag in _SKIP or tag not in _VOID:
                self.skipping -= 1
            return
        if tag == "a" and self.links:
            href = self.links.pop()
            if href:
                self.out.append(f"]({href})")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("_")
        elif tag == "code" and not self.pre:
            self.out.append("`")
        elif tag == "pre" and self.pre:
            self.pre -= 1
            self.newline()
            self.out.append("```")
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag in ("td", "th"):
            self.out.append(" ")
        if tag in _BLOCK:
            self.newline(2 if tag in ("p", "pre", "table", "blockquote") or tag[0] == "h" else 1)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        if self.skipping:
            return
        self.started = self.started or bool(data.strip())
        if self.pre:
            self.out.append(data)
            return
        text = _SPACES.sub(" ", data)
        if not text.strip() and (not self.out or self.out[-1].endswith((" ", "\n"))):
            return
        if self.out and self.out[-1].endswith(("\n", " ", "- ", ". ", "[")):
            text = text.lstrip()
        self.out.append(text)


def html_to_text(html: str) -> str:
    """The page's readable text; its ``<title>`` first as a heading when it has one."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    lines = [line.rstrip() for line in "".join(converter.out).splitlines()]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join(converter.title.split())
    if title and not body.startswith(f"# {title}"):
        return f"# {title}\n\n{body}" if body else f"# {title}"
    return body
