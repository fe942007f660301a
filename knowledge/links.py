"""`links(<url>)`: a page whose direct links, one level deep, become sources of the same owner.

The request only records the page as a `url` source flagged `followLinks` (knowledge.services.source_create); the
links are found by the worker, in the page it fetched through the SSRF-safe client:

1. `page_links` reads the page's `<a href>` (and `<area href>`), resolved against `<base href>` and the final URL
   after redirects; keeps http(s) links to the same host name as that URL, without fragments, deduplicated by
   normalised URL, the page itself left out; the first COLLECTION_LINKS_MAX of them in page order.
2. `links_prepare`, before the indexing transaction: each link is checked like a URL a user gave (the SSRF rules:
   scheme, credentials, every address its host resolves to) into the fields of a new source; refused ones are
   counted, never fetched.
3. `links_insert`, in the transaction that makes the page `ready` (knowledge/indexing.py): the new sources are
   written under the owner's lock, with its limits and the duplicate check (a link already in the owner is
   skipped), so the page is ready exactly when its links are sources. The pipeline reports their ids and the task
   queues them after the commit. Pages found this way are not crawled further (one level).

Idempotent: processing the page again (reprocess) finds the same links, already present, and adds nothing.
"""

from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

from django.conf import settings

from config.api.errors import LimitExceeded, ValidationFailed
from knowledge import safe_http
from knowledge.errors import DuplicateSource, UrlNotAllowedError
from knowledge.extractors.text import decode
from knowledge.extractors.youtube import video_id as youtube_video_id
from knowledge.models import Source
from knowledge.source_creation import Owner, owner_fields, source_fields, source_insert

# Source metadata: the flag of a links() page, the page a found source came from, and what became of the links.
FOLLOW_LINKS = "followLinks"
LINKED_FROM = "linkedFrom"
SUMMARY = "links"


@dataclass
class PageLinks:
    urls: list[str] = field(default_factory=list)  # to add, in page order
    found: int = 0  # distinct http(s) links on the page
    other_host: int = 0
    over_cap: int = 0


@dataclass
class LinkSummary:
    """Stored in the page source's metadata under `links` once it is indexed."""

    found: int = 0
    otherHost: int = 0
    overCap: int = 0
    refused: int = 0
    alreadyPresent: int = 0
    overLimit: int = 0
    added: int = 0


@dataclass
class PreparedLinks:
    fields: list[dict] = field(default_factory=list)
    summary: LinkSummary = field(default_factory=LinkSummary)


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if not href:
            return
        if tag == "base" and self.base is None:
            self.base = href.strip()
        elif tag in ("a", "area"):
            self.hrefs.append(href.strip())


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def page_links(html: bytes, page_url: str, charset: str | None = None) -> PageLinks:
    """The links of a page to follow (see the module's docstring, step 1)."""
    parser = _Anchors()
    parser.feed(decode(html, charset))
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    host = _host(page_url)
    seen = {safe_http.normalize_url(page_url)}
    links = PageLinks()
    cap = settings.COLLECTION_LINKS_MAX
    for href in parser.hrefs:
        try:
            parts = urlsplit(urljoin(base, href))
            normalized = safe_http.normalize_url(urlunsplit(parts))
        except ValueError:
            continue  # a malformed href (bad port, bad IPv6 literal) is not a link to anything
        if parts.scheme not in ("http", "https") or normalized in seen:
            continue
        seen.add(normalized)
        links.found += 1
        if _host(normalized) != host:
            links.other_host += 1
        elif len(links.urls) >= cap:
            links.over_cap += 1
        else:
            links.urls.append(urlunsplit(parts._replace(fragment="")))
    return links


def links_prepare(*, owner: Owner, page: Source, links: PageLinks) -> PreparedLinks:
    """Checks each link into a new source's fields (step 2); outside any transaction (it resolves hosts)."""
    prepared = PreparedLinks(
        summary=LinkSummary(found=links.found, otherHost=links.other_host, overCap=links.over_cap)
    )
    for url in links.urls:
        video = youtube_video_id(url)
        try:
            prepared.fields.append(
                source_fields(
                    owner=owner,
                    kind=Source.Type.YOUTUBE if video else Source.Type.URL,
                    url=None if video else url,
                    youtube_url=url if video else None,
                    metadata={LINKED_FROM: page.id},
                )
            )
        except (UrlNotAllowedError, ValidationFailed):
            prepared.summary.refused += 1
    return prepared


def links_insert(*, owner: Owner, prepared: PreparedLinks) -> tuple[list[str], dict]:
    """Writes the prepared sources (step 3), in the caller's transaction with the owner locked; returns their ids
    (to queue after the commit) and the summary to store on the page."""
    summary = prepared.summary
    # Links already in the owner are told apart first, so a full owner reports them as present, not over its limit
    # (source_insert checks the limit before duplicates). The owner is locked: this cannot change before the end.
    present = set(
        Source.objects.filter(
            **owner_fields(owner), normalized_url__in=[f["normalized_url"] for f in prepared.fields]
        ).values_list("normalized_url", flat=True)
    )
    fresh = [fields for fields in prepared.fields if fields["normalized_url"] not in present]
    summary.alreadyPresent = len(prepared.fields) - len(fresh)
    created: list[str] = []
    for position, fields in enumerate(fresh):
        try:
            created.append(source_insert(owner=owner, fields=fields).id)
        except DuplicateSource:
            summary.alreadyPresent += 1
        except LimitExceeded:
            summary.overLimit = len(fresh) - position
            break
    summary.added = len(created)
    return created, asdict(summary)
