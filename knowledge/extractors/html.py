"""Web pages: the main content (navigation, sidebars and footers dropped) with trafilatura, and the title."""

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
