"""The public page in a real browser: streaming answers with sources, the email gate, reloads, 404, the widget."""

import pytest
from playwright.sync_api import expect

from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.fakesite import FakeSite
from tests.helpers import wait_for
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(
        workspace=workspace,
        name="Keeper of Lights",
        slug="keeper-browser",
        is_published=True,
        headline="Lighthouse historian",
        bio="Forty years on the cape, <b>not bold</b>.",
        welcome_message="Ask me about lighthouses!",
        expertise_areas=["optics", "volcanoes"],
        suggested_questions=["Who invented the Fresnel lens?", "How tall is Mount Etna?"],
        social_links={"website": "https://keeper.example"},
        theme={"primaryColor": "#9a3412", "mode": "light"},
    )
    ready_source(mind, "Lighthouse history", LIGHTHOUSES)
    ready_source(mind, "Volcano notes", VOLCANOES)
    return mind


def wait_for_answer_end(scope) -> None:
    """Waits until the page has finished answering (Send enabled again), on the page or in the widget's frame.

    The first words show before the answer ends. Until it ends the page sends no new message, and a test that ended
    earlier would leave the server streaming into the next test's database.
    """
    expect(scope.get_by_role("button", name="Send", exact=True)).to_be_enabled(timeout=30_000)


def test_page_streams_an_answer_with_sources_and_keeps_it_after_reload(page, live_server, mind, screenshots):
    page.goto(f"{live_server.url}/m/{mind.slug}")
    expect(page.get_by_role("heading", name="Keeper of Lights")).to_be_visible()
    expect(page.locator(".bio")).to_contain_text("<b>not bold</b>")  # shown as text, not markup
    page.screenshot(path=str(screenshots / "public-page-desktop.png"), full_page=True)

    page.get_by_role("button", name="Who invented the Fresnel lens?").click()
    answer = page.locator(".msg.assistant").last
    expect(answer).to_contain_text("Fresnel", timeout=30_000)
    sources = answer.get_by_role("list", name="Sources")
    expect(sources).to_contain_text("Lighthouse history", timeout=30_000)
    expect(page.locator("#followups .chip").first).to_be_visible(timeout=30_000)  # with the end of the answer
    page.screenshot(path=str(screenshots / "public-page-answer.png"), full_page=True)

    page.reload()
    expect(page.locator(".msg.user")).to_have_text(["Who invented the Fresnel lens?"], timeout=15_000)
    expect(page.locator(".msg.assistant").last.get_by_role("list", name="Sources")).to_contain_text(
        "Lighthouse history"
    )

    page.get_by_role("button", name="Start over").click()
    expect(page.locator(".msg.user")).to_have_count(0)
    page.get_by_label("Your message").fill("How tall is Mount Etna?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant").last).to_contain_text("3,357", timeout=30_000)
    wait_for_answer_end(page)
    conversations = mind.conversations.order_by("created_at")
    assert conversations.count() == 2 and all(c.channel == "public" for c in conversations)
    # On the mind's own site the visitor is the signed HttpOnly cookie (sent with the CSRF token), not the header.
    assert all(c.visitor_id.startswith("c.") for c in conversations)
    assert page.evaluate("document.cookie").find("minds_visitor") == -1


