"""Answers as a visitor sees them, in Chromium: Markdown rendered safely (hostile Markdown executes nothing),
citations that open their source cards, the typing indicator, copy and thumbs, the widget at phone width, and an
axe-core accessibility check (WCAG 2 A/AA, contrast included) for the default and owner-picked themes.

Screenshots (desktop, phone, widget after a formatted answer with an opened citation) go to artifacts/screenshots/.
"""

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from knowledge.extractors.base import Segment
from minds.models import Mind
from tests.browser.test_public_page_browser import wait_for_answer_end
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.fakesite import FakeSite
from tests.helpers import wait_for
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"

FORMATTED = (
    "The **Fresnel lens** was invented by *Augustin-Jean Fresnel* in 1822 [1].\n\n"
    "What it changed:\n\n"
    "1. Beams reached over **twenty miles** [1]\n"
    "2. Lenses became rings of `glass prisms`\n"
    "   - lighter\n"
    "   - brighter\n\n"
    "```\nrange = 20 miles\n```\n\n"
    "More in the [lighthouse handbook](https://keeper.example/handbook)."
)


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(
        workspace=workspace,
        name="Keeper of Lights",
        slug="keeper-answers",
        is_published=True,
        headline="Lighthouse historian and keeper of the Cape Point light for forty years",
        bio="Forty years on the cape.",
        welcome_message="Ask me about lighthouses!",
        suggested_questions=["Who invented the Fresnel lens?"],
        theme={"primaryColor": "#9a3412", "mode": "light"},
    )
    ready_source(
        mind,
        "Lighthouse handbook",
        [Segment(LIGHTHOUSES[0], page=12), Segment(LIGHTHOUSES[1], page=13)],
        type="url",
        url="https://keeper.example/handbook.pdf",
    )
    ready_source(mind, "Volcano notes", VOLCANOES)
    return mind


def host_page(widget_src: str) -> str:
    """A partner's page made for phones (with a viewport), embedding the widget."""
    return (
        '<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Partner</title></head><body><h1>Partner site</h1><p>Our opening hours and prices.</p>"
        f'<script src="{widget_src}" data-position="right" data-color="#0f766e"></script></body></html>'
    )


PLACEHOLDER_FITS = """() => {
  const input = document.getElementById('message'), style = getComputedStyle(input);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = style.font;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return ctx.measureText(input.placeholder).width <= room;
}"""


