"""Web pages: the main content (navigation, sidebars and footers dropped) with trafilatura, and the title."""

from html.parser import HTMLParser

import trafilatura

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted
from knowledge.extractors.text import decode, extract_markdown


def extract_html(html: bytes | str, url: str = "", charset: str | None = None) -> Extracted:
    text = html if isinstance(html, str) else decode(html, charset)
    markdown = trafilatura.extract(
        text,
        url=url or None,
        output_format="markdown",
        include_tables=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        favor_recall=True,
    )
    if not markdown or not markdown.strip():
        depth = nesting_depth(text)
        if depth > PARSER_DEPTH_LIMIT:
            raise ExtractionError(
                "empty_content",
                f"No readable text was found on the page: its elements nest {depth} levels deep, and the HTML "
                f"parser reads no deeper than {PARSER_DEPTH_LIMIT}.",
            )
        raise ExtractionError("empty_content", "No readable text was found on the page.")
    metadata = trafilatura.extract_metadata(text, default_url=url or None)
    extracted = extract_markdown(markdown)
    title = (metadata.title if metadata and metadata.title else "") or extracted.title
    extracted.title = title.strip()
    if metadata is not None:
        for key in ("author", "date", "description", "sitename"):
            value = getattr(metadata, key, None)
            if isinstance(value, str) and value:
                extracted.metadata[key] = value[:500]
    return extracted


# libxml2 (under lxml and trafilatura) stops descending past 256 levels; text below that is lost.
PARSER_DEPTH_LIMIT = 256
VOID_ELEMENTS = frozenset("area base br col embed hr img input link meta param source track wbr".split())


class _DepthCounter(HTMLParser):
    """Only on the failure path, to say why: the standard library's parser streams and never recurses."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.depth = self.deepest = 0

    def handle_starttag(self, tag, attrs):
        if tag not in VOID_ELEMENTS:
            self.depth += 1
            self.deepest = max(self.deepest, self.depth)

    def handle_endtag(self, tag):
        if tag not in VOID_ELEMENTS:
            self.depth = max(0, self.depth - 1)


def nesting_depth(html: str) -> int:
    counter = _DepthCounter()
    counter.feed(html)
    counter.close()
    return counter.deepest
