"""The public page and its chat endpoint through the Django test client: rendering, escaping, 404s, limits,
origins, the email gate and conversation restore. The browser tests (tests/browser) drive the same in Chromium."""

import json

import pytest

from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.test_search import LIGHTHOUSES

pytestmark = pytest.mark.django_db

VISITOR = "visitor-0123456789abcdef"
EVIL = '<script>alert("x")</script>'


@pytest.fixture
def mind(workspace):
    return make_mind(workspace)


def make_mind(workspace) -> Mind:
    """A published mind with a real indexed source; the chat tests (test_public_chat.py) use it too."""
    mind = Mind.objects.create(
        workspace=workspace,
        name="Keeper of Lights",
        slug="keeper",
        is_published=True,
        headline="Lighthouse historian",
        bio="Forty years on the cape.",
        welcome_message="Ask me about lighthouses!",
        suggested_questions=["Who invented the Fresnel lens?"],
        expertise_areas=["optics", "maritime history"],
        social_links={"website": "https://keeper.example", "twitter": "javascript:alert(1)"},
        theme={
            "primaryColor": "#aa3300",
            "backgroundColor": "#fffaf0",
            "fontFamily": "Georgia",
            "mode": "light",
        },
        allowed_origins=["https://partner.example"],
        avatar_url="",
    )
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    return mind


def post_chat(client, slug, body, visitor=VISITOR, **headers):
    extra = {"HTTP_X_MINDS_VISITOR": visitor} if visitor else {}
    extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    response = client.post(f"/m/{slug}/chat", json.dumps(body), content_type="application/json", **extra)
    if response.streaming:
        # Read the stream now: the chat saves the answer while it streams, inside this test's transaction.
        raw = b"".join(response.streaming_content).decode()
        response.events = [
            (b.split("\n")[0][7:], json.loads(b.split("\n")[1][6:])) for b in raw.strip().split("\n\n")
        ]
    return response


def events_of(response):
    return response.events


def test_page_renders_the_mind_with_meta_and_theme(client, mind):
    response = client.get("/m/keeper")
    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        "Keeper of Lights",
        "Lighthouse historian",
        "Forty years on the cape.",
        "Ask me about lighthouses!",
        "Who invented the Fresnel lens?",
        "optics",
        "https://keeper.example",
    ):
        assert text in html
    assert 'property="og:title" content="Keeper of Lights"' in html and 'name="twitter:card"' in html
    assert "--primary:#aa3300" in html and "KL" in html  # theme colour, initials when there is no avatar
    assert "javascript:alert" not in html  # unsafe link dropped
    assert "cdn" not in html.lower() and "googleapis" not in html
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"


def test_everything_the_owner_typed_is_escaped(client, mind):
    Mind.objects.filter(id=mind.id).update(
        name=EVIL,
        headline=EVIL,
        bio=EVIL,
        welcome_message=EVIL,
        suggested_questions=[EVIL],
        expertise_areas=[EVIL],
        theme={"primaryColor": "red;}</style><script>alert(1)</script>", "fontFamily": "x;}</style><script>"},
    )
    html = client.get("/m/keeper").content.decode()
    assert EVIL not in html and "<script>alert" not in html
    assert "&lt;script&gt;" in html
    assert "--primary:#4f46e5" in html  # the invalid colour fell back to the default


def test_unpublished_and_unknown_slugs_are_404_pages(client, mind):
    assert client.get("/m/nobody").status_code == 404
    Mind.objects.filter(id=mind.id).update(is_published=False)
    response = client.get("/m/keeper")
    assert response.status_code == 404 and b"isn't here" in response.content
    gone = post_chat(client, "keeper", {"message": "hi"})
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    assert client.get("/m/keeper/widget.js").status_code == 404


def test_embed_mode_may_be_framed_only_by_allowed_origins(client, mind):
    response = client.get("/m/keeper?embed=1")
    assert "frame-ancestors https://partner.example" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response
    Mind.objects.filter(id=mind.id).update(allowed_origins=[])
    assert "frame-ancestors 'none'" in client.get("/m/keeper?embed=1")["Content-Security-Policy"]