def test_phone_layout_screenshot(browser, live_server, mind, screenshots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/m/{mind.slug}")
    expect(page.get_by_role("heading", name="Keeper of Lights")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.screenshot(path=str(screenshots / "public-page-phone.png"), full_page=True)
    context.close()


def test_email_gate_asks_first_and_stores_the_email(page, live_server, mind):
    Mind.objects.filter(id=mind.id).update(collect_email_before_chat=True)
    page.goto(f"{live_server.url}/m/{mind.slug}")
    email = page.get_by_label("Your email, to start the chat")
    expect(email).to_be_visible()
    email.fill("not-an-email")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#status")).to_contain_text("valid email")
    email.fill("ada@example.com")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Who invented the Fresnel lens?").click()
    expect(page.locator(".msg.assistant").last).to_contain_text("Fresnel", timeout=30_000)
    wait_for_answer_end(page)
    assert mind.conversations.get().visitor_email == "ada@example.com"


def test_rate_limit_is_shown_as_a_readable_message(page, live_server, mind):
    # The daily budget: a one-minute window could roll over between the two messages and let the second through.
    Mind.objects.filter(id=mind.id).update(public_messages_per_day=1)
    page.goto(f"{live_server.url}/m/{mind.slug}")
    page.get_by_role("button", name="Who invented the Fresnel lens?").click()
    expect(page.locator(".msg.assistant").last).to_contain_text("Fresnel", timeout=30_000)
    # Sent before the first answer ends, the second message would be dropped by the page and never be limited.
    wait_for_answer_end(page)
    page.get_by_label("Your message").fill("And Etna?")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("too quickly", timeout=15_000)


def test_enter_while_an_answer_is_coming_keeps_what_the_visitor_typed(page, live_server, mind):
    held = []
    page.route("**/m/*/chat", lambda route: held.append(route))  # the answer waits until the test lets it go
    page.goto(f"{live_server.url}/m/{mind.slug}")
    page.get_by_role("button", name="Who invented the Fresnel lens?").click()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_disabled()
    box = page.get_by_label("Your message")
    box.fill("And how far does the light reach?")
    page.keyboard.press("Enter")
    expect(box).to_have_value("And how far does the light reach?")
    # Each evaluate lets Playwright dispatch the route handler; the request is held by now or soon.
    wait_for(lambda: held or page.evaluate("false"), timeout=15, what="the chat request to be held")
    held[0].continue_()
    wait_for_answer_end(page)
    expect(box).to_have_value("And how far does the light reach?")
    expect(page.locator(".msg.user")).to_have_count(1)


def test_model_failure_is_shown_as_a_readable_message(page, live_server, mind, settings):
    with FakeLLM(fail_with=500) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        page.goto(f"{live_server.url}/m/{mind.slug}")
        page.get_by_role("button", name="Who invented the Fresnel lens?").click()
        expect(page.locator("#status")).to_contain_text("unavailable", timeout=15_000)
        expect(page.locator(".msg.assistant.error")).to_have_count(1)
    # The question was kept: after a reload it is still there.
    page.reload()
    expect(page.locator(".msg.user")).to_have_text(["Who invented the Fresnel lens?"], timeout=15_000)


def test_unpublished_mind_is_a_404_page(page, live_server, mind):
    Mind.objects.filter(id=mind.id).update(is_published=False)
    response = page.goto(f"{live_server.url}/m/{mind.slug}")
    assert response.status == 404
    expect(page.get_by_role("heading")).to_contain_text("isn't here")


def host_page(widget_src: str) -> str:
    return (
        f"<!doctype html><html><head><title>Partner</title></head><body><h1>Partner site</h1>"
        f'<script src="{widget_src}" data-position="left" data-color="#0f766e"></script></body></html>'
    )


def test_widget_opens_on_an_allowed_origin_and_not_elsewhere(page, live_server, mind, screenshots):
    with FakeSite("127.0.0.1") as allowed_site, FakeSite("127.0.0.1") as other_site:
        src = f"{live_server.url}/m/{mind.slug}/widget.js"
        allowed_site.route("/", host_page(src), content_type="text/html")
        other_site.route("/", host_page(src), content_type="text/html")
        Mind.objects.filter(id=mind.id).update(allowed_origins=[f"http://127.0.0.1:{allowed_site.port}"])

        page.goto(allowed_site.url("/"))
        bubble = page.get_by_role("button", name="Chat with Keeper of Lights")
        expect(bubble).to_be_visible()
        bubble.click()
        frame = page.frame_locator("#minds-widget-frame")
        expect(frame.get_by_role("heading", name="Keeper of Lights")).to_be_visible(timeout=15_000)
        frame.get_by_role("button", name="Who invented the Fresnel lens?").click()
        expect(frame.locator(".msg.assistant").last).to_contain_text("Fresnel", timeout=30_000)
        wait_for_answer_end(frame)
        page.screenshot(path=str(screenshots / "widget-open.png"))
        conversation = mind.conversations.get()
        # In the third-party iframe the browser withholds the SameSite cookie: the page's own id identifies it.
        assert conversation.channel == "widget" and not conversation.visitor_id.startswith("c.")

        messages = []
        page.on("console", lambda message: messages.append(message.text))
        page.goto(other_site.url("/"))
        page.wait_for_load_state("load")
        expect(page.get_by_role("heading", name="Partner site")).to_be_visible()
        assert page.locator("#minds-widget-button").count() == 0
        assert any("not allowed to embed" in m for m in messages)
