"""links(<url>): a page's direct links on the same host become sources of its collection, one level deep, capped,
deduplicated, each checked by the SSRF rules; found by the worker, never in the request. Local sites stand in for
the web (tests.fakesite); the worker reaches loopback only because tests allow it (SSRF_ALLOW_LOOPBACK)."""

import pytest

from knowledge import safe_http, services, tasks
from knowledge.links import page_links
from knowledge.models import Collection, Source
from tests.fakesite import FakeSite
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db


def article(title: str, text: str, links: str = "") -> str:
    return (
        f"<html><head><title>{title}</title></head><body><nav><a href='/docs/index'>Home</a></nav>"
        f"<main><h1>{title}</h1><p>{text}</p>{links}</main></body></html>"
    )


def index_page(port: int) -> str:
    here = f"http://127.0.0.1:{port}"
    links = [
        "/docs/a",  # same host
        "b",  # relative: /docs/b
        "/docs/a#install",  # the same page again: fragment
        "/docs/a?utm_source=newsletter",  # and tracking parameters
        "/docs/index",  # the page itself
        "#top",
        f"{here}/docs/missing",  # same host, absolute; answers 404
        f"http://crew:secret@127.0.0.1:{port}/docs/private",  # same host with credentials: refused
        f"http://localhost:{port}/docs/c",  # another host name for this machine
        "http://10.0.0.5/admin",  # private addresses
        "http://169.254.169.254/latest/meta-data/",
        "https://example.org/elsewhere",  # another site
        "mailto:crew@example.org",
        "javascript:void(0)",
        f"ftp://127.0.0.1:{port}/docs/file",
    ]
    anchors = "".join(f"<li><a href='{href}'>link</a></li>" for href in links)
    return article(
        "Kestrel Bay harbour handbook",
        "The handbook of the Kestrel Bay harbour: cranes, tides, the fog signal and the night crew's duties.",
        f"<ul>{anchors}</ul>",
    )


def serve_docs(site: FakeSite) -> FakeSite:
    site.route("/docs/index", index_page(site.port), content_type="text/html; charset=utf-8")
    site.route(
        "/docs/a",
        article(
            "Crane maintenance",
            "The harbour crane's hydraulic pump takes the gasket ZX-4471-B, replaced every two years.",
            "<a href='/docs/c'>further reading</a>",  # one level deep only: never followed
        ),
        content_type="text/html",
    )
    site.route(
        "/docs/b",
        article("Tide tables", "High tide at Kestrel Bay comes forty minutes after Port Ellen's."),
        content_type="text/html",
    )
    site.route("/docs/c", article("Further reading", "Nothing to see."), content_type="text/html")
    site.route("/docs/missing", "gone", status=404)
    site.route(
        "/docs/plain",
        article("Plain page", "A page added on its own line.", "<a href='/docs/c'>further</a>"),
        content_type="text/html",
    )
    return site


@pytest.fixture
def collection(workspace):
    return Collection.objects.create(workspace=workspace, name="Kestrel Bay", slug="kestrel-bay")


@pytest.fixture
def loopback_allowed(settings):
    settings.SSRF_ALLOW_LOOPBACK = True  # this process fetches (the stage runs in-process) and checks URLs


def process(source_id: str, capture) -> list:
    """Runs the processing stage in this process; returns the tasks it queued, without running them."""
    with capture(execute=False) as queued:
        tasks.source_process.apply((source_id,)).get()
    return queued


def added_paths(collection, page) -> dict[str, dict]:
    return {
        source.url.split(":", 2)[2].split("/", 1)[1]: source.metadata
        for source in collection.sources.exclude(id=page.id)
    }