def test_widget_script_embeds_only_allowed_origins_and_escapes(client, mind):
    response = client.get("/m/keeper/widget.js")
    body = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("application/javascript")
    assert '"allowedOrigins": ["https://partner.example"]' in body and "/m/keeper?embed=1" not in body
    assert "pageUrl" in body and "allowedOrigins.indexOf(origin) === -1" in body
    Mind.objects.filter(id=mind.id).update(name="</script><script>alert(1)</script>")
    escaped = client.get("/m/keeper/widget.js").content.decode()
    assert "</script>" not in escaped and "\\u003c/script>" in escaped


def test_voice_control_only_when_configured(client, mind, settings):
    Mind.objects.filter(id=mind.id).update(voice_enabled=True)
    assert json.loads(client.get("/m/keeper").context["config"]["voice"] and "true" or "false") is False
    settings.TTS_ENABLED = True
    settings.OPENAI_API_KEY = "sk-test"
    assert client.get("/m/keeper").context["config"]["voice"] is True
    settings.TTS_ENABLED = False
    assert (
        client.post(
            "/m/keeper/speech", "{}", content_type="application/json", HTTP_X_MINDS_VISITOR=VISITOR
        ).status_code
        == 404
    )


def test_voice_reads_an_answer_through_the_speech_endpoint(client, mind, settings):
    from tests.fakesite import FakeSite

    Mind.objects.filter(id=mind.id).update(voice_enabled=True, voice_id="nova", voice_speed=1.5)
    with FakeSite() as tts:
        tts.route("/v1/audio/speech", b"ID3-fake-mp3-bytes", content_type="audio/mpeg")
        settings.TTS_ENABLED = True
        settings.OPENAI_BASE_URL = tts.url("/v1")
        response = client.post(
            "/m/keeper/speech",
            json.dumps({"text": "Hello there"}),
            content_type="application/json",
            HTTP_X_MINDS_VISITOR=VISITOR,
        )
        assert response.status_code == 200 and response["Content-Type"] == "audio/mpeg"
        assert response.content == b"ID3-fake-mp3-bytes"
        sent = json.loads(tts.requests[-1].body)
        assert sent["voice"] == "nova" and sent["speed"] == 1.5 and sent["input"] == "Hello there"
        tts.route("/v1/audio/speech", b"down", status=500)
        failed = client.post(
            "/m/keeper/speech",
            json.dumps({"text": "Hi"}),
            content_type="application/json",
            HTTP_X_MINDS_VISITOR=VISITOR,
        )
        assert failed.status_code == 502 and failed.json()["code"] == "voice_unavailable"


# --- Contrast: every colour the owner may pick gives readable text (WCAG AA) ------------------------------------

GRID = [
    f"#{r:02x}{g:02x}{b:02x}"
    for r in (0, 0x55, 0xAA, 0xFF)
    for g in (0, 0x66, 0xCC, 0xFF)
    for b in (0, 0x80, 0xFF)
]


def test_contrast_ratio_matches_wcag():
    from public.presentation import contrast, luminance, text_on

    assert round(contrast("#000000", "#ffffff"), 2) == 21.0 and contrast("#abc", "#aabbcc") == 1.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48  # the classic "grey just fails AA"
    assert luminance("#fff") == 1.0 and luminance("#000") == 0.0
    assert text_on("#facc15") == "#000000" and text_on("#1e3a8a") == "#ffffff"


