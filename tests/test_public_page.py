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
