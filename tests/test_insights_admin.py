"""The admin's read-only insights page: rendered for a staff user with the view permission, its SVG charts and
numbers from seeded conversations, every label escaped, the same date range as the API, the visitors' CSV."""

import csv
import io
import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User

from minds.models import Mind
from tests.helpers import admin_path
from tests.test_insights import DAY1, FROM, TO, conversation, seed, turn

pytestmark = pytest.mark.django_db


def staff_client(client, *permissions: str):
    user = User.objects.create_user("staff", "staff@example.com", "pw-for-tests-only", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    client.login(username="staff", password="pw-for-tests-only")
    return client


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Shop <i>", slug="shop")


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, table_id
    return match.group(0)


def test_the_insights_page_renders_svg_charts_and_the_numbers(client, mind):
    seed(mind)
    hostile = conversation(mind, "public", DAY1, email="<script>x</script>@example.com")
    turn(hostile, 1, DAY1, "<script>alert(1)</script> where is it?", [])
    admin = staff_client(client, "view_mindinsights")
    page = admin.get(admin_path("insights/mindinsights", mind.id), {"from": FROM, "to": TO})
    assert page.status_code == 200
    html = page.content.decode()
    # Four charts, drawn on the server: no script on the page for them.
    assert html.count('class="insights-chart"') == 4
    assert "<title>Conversations per day by channel</title>" in html
    for svg in re.findall(r'<svg xmlns="http://www.w3.org/2000/svg".*?</svg>', html, re.S)[:4]:
        ElementTree.fromstring(svg)  # well-formed XML, so browsers draw it
    # The stacked bars carry each day's count by channel, the line each day's messages.
    assert "<title>2026-03-02 · api: 1</title>" in html
    assert "<title>2026-03-02 · public: 2</title>" in html
    assert "<title>2026-03-04 · widget: 1</title>" in html
    assert "<title>2026-03-02 · messages: 8</title>" in html
    assert "<title>2026-03-03 · messages: 0</title>" in html
    assert "<title>not found: 3</title>" in html and "<title>answered: 2</title>" in html
    assert "<title>thumbs up: 2</title>" in html and "<title>thumbs down: 1</title>" in html
    totals = re.sub(r"\s+", " ", table(html, "insights-totals"))
    for label, value in [
        ("Conversations", "5"),
        ("Messages", "12"),
        ("Questions", "6"),
        ("Answers", "6"),
        ("Not found in the sources", "3"),
        ("Failed", "1"),
        ("Thumbs up / down", "2 / 1"),
        ("Thumbs-up rate", "66.7 %"),
        ("Visitor emails", "2"),
    ]:
        assert f"<th>{label}</th><td>{value}</td>" in totals, label
    sources = table(html, "insights-sources")
    assert sources.index("FAQ") < sources.index("Handbook.pdf")
    # What visitors typed is text, never markup: in the tables and in the title.
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; where is it?" in table(html, "insights-not-found")
    assert "&lt;script&gt;x&lt;/script&gt;@example.com" in table(html, "insights-visitors")
    assert "Insights: Shop &lt;i&gt;" in html
    # The range is the API's, shown in the form.
    assert 'name="from" value="2026-03-01"' in html and 'name="to" value="2026-03-05"' in html


def test_an_invalid_range_is_reported_and_the_default_shown(client, mind):
    admin = staff_client(client, "view_mindinsights")
    html = admin.get(
        admin_path("insights/mindinsights", mind.id), {"from": "2026-03-05", "to": "2026-03-01"}
    ).content.decode()
    assert "`from` is after `to`." in html and "Showing the default range instead." in html
    assert html.count('class="insights-chart"') == 4


def test_the_csv_export_of_the_admin(client, mind):
    conversation(mind, "public", DAY1, email="=cmd@example.com")
    conversation(mind, "public", DAY1 - timedelta(days=60), email="early@example.com")
    admin = staff_client(client, "view_mindinsights")
    page = admin.get(admin_path("insights/mindinsights", mind.id), {"from": FROM, "to": TO})
    link = (
        re.search(r'href="([^"]*visitors\.csv[^"]*)"', page.content.decode()).group(1).replace("&amp;", "&")
    )
    response = admin.get(link)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="shop-visitors-2026-03-01_2026-03-05.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["email", "first_seen_at", "last_seen_at", "conversations"]
    assert [row[0] for row in rows[1:]] == ["'=cmd@example.com"]


def test_the_page_is_read_only_and_needs_the_view_permission(client, mind):
    admin = staff_client(client)
    assert admin.get(admin_path("insights/mindinsights", mind.id)).status_code == 403
    assert admin.get(f"/admin/insights/mindinsights/{quote(mind.id)}/visitors.csv").status_code == 403
    user = User.objects.get(username="staff")
    user.user_permissions.add(Permission.objects.get(codename="view_mindinsights"))
    assert admin.get(admin_path("insights/mindinsights", mind.id)).status_code == 200
    assert admin.get("/admin/insights/mindinsights/mind_missing/change/").status_code == 404
    listing = admin.get("/admin/insights/mindinsights/").content.decode()
    assert f'href="{admin_path("insights/mindinsights", mind.id)}"' in listing
    # Nothing to add, change or delete.
    assert admin.get("/admin/insights/mindinsights/add/").status_code == 403
    assert admin.post(admin_path("insights/mindinsights", mind.id), {"name": "x"}).status_code == 405
    assert admin.get(admin_path("insights/mindinsights", mind.id, "delete")).status_code == 403
    mind.refresh_from_db()
    assert mind.name == "Shop <i>"


def test_the_mind_admin_links_to_its_insights(client, mind):
    admin = staff_client(client, "view_mindinsights", "view_mind")
    html = admin.get(admin_path("minds/mind", mind.id)).content.decode()
    assert f'href="{admin_path("insights/mindinsights", mind.id)}"' in html


def test_every_admin_link_to_a_mind_whose_id_looks_quoted_opens_it(client, workspace):
    # The admin writes `_` in an id as `_5F` and reads `_3A` back as `:`: a link built from the raw id, or a view
    # that reads the id without unquoting it, opens another object (or none) for such an id.
    mind = Mind.objects.create(id="mind_3Ab5Fc", workspace=workspace, name="Quoted", slug="quoted")
    admin = staff_client(client, "view_mindinsights", "view_mind")
    pages = {
        "listing": admin.get("/admin/insights/mindinsights/").content.decode(),
        "mind page": admin.get(admin_path("minds/mind", mind.id)).content.decode(),
    }
    insights = admin.get(admin_path("insights/mindinsights", mind.id)).content.decode()
    assert "Insights: Quoted" in insights
    pages["insights page"] = insights
    links = {
        (name, href)
        for name, html in pages.items()
        for href in re.findall(r'href="(/admin/(?:insights/mindinsights|minds/mind)/[^"/]+/[^"]*)"', html)
    }
    assert {href.split("?")[0] for _, href in links} >= {
        admin_path("insights/mindinsights", mind.id),
        admin_path("minds/mind", mind.id),
        f"/admin/insights/mindinsights/{quote(mind.id)}/visitors.csv",
    }
    for name, href in links:
        assert admin.get(href.replace("&amp;", "&")).status_code == 200, (name, href)