def test_readable_darkens_on_light_and_lightens_on_dark():
    from public.presentation import contrast, luminance, readable

    yellow = readable("#facc15", "#ffffff")
    assert contrast(yellow, "#ffffff") >= 4.5 and luminance(yellow) < luminance("#facc15")
    indigo = readable("#312e81", "#0f172a")
    assert contrast(indigo, "#0f172a") >= 4.5 and luminance(indigo) > luminance("#312e81")
    assert readable("#1d4ed8", "#ffffff") == "#1d4ed8"  # already readable: kept as the owner chose it


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_every_theme_colour_gives_aa_text_everywhere(mode):
    from public.presentation import contrast, theme_of

    checked = 0
    for primary in GRID:
        for background in GRID[::5]:
            theme = theme_of(
                Mind(theme={"primaryColor": primary, "backgroundColor": background, "mode": mode})
            )
            pairs = {
                "on primary": (theme.on_primary, theme.primary),
                "accent on background": (theme.accent, theme.background),
                "accent on card": (theme.accent, theme.card),
                "text on background": (theme.fg, theme.background),
                "text on card": (theme.fg, theme.card),
                "muted on card": (theme.muted, theme.card),
                "muted on background": (theme.muted, theme.background),
                "error on background": (theme.danger, theme.background),
            }
            for what, (fg, bg) in pairs.items():
                assert contrast(fg, bg) >= 4.5, (primary, background, what, fg, bg)
            checked += 1
    assert checked == len(GRID) * len(GRID[::5])


def test_the_page_sends_the_adjusted_colours(client, mind):
    Mind.objects.filter(id=mind.id).update(theme={"primaryColor": "#fde047", "backgroundColor": "#ffffff"})
    html = client.get("/m/keeper").content.decode()
    assert (
        "--primary:#fde047;" in html and "--on-primary:#000000;" in html
    )  # black text on the yellow bubbles
    accent = html.split("--accent:")[1][:7]
    from public.presentation import contrast

    assert accent != "#fde047" and contrast(accent, "#ffffff") >= 4.5  # links darkened to stay readable


def test_title_and_description_per_mind(client, mind):
    html = client.get("/m/keeper").content.decode()
    assert "<title>Keeper of Lights · Lighthouse historian</title>" in html
    assert '<meta name="description" content="Lighthouse historian — Forty years on the cape.">' in html
    assert 'rel="canonical" href="' in html and '/m/keeper">' in html
    Mind.objects.filter(id=mind.id).update(headline="", bio="", name="Ada")
    html = client.get("/m/keeper").content.decode()
    assert "<title>Ada</title>" in html and "Chat with Ada" in html


# --- Page weight and no external resources --------------------------------------------------------------------

PAGE_BUDGET = 60 * 1024