def test_page_links_keeps_same_host_web_links_once_each_in_page_order():
    html = index_page(8000).encode()
    links = page_links(html, "http://127.0.0.1:8000/docs/index")
    assert links.urls == [
        "http://127.0.0.1:8000/docs/a",
        "http://127.0.0.1:8000/docs/b",
        "http://127.0.0.1:8000/docs/missing",
        "http://crew:secret@127.0.0.1:8000/docs/private",
    ]
    assert (links.found, links.other_host, links.over_cap) == (8, 4, 0)
    based = page_links(
        b"<base href='https://docs.example.com/v2/'><a href='intro'>i</a>", "https://docs.example.com/"
    )
    assert based.urls == ["https://docs.example.com/v2/intro"]
    broken = page_links(
        b"<a href='http://[::1'>x</a><a href='http://h:99999/'>y</a><a href=''>z</a>", "https://h/"
    )
    assert broken.urls == [] and broken.found == 0


def test_a_links_page_adds_its_same_host_links_when_it_is_indexed(
    collection, loopback_allowed, django_capture_on_commit_callbacks
):
    with serve_docs(FakeSite()) as site:
        page = services.source_create(
            collection=collection, kind="url", url=site.url("/docs/index"), follow_links=True
        )
        assert page.metadata == {"followLinks": True}
        queued = process(page.id, django_capture_on_commit_callbacks)
        requested = [r.path for r in site.requests]
    page.refresh_from_db()
    assert page.status == "ready" and page.chunk_count > 0, page.error_message
    assert page.metadata["links"] == {
        "found": 8,
        "otherHost": 4,
        "overCap": 0,
        "refused": 1,
        "alreadyPresent": 0,
        "overLimit": 0,
        "added": 3,
    }
    assert requested == ["/docs/index"]  # the request only recorded the page; the links are the worker's
    found = added_paths(collection, page)
    assert sorted(found) == ["docs/a", "docs/b", "docs/missing"]
    assert all(metadata == {"linkedFrom": page.id} for metadata in found.values())
    linked = collection.sources.exclude(id=page.id)
    assert set(linked.values_list("status", "type")) == {("pending", "url")}
    assert len(queued) == 3  # each new source queued once the page's transaction committed


def test_found_pages_are_not_crawled_further_and_reprocessing_adds_nothing(
    collection, loopback_allowed, django_capture_on_commit_callbacks
):
    with serve_docs(FakeSite()) as site:
        page = services.source_create(
            collection=collection, kind="url", url=site.url("/docs/index"), follow_links=True
        )
        process(page.id, django_capture_on_commit_callbacks)
        for source in collection.sources.exclude(id=page.id):
            assert process(source.id, django_capture_on_commit_callbacks) == []
        statuses = dict(collection.sources.values_list("url", "status"))
        assert statuses == {
            site.url("/docs/index"): "ready",
            site.url("/docs/a"): "ready",
            site.url("/docs/b"): "ready",
            site.url("/docs/missing"): "failed",
        }
        services.source_reprocess(source=page)
        assert process(page.id, django_capture_on_commit_callbacks) == []
        requested = {r.path for r in site.requests}
    page.refresh_from_db()
    assert page.status == "ready" and page.metadata["links"]["alreadyPresent"] == 3
    assert page.metadata["links"]["added"] == 0 and collection.sources.count() == 4
    assert "/docs/c" not in requested and "/docs/private" not in requested


def test_links_are_capped_by_the_setting_and_by_the_collections_source_limit(
    collection, workspace, loopback_allowed, settings, django_capture_on_commit_callbacks
):
    settings.COLLECTION_LINKS_MAX = 2
    with serve_docs(FakeSite()) as site:
        page = services.source_create(
            collection=collection, kind="url", url=site.url("/docs/index"), follow_links=True
        )
        process(page.id, django_capture_on_commit_callbacks)
        page.refresh_from_db()
        assert page.metadata["links"]["overCap"] == 2 and page.metadata["links"]["added"] == 2
        assert sorted(added_paths(collection, page)) == ["docs/a", "docs/b"]

        settings.COLLECTION_LINKS_MAX = 50
        workspace.source_limit_per_mind = 3
        workspace.save()
        services.source_reprocess(source=page)
        assert process(page.id, django_capture_on_commit_callbacks) == []
    page.refresh_from_db()
    summary = page.metadata["links"]
    assert page.status == "ready"  # a full collection does not fail the page
    assert (summary["alreadyPresent"], summary["added"], summary["refused"], summary["overLimit"]) == (
        2,
        0,
        1,
        1,
    )
    assert collection.sources.count() == 3