def sse(*events: tuple[str, dict]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def canned_answer(content: str, citations: list[dict], pieces: int = 9) -> str:
    """A whole chat stream as the server sends it, the answer cut in small tokens, with an unknown event inside."""
    tokens = [("token", {"content": content[i : i + pieces]}) for i in range(0, len(content), pieces)]
    return sse(
        ("conversation", {"conversationId": "conv_canned", "messageId": "msg_question"}),
        *tokens[:2],
        ("tool_call", {"id": "call_1", "name": "lookup", "arguments": "{}"}),  # not for the page: ignored
        *[("citation", c) for c in citations],
        *tokens[2:],
        (
            "done",
            {"message": {"id": "msg_canned", "content": content, "citations": citations}, "followups": []},
        ),
    )


def serve_canned(page, body: str) -> None:
    page.route(
        "**/m/*/chat",
        lambda route: route.fulfill(status=200, content_type="text/event-stream; charset=utf-8", body=body),
    )


HANDBOOK = {
    "index": 1,
    "sourceId": "src_1",
    "sourceName": "Lighthouse handbook",
    "sourceType": "url",
    "chunkId": "chk_1",
    "snippet": LIGHTHOUSES[0],
    "url": "https://keeper.example/handbook.pdf",
    "page": 12,
    "startSeconds": None,
    "score": 0.9,
    "link": "https://keeper.example/handbook.pdf#page=12",
}


def ask_fresnel_with_formatted_answer(scope) -> None:
    scope.get_by_role("button", name="Who invented the Fresnel lens?").click()
    answer = scope.locator(".msg.assistant").last
    expect(answer.locator("strong").first).to_have_text("Fresnel lens", timeout=30_000)
    wait_for_answer_end(scope)


def open_first_citation(scope):
    answer = scope.locator(".msg.assistant").last
    cite = answer.get_by_role("button", name="Source 1: Lighthouse handbook").first
    cite.click()
    expect(cite).to_have_attribute("aria-expanded", "true")
    card = answer.locator("details.source[open]")
    expect(card).to_have_count(1)
    return answer, card


def test_formatted_answer_with_a_citation_that_opens_its_source_card(
    page, live_server, mind, screenshots, settings
):
    with FakeLLM(answer=FORMATTED) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        page.goto(f"{live_server.url}/m/{mind.slug}")
        ask_fresnel_with_formatted_answer(page)
    answer = page.locator(".msg.assistant").last
    body = answer.locator(".md")
    # Markdown became elements: emphasis, an ordered list with a nested list, inline code, a code block, a link.
    expect(body.locator("em")).to_have_text("Augustin-Jean Fresnel")
    expect(body.locator("ol > li")).to_have_count(2)
    expect(body.locator("ol > li ul > li")).to_have_text(["lighter", "brighter"])
    expect(body.locator("p code, li code")).to_have_text("glass prisms")
    expect(body.locator("pre code")).to_have_text("range = 20 miles")
    handbook = body.get_by_role("link", name="lighthouse handbook")
    expect(handbook).to_have_attribute("href", "https://keeper.example/handbook")
    expect(handbook).to_have_attribute("rel", "noopener noreferrer nofollow")
    assert "[1]" not in body.inner_text() and "**" not in body.inner_text()

    answer, card = open_first_citation(page)
    expect(card.locator("summary")).to_contain_text("Lighthouse handbook")
    expect(card.locator("summary")).to_contain_text("page 12")
    expect(card.locator(".passage")).to_contain_text("Augustin-Jean Fresnel in 1822")
    open_page = card.get_by_role("link", name="Open page 12")
    expect(open_page).to_have_attribute("href", "https://keeper.example/handbook.pdf#page=12")
    # The list under the answer holds the same cards, opened and closed from the keyboard.
    summary = card.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(answer.locator("details.source[open]")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(answer.locator("details.source[open]")).to_have_count(1)
    page.screenshot(path=str(screenshots / "answer-desktop.png"), full_page=True)

    # After a reload the answer is drawn the same way, with its citations.
    page.reload()
    restored = page.locator(".msg.assistant").last
    expect(restored.locator("strong").first).to_have_text("Fresnel lens", timeout=15_000)
    expect(restored.get_by_role("button", name="Source 1: Lighthouse handbook").first).to_be_visible()


def test_phone_answer_fits_360_px(browser, live_server, mind, screenshots):
    context = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True)
    page = context.new_page()
    serve_canned(page, canned_answer(FORMATTED, [HANDBOOK]))
    page.goto(f"{live_server.url}/m/{mind.slug}")
    ask_fresnel_with_formatted_answer(page)
    answer, card = open_first_citation(page)
    expect(card.get_by_role("link", name="Open page 12")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    assert page.evaluate(PLACEHOLDER_FITS)  # the whole placeholder shows
    page.screenshot(path=str(screenshots / "answer-phone.png"), full_page=True)
    context.close()


HOSTILE = "\n".join(
    [
        "<script>window.__pwned = 1</script>",
        '<img src=x onerror="window.__pwned = 2">',
        "[click](javascript:window.__pwned=3) [upper](JaVaScRiPt:window.__pwned=4) [spaced]( javascript:alert(1))",
        "[data](data:text/html,<script>alert(1)</script>) [vb](vbscript:msgbox) [entity](javascript&#58;alert(1))",
        "[ok](https://example.org/a?b=1) [mail](mailto:ada@example.org) <https://example.org/auto>",
        '<a href="javascript:alert(1)" onclick="window.__pwned = 5">html link</a>',
        '**<b onmouseover="window.__pwned = 6">bold</b>** `<svg onload=alert(1)>`',
        "```html\n<iframe src=javascript:alert(1)></iframe>\n```",
        "> " * 3000 + "deep quote",
        "[" * 3000 + "brackets" + "]" * 3000,
        "**" * 3000 + "stars",
        "_*" * 2000 + "mixed",
        *["  " * depth + "- level" for depth in range(100)],
        "[1] cited",
    ]
)
HOSTILE_CITATION = {
    **HANDBOOK,
    "sourceName": '<img src=x onerror="window.__pwned = 7">',
    "snippet": "<script>window.__pwned = 8</script>",
    "url": "javascript:window.__pwned=9",
    "link": "javascript:window.__pwned=9",
}


def test_hostile_markdown_executes_nothing(page, live_server, mind):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    serve_canned(page, canned_answer(HOSTILE, [HOSTILE_CITATION], pieces=97))
    page.goto(f"{live_server.url}/m/{mind.slug}")
    page.get_by_role("button", name="Who invented the Fresnel lens?").click()
    answer = page.locator(".msg.assistant").last
    expect(answer).to_contain_text("mixed", timeout=30_000)
    wait_for_answer_end(page)
    # Every kind of markup is shown as text: nothing ran, no element came from the answer.
    expect(answer).to_contain_text("<script>window.__pwned = 1</script>")
    expect(answer).to_contain_text('<a href="javascript:alert(1)"')
    cite = answer.get_by_role("button", name='Source 1: <img src=x onerror="window.__pwned = 7">')
    cite.click()
    expect(answer.locator("details.source[open] .passage")).to_have_text(
        "<script>window.__pwned = 8</script>"
    )
    answer.locator("strong").first.hover()
    report = page.evaluate(
        """() => {
          const box = document.querySelector('.msg.assistant:last-of-type');
          const all = Array.from(box.querySelectorAll('*'));
          const depth = (el, tag) => { let d = 0; for (let n = el; n; n = n.parentElement) if (n.tagName === tag) d++; return d; };
          return {
            pwned: window.__pwned === undefined ? null : window.__pwned,
            foreign: all.filter(e => ['SCRIPT','IMG','IFRAME','OBJECT','EMBED','STYLE','FORM','INPUT'].includes(e.tagName)).length,
            svgInAnswer: box.querySelector('.md svg, .sources svg') !== null,
            handlers: all.filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,
            hrefs: Array.from(box.querySelectorAll('a')).map(a => a.getAttribute('href')),
            quoteDepth: Math.max(0, ...Array.from(box.querySelectorAll('blockquote')).map(e => depth(e, 'BLOCKQUOTE'))),
            listDepth: Math.max(0, ...Array.from(box.querySelectorAll('ul')).map(e => depth(e, 'UL'))),
            strongDepth: Math.max(0, ...Array.from(box.querySelectorAll('strong')).map(e => depth(e, 'STRONG'))),
          };
        }"""
    )
    assert report["pwned"] is None and dialogs == []
    assert report["foreign"] == 0 and not report["svgInAnswer"] and report["handlers"] == 0
    assert report["hrefs"] == [
        "https://example.org/a?b=1",
        "mailto:ada@example.org",
        "https://example.org/auto",
    ]
    # Deep nesting is shown flat past a few levels, so no answer can make the page build a huge tree.
    assert report["quoteDepth"] <= 5 and report["listDepth"] <= 5 and report["strongDepth"] <= 5
    # The unsafe links kept their text and lost their target; the source card has no link at all.
    expect(answer.locator(".md")).to_contain_text("click upper")
    expect(answer.locator("details.source a")).to_have_count(0)
    # The page still works: the next question is answered.
    page.unroute("**/m/*/chat")
    page.get_by_role("button", name="Start over").click()  # the canned conversation is not on the server
    page.get_by_label("Your message").fill("How tall is Mount Etna?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant").last).to_contain_text("3,357", timeout=30_000)
    wait_for_answer_end(page)


def test_typing_indicator_until_the_first_words(page, live_server, mind):
    held = []
    page.route("**/m/*/chat", lambda route: held.append(route))
    page.goto(f"{live_server.url}/m/{mind.slug}")
    page.get_by_role("button", name="Who invented the Fresnel lens?").click()
    typing = page.locator(".msg.assistant .typing")
    expect(typing).to_be_visible()
    expect(typing).to_contain_text("Keeper of Lights is typing")
    wait_for(lambda: held or page.evaluate("false"), timeout=15, what="the chat request to be held")
    held[0].continue_()
    expect(page.locator(".msg.assistant").last).to_contain_text("Fresnel", timeout=30_000)
    expect(typing).to_have_count(0)
    wait_for_answer_end(page)


def test_copy_and_thumbs_rate_the_visitors_own_answer(browser, live_server, mind):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.goto(f"{live_server.url}/m/{mind.slug}")
    page.get_by_role("button", name="Who invented the Fresnel lens?").click()
    answer = page.locator(".msg.assistant").last
    expect(answer).to_contain_text("Fresnel", timeout=30_000)
    wait_for_answer_end(page)
    saved = Message.objects.get(conversation__mind=mind, role=Message.Role.ASSISTANT)

    answer.get_by_role("button", name="Copy answer").click()
    expect(answer.locator(".tool-note")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == saved.content

    up = answer.get_by_role("button", name="Good answer")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    wait_for(lambda: Message.objects.get(id=saved.id).feedback_rating == "up", timeout=15, what="the rating")
    down = answer.get_by_role("button", name="Bad answer")
    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    wait_for(
        lambda: Message.objects.get(id=saved.id).feedback_rating == "down", timeout=15, what="the new rating"
    )
    page.reload()  # the rating is shown again after a reload
    expect(page.locator(".msg.assistant").last.get_by_role("button", name="Bad answer")).to_have_attribute(
        "aria-pressed", "true", timeout=15_000
    )
    context.close()


def test_widget_at_phone_width_with_an_opened_citation(browser, live_server, mind, screenshots):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    with FakeSite("127.0.0.1") as site:
        site.route("/", host_page(f"{live_server.url}/m/{mind.slug}/widget.js"), content_type="text/html")
        Mind.objects.filter(id=mind.id).update(allowed_origins=[f"http://127.0.0.1:{site.port}"])
        page.goto(site.url("/"))
        bubble = page.get_by_role("button", name="Chat with Keeper of Lights")
        expect(bubble).to_be_visible()
        # The launcher's icon is drawn, not a character a font might lack.
        assert bubble.evaluate("b => b.textContent.trim() === '' && !!b.querySelector('svg path')")
        bubble.click()
        expect(bubble).to_have_attribute("aria-expanded", "true")
        frame = page.frame_locator("#minds-widget-frame")
        expect(frame.get_by_role("heading", name="Keeper of Lights")).to_be_visible(timeout=15_000)
        frame.locator("html").evaluate("() => 0")  # the frame's document is ready
        page.route(
            "**/m/*/chat",
            lambda route: route.fulfill(
                status=200, content_type="text/event-stream", body=canned_answer(FORMATTED, [HANDBOOK])
            ),
        )
        header = frame.locator(".profile").evaluate(
            """p => {
              const r = el => el.getBoundingClientRect();
              const name = r(p.querySelector('.name')), headline = r(p.querySelector('.headline'));
              const input = document.getElementById('message'), style = getComputedStyle(input);
              const ctx = document.createElement('canvas').getContext('2d');
              ctx.font = style.font;
              const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
              return {
                stacked: headline.top >= name.bottom - 1,
                inside: name.right <= r(p).right + 0.5 && headline.right <= r(p).right + 0.5,
                placeholderFits: ctx.measureText(input.placeholder).width <= room,
                width: document.documentElement.clientWidth,
                scroll: document.documentElement.scrollWidth,
              };
            }"""
        )
        assert header["stacked"] and header["inside"] and header["placeholderFits"], header
        assert header["scroll"] <= header["width"], header
        ask_fresnel_with_formatted_answer(frame)
        open_first_citation(frame)
        page.screenshot(path=str(screenshots / "answer-widget.png"))
    context.close()


THEMES = {
    "default": {},
    "yellow on white": {"primaryColor": "#facc15", "backgroundColor": "#ffffff"},
    "pale on dark": {"primaryColor": "#a5b4fc", "backgroundColor": "#111827", "mode": "dark"},
    "dark mode, light background": {"primaryColor": "#22c55e", "backgroundColor": "#f0fdf4", "mode": "dark"},
}


@pytest.mark.parametrize("theme", THEMES)
def test_axe_finds_no_wcag_a_or_aa_violation(browser, live_server, mind, theme):
    Mind.objects.filter(id=mind.id).update(theme=THEMES[theme])
    # axe is injected by the test only: the page's own CSP would (rightly) refuse it.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    serve_canned(page, canned_answer(FORMATTED, [HANDBOOK]))
    page.goto(f"{live_server.url}/m/{mind.slug}")
    ask_fresnel_with_formatted_answer(page)
    open_first_citation(page)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    problems = [
        f"{v['id']}: {v['help']} — "
        + "; ".join(n["target"][0] + " " + n["failureSummary"] for n in v["nodes"][:3])
        for v in result["violations"]
    ]
    assert problems == [], "\n".join(problems)
    assert len(result["passes"]) > 10  # it did check the page
    context.close()