def test_page_weight_stays_under_60_kb_and_loads_nothing_from_elsewhere(client, mind, settings):
    import re

    from django.contrib.staticfiles import finders

    html = client.get("/m/keeper").content
    assets = re.findall(rb'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    local = [a.decode() for a in assets if a.startswith(b"/static/")]
    # Scripts and styles come from our own static files only (the canonical link is the page itself).
    canonical = f"{settings.PUBLIC_BASE_URL}/m/keeper".encode()
    assert all(a.startswith(b"/static/") or a == canonical for a in assets), assets
    assert {"/static/public/mind.js", "/static/public/mind.css"} <= set(local)
    total = len(html) + sum(len(open(finders.find(a[len("/static/") :]), "rb").read()) for a in local)
    assert total < PAGE_BUDGET, f"{total} bytes"
    css = open(finders.find("public/mind.css")).read()
    assert "url(" not in css and "@import" not in css  # no fonts or images fetched by the stylesheet


# --- Citations as the page gets them ----------------------------------------------------------------------------


def test_citation_links_point_into_the_passage_and_only_to_the_web():
    from public.rendering import citation_link

    pdf = {"url": "https://a.example/book.pdf", "page": 3, "startSeconds": None, "sourceType": "url"}
    assert citation_link(pdf) == "https://a.example/book.pdf#page=3"
    video = {"url": "https://youtu.be/abc?t=65", "startSeconds": 65.0, "sourceType": "youtube"}
    assert citation_link(video) == "https://youtu.be/abc?t=65"
    assert citation_link({**video, "url": "https://youtu.be/abc"}) == "https://youtu.be/abc?t=65"
    episode = {"url": "https://pod.example/ep1.mp3", "startSeconds": 90.5, "sourceType": "podcast"}
    assert citation_link(episode) == "https://pod.example/ep1.mp3#t=90"
    assert citation_link({"url": "https://a.example/page", "page": None, "startSeconds": None}) == (
        "https://a.example/page"
    )
    for bad in ("javascript:alert(1)", "data:text/html,x", "ftp://a.example/f", "", None):
        assert citation_link({"url": bad, "page": 1, "startSeconds": None}) is None


def test_the_stream_and_the_restore_carry_links_ids_and_ratings(client, mind):
    response = post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"})
    done = events_of(response)[-1][1]
    cited = [data for kind, data in events_of(response) if kind == "citation"]
    assert (
        cited and all("link" in c for c in cited) and all("link" in c for c in done["message"]["citations"])
    )
    conversation_id = done["conversationId"]
    restored = client.get(f"/m/keeper/conversation/{conversation_id}", HTTP_X_MINDS_VISITOR=VISITOR).json()
    answer = restored["messages"][-1]
    assert answer["id"] == done["message"]["id"] and answer["feedback"] is None
    assert answer["citations"][0]["link"] is None  # a text source has nowhere to go


# --- Thumbs: a visitor rates only answers of its own conversations ----------------------------------------------


def post_feedback(client, body, visitor=VISITOR, slug="keeper"):
    extra = {"HTTP_X_MINDS_VISITOR": visitor} if visitor else {}
    return client.post(f"/m/{slug}/feedback", json.dumps(body), content_type="application/json", **extra)


def test_a_visitor_rates_its_own_answers_only(client, mind, workspace):
    from conversations.models import Message

    done = events_of(post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"}))[-1][1]
    answer_id = done["message"]["id"]
    rated = post_feedback(client, {"messageId": answer_id, "rating": "up"})
    assert rated.status_code == 200 and rated.json() == {
        "status": "success",
        "messageId": answer_id,
        "rating": "up",
    }
    assert Message.objects.get(id=answer_id).feedback_rating == "up"
    assert post_feedback(client, {"messageId": answer_id, "rating": "down"}).status_code == 200
    assert Message.objects.get(id=answer_id).feedback_rating == "down"
    restored = client.get(
        f"/m/keeper/conversation/{done['conversationId']}", HTTP_X_MINDS_VISITOR=VISITOR
    ).json()
    assert restored["messages"][-1]["feedback"] == "down"

    # Another visitor, the visitor's own question, another mind's page, no visitor: nothing changes.
    other = post_feedback(client, {"messageId": answer_id, "rating": "up"}, visitor="someone-else-0123456789")
    assert other.status_code == 404 and other.json()["code"] == "not_found"
    question = Message.objects.get(conversation_id=done["conversationId"], role=Message.Role.USER)
    assert post_feedback(client, {"messageId": question.id, "rating": "up"}).status_code == 404
    second = Mind.objects.create(workspace=workspace, name="Other", slug="other-mind", is_published=True)
    assert (
        post_feedback(client, {"messageId": answer_id, "rating": "up"}, slug=second.slug).status_code == 404
    )
    assert post_feedback(client, {"messageId": answer_id, "rating": "up"}, visitor=None).status_code == 400
    assert Message.objects.get(id=answer_id).feedback_rating == "down"


def test_feedback_input_is_checked(client, mind):
    bad = post_feedback(client, {"messageId": "msg_x", "rating": "meh"})
    assert (
        bad.status_code == 400
        and bad.json()["code"] == "validation_error"
        and "up or down" in bad.json()["message"]
    )
    assert post_feedback(client, {"rating": "up"}).json()["code"] == "validation_error"
    assert post_feedback(client, {"messageId": 5, "rating": "up"}).json()["code"] == "validation_error"
    assert post_feedback(client, ["up"]).json()["code"] == "malformed_request"
    assert post_feedback(client, {"messageId": "msg_nothing", "rating": "up"}).status_code == 404
    refused = client.post(
        "/m/keeper/feedback",
        json.dumps({"messageId": "msg_x", "rating": "up"}),
        content_type="application/json",
        HTTP_X_MINDS_VISITOR=VISITOR,
        HTTP_ORIGIN="https://evil.example",
    )
    assert refused.status_code == 403 and refused.json()["code"] == "origin_not_allowed"
    Mind.objects.filter(id=mind.id).update(is_published=False)
    assert post_feedback(client, {"messageId": "msg_x", "rating": "up"}).status_code == 404