def test_a_same_host_link_whose_host_now_resolves_inside_is_refused(
    collection, loopback_allowed, monkeypatch, django_capture_on_commit_callbacks
):
    answers = iter(["127.0.0.1"])  # the page's own fetch; every later lookup says 10.0.0.7 (DNS rebinding)
    monkeypatch.setattr(safe_http, "_resolve", lambda host, port: [next(answers, "10.0.0.7")])
    with serve_docs(FakeSite()) as site:
        url = f"http://docs.kestrel.example:{site.port}/docs/index"
        page = Source.objects.create(
            workspace=collection.workspace,
            collection=collection,
            type="url",
            name="Handbook",
            url=url,
            normalized_url=safe_http.normalize_url(url),
            metadata={"followLinks": True},
        )
        site.route(
            "/docs/index",
            index_page(site.port).replace("127.0.0.1", "docs.kestrel.example"),
            content_type="text/html",
        )
        assert process(page.id, django_capture_on_commit_callbacks) == []
        requested = [r.path for r in site.requests]
    page.refresh_from_db()
    assert page.status == "ready" and page.metadata["links"]["refused"] == 4
    assert page.metadata["links"]["added"] == 0 and collection.sources.count() == 1
    assert requested == ["/docs/index"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_openindex_links_line_is_crawled_one_level_by_the_worker(api, workspace, celery_worker, settings):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API process checks the knowledgeBase's URLs too
    with serve_docs(FakeSite()) as site:
        created = api.post(
            "/api/collections",
            {
                "name": "Kestrel Bay",
                "knowledgeBase": f"links({site.url('/docs/index')})\n\n{site.url('/docs/plain')}\n",
            },
        )
        assert created.status_code == 200, created.json()
        collection_id = created.json()["collectionId"]
        listed = api.get("/api/collections").json()["collections"]
        assert [c["status"] for c in listed] == ["indexing"]
        assert {s["followLinks"] for s in listed[0]["sources"]} == {True, False}

        def crawled():
            sources = Source.objects.filter(collection_id=collection_id)
            return sources.count() == 5 and all(s.is_finished for s in sources)

        wait_for(crawled, timeout=120, what="the page, its links and the plain page")
        requests = list(site.requests)
    collection = api.get("/api/collections").json()["collections"][0]
    assert collection["id"] == collection_id and collection["status"] == "ready"
    by_url = {s["url"]: s for s in collection["sources"]}
    page = by_url[site.url("/docs/index")]
    assert page["followLinks"] and page["linkedFrom"] is None and page["status"] == "ready"
    for path in ("/docs/a", "/docs/b", "/docs/missing"):
        assert by_url[site.url(path)]["linkedFrom"] == page["id"], celery_worker.log_text()
    assert (
        by_url[site.url("/docs/missing")]["status"] == "failed" and by_url[site.url("/docs/missing")]["error"]
    )
    assert not by_url[site.url("/docs/plain")]["followLinks"]
    assert {r.path for r in requests} == {"/docs/index", "/docs/a", "/docs/b", "/docs/missing", "/docs/plain"}
    assert all(not r.headers.get("host", "").startswith("localhost") for r in requests)

    found = api.get("/api/collections/search", {"q": "gasket for the crane's hydraulic pump"}).json()
    assert found["ok"] and found["results"][0]["url"] == site.url("/docs/a")
    assert found["results"][0]["source"] == "web" and found["results"][0]["collectionId"] == collection_id
